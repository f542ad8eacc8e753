// Package ipctest is a fake platform listener for the agent's IPC: a
// real Unix socket whose connections carry a Peer the test chooses, as
// winhelper/pipe classifies a Windows client (ipc.PeerSystem for
// LocalSystem, ipc.PeerUser with a SID for an interactive user). It lets
// tests on Linux drive agent/ipcserver's peer rules (SPEC.md 5.7
// "Peers") as the named pipe would.
package ipctest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/jitkey/jitkey/agent/ipc"
)

// Listener is a Unix socket listener that labels every connection with
// one fixed Peer (its PID replaced by 0: the fake does not read it).
type Listener struct {
	ln   *net.UnixListener
	mu   sync.Mutex
	peer ipc.Peer
}

// Listen listens on the Unix socket path (which must not exist) and
// labels its connections with peer.
func Listen(path string, peer ipc.Peer) (*Listener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ipctest: listen: %w", err)
	}
	peer.PID = 0
	return &Listener{ln: ln, peer: peer}, nil
}

// SetPeer changes the Peer of the connections accepted from now on.
func (l *Listener) SetPeer(p ipc.Peer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peer = p
}

// Accept waits for a connection; it returns ctx's error once ctx is done.
func (l *Listener) Accept(ctx context.Context) (*ipc.Conn, error) {
	stop := context.AfterFunc(ctx, func() { _ = l.ln.Close() })
	defer stop()
	nc, err := l.ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ipctest: accept: %w", err)
	}
	l.mu.Lock()
	p := l.peer
	l.mu.Unlock()
	return ipc.NewConn(nc, p), nil
}

// Close stops listening and removes the socket.
func (l *Listener) Close() error {
	if err := l.ln.Close(); err != nil && !isClosed(err) {
		return fmt.Errorf("ipctest: close: %w", err)
	}
	return nil
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
