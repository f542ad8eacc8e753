// Package ipc is the local transport between the agent and the login
// surfaces (PAM module, credential provider, authorization plugin): a
// Unix socket whose connections carry length-prefixed frames
// (protocol.AppendIPCFrame / protocol.ReadIPCFrame). The agent core defines
// what the messages mean.
//
// Both ends learn who is on the other side from the kernel (SO_PEERCRED on
// Linux, LOCAL_PEERCRED on macOS): the listener drops any peer whose uid is not allowed (root only,
// by default) before its first byte is read, and a client can check that
// it reached a root-owned agent. On Linux the socket is created mode 0600
// in a directory that must be 0700 and owned by the agent; on macOS it is
// mode 0660, group _securityagent, in a directory of mode 0711, so that
// the authorization plugin (which runs as _securityagent) can connect.
//
// Linux and macOS; elsewhere Listen and Dial return
// errors.ErrUnsupported (Windows uses named pipes in winhelper).
package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// Errors returned by Listen.
var (
	// ErrUnsafeDir: the socket's directory is not a directory owned by
	// this process's user with mode 0700 (0711 on macOS).
	ErrUnsafeDir = errors.New("ipc: unsafe socket directory")
	// ErrInUse: another process is listening on the socket path.
	ErrInUse = errors.New("ipc: socket in use")
	// ErrNotSocket: something other than a socket exists at the path; it
	// is left alone.
	ErrNotSocket = errors.New("ipc: path exists and is not a socket")
)

// PeerKind is what the transport found the peer to be, and so how much
// the agent serves it (SPEC.md 5.7).
type PeerKind uint8

// Peer kinds. The zero value is the restricted one, so that a transport
// that does not say is never taken for a privileged one.
const (
	// PeerUser is an interactive user's process: on Windows a client the
	// named pipe admits through its INTERACTIVE entry (the Remote Desktop
	// client's CredUI prompt). The agent serves it only a Begin that names
	// an RDP target (SPEC.md 5.7 "Peers").
	PeerUser PeerKind = iota
	// PeerSystem is a privileged login surface host: root (and
	// SecurityAgent on macOS) on the Unix socket, LocalSystem on the
	// named pipe. The agent serves it every message.
	PeerSystem
)

// String returns "system" or "user".
func (k PeerKind) String() string {
	if k == PeerSystem {
		return "system"
	}
	return "user"
}

// Peer is the other end of a connection, as the kernel reports it at
// connect time.
type Peer struct {
	UID uint32
	GID uint32
	PID int32
	// Kind is the transport's classification; the Unix listener gives
	// every peer it admits PeerSystem (it admits only AllowedUIDs).
	Kind PeerKind
	// SID is the client token's user SID on Windows ("" elsewhere): the
	// key of the agent's per-user limits for PeerUser.
	SID string
}

// User names the peer for per-user limits and audit: its SID on
// Windows, else "uid N".
func (p Peer) User() string {
	if p.SID != "" {
		return p.SID
	}
	return fmt.Sprintf("uid %d", p.UID)
}

// LogValue implements slog.LogValuer.
func (p Peer) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Any("uid", p.UID), slog.Any("gid", p.GID), slog.Any("pid", p.PID), slog.String("kind", p.Kind.String())}
	if p.SID != "" {
		attrs = append(attrs, slog.String("sid", p.SID))
	}
	return slog.GroupValue(attrs...)
}

// Config configures a Listener.
type Config struct {
	// Path of the socket. Its directory is created mode 0700 (0711 on macOS) if missing,
	// and must otherwise be owned by this process's user with mode 0700 (0711 on macOS).
	Path string
	// AllowedUIDs are the peer uids whose connections Accept returns; nil
	// means root (0) only on Linux, root and SecurityAgent
	// (SecurityAgentUID, the authorization plugin's host) on macOS.
	AllowedUIDs []uint32
	// Logger receives a record for each rejected connection; nil discards.
	Logger *slog.Logger
}

// Listener accepts connections from allowed local peers.
type Listener struct {
	ln      *net.UnixListener
	path    string
	allowed []uint32
	log     *slog.Logger
}

// Path returns the socket path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file. Accept calls in
// progress return net.ErrClosed.
func (l *Listener) Close() error {
	if err := l.ln.Close(); err != nil {
		return fmt.Errorf("ipc: close listener: %w", err)
	}
	return nil
}

// Accept waits for a connection from an allowed peer and returns it.
// Connections from other peers, or whose credentials cannot be read, are
// closed at once and logged; Accept keeps waiting. It returns ctx's error
// when ctx is done.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	stop := watchDeadline(ctx, l.ln.SetDeadline)
	defer stop()
	for {
		nc, err := l.ln.AcceptUnix()
		if err != nil {
			return nil, fmt.Errorf("ipc: accept: %w", contextError(ctx, err))
		}
		peer, err := peerCredentials(nc)
		if err != nil {
			l.log.WarnContext(ctx, "ipc connection dropped: no peer credentials", "err", err)
			_ = nc.Close()
			continue
		}
		if !slices.Contains(l.allowed, peer.UID) {
			l.log.WarnContext(ctx, "ipc connection rejected", "peer", peer)
			_ = nc.Close()
			continue
		}
		peer.Kind = PeerSystem
		return newConn(nc, peer), nil
	}
}

// Conn is one framed connection. ReadMessage and WriteMessage may be used
// from different goroutines at the same time; calls of one of them are
// serialised. After a ReadMessage or WriteMessage error the stream may be
// out of step: close the Conn.
type Conn struct {
	nc   net.Conn
	peer Peer

	rmu sync.Mutex
	wmu sync.Mutex
}

func newConn(nc net.Conn, peer Peer) *Conn { return &Conn{nc: nc, peer: peer} }

// NewConn frames a connection whose peer another transport has already
// checked and classified: the Windows named pipe of winhelper/pipe, which
// admits LocalSystem (PeerSystem) and interactive users (PeerUser). nc's
// deadlines must interrupt blocked reads and writes.
func NewConn(nc net.Conn, peer Peer) *Conn { return newConn(nc, peer) }

// Peer returns the credentials of the other end: for a Listener's
// connection the login surface process, for Dial's the agent.
func (c *Conn) Peer() Peer { return c.peer }

// ReadMessage reads one message body. Its deadline is ctx's; cancelling ctx
// interrupts the read. A peer that closes cleanly between messages yields
// an error wrapping io.EOF.
func (c *Conn) ReadMessage(ctx context.Context) ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	stop := watchDeadline(ctx, c.nc.SetReadDeadline)
	defer stop()
	body, err := protocol.ReadIPCFrame(c.nc)
	if err != nil {
		return nil, fmt.Errorf("ipc: read message: %w", contextError(ctx, err))
	}
	return body, nil
}

// WriteMessage writes one message body (1..protocol.MaxIPCFrame bytes) in
// a single write. Its deadline is ctx's; cancelling ctx interrupts it.
func (c *Conn) WriteMessage(ctx context.Context, body []byte) error {
	frame, err := protocol.AppendIPCFrame(nil, body)
	if err != nil {
		return fmt.Errorf("ipc: write message: %w", err)
	}
	defer clear(frame) // messages may carry a password for the login surface
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stop := watchDeadline(ctx, c.nc.SetWriteDeadline)
	defer stop()
	if _, err := c.nc.Write(frame); err != nil {
		return fmt.Errorf("ipc: write message: %w", contextError(ctx, err))
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	if err := c.nc.Close(); err != nil {
		return fmt.Errorf("ipc: close: %w", err)
	}
	return nil
}

// contextError returns ctx's error in place of err when ctx caused it: the
// socket deadline can fire a moment before ctx itself reports being done.
func contextError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}

// watchDeadline applies ctx's deadline through set, and an immediate one
// when ctx is cancelled, until the returned stop is called.
func watchDeadline(ctx context.Context, set func(time.Time) error) (stop func()) {
	d, _ := ctx.Deadline()
	_ = set(d) // zero: no deadline
	after := context.AfterFunc(ctx, func() { _ = set(time.Unix(1, 0)) })
	return func() { after() }
}
