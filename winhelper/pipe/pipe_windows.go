//go:build windows

package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/jitkey/jitkey/agent/ipc"
)

const bufSize = 64 << 10

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	c.SDDL = c.Descriptor()
	if c.AllowedSIDs == nil {
		c.AllowedSIDs = []string{SIDSystem}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Listener accepts connections from allowed clients.
type Listener struct {
	cfg Config
	sa  *windows.SecurityAttributes

	mu     sync.Mutex
	next   windows.Handle // the instance waiting for the next client
	closed bool
	stop   windows.Handle // manual-reset event set by Close
}

// Listen creates the pipe's first instance. It fails if the name exists
// already (another agent, or a squatter).
func Listen(ctx context.Context, cfg Config) (*Listener, error) {
	cfg.defaults()
	sd, err := windows.SecurityDescriptorFromString(cfg.SDDL)
	if err != nil {
		return nil, fmt.Errorf("pipe: security descriptor: %w", err)
	}
	l := &Listener{cfg: cfg, sa: &windows.SecurityAttributes{SecurityDescriptor: sd}}
	l.sa.Length = uint32(unsafe.Sizeof(*l.sa))
	if l.stop, err = windows.CreateEvent(nil, 1, 0, nil); err != nil {
		return nil, fmt.Errorf("pipe: create event: %w", err)
	}
	if l.next, err = l.instance(true); err != nil {
		windows.CloseHandle(l.stop)
		return nil, err
	}
	return l, nil
}

func (l *Listener) instance(first bool) (windows.Handle, error) {
	name, err := windows.UTF16PtrFromString(l.cfg.Name)
	if err != nil {
		return 0, fmt.Errorf("pipe: name: %w", err)
	}
	flags := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	const rejectRemote = 0x8 // PIPE_REJECT_REMOTE_CLIENTS
	h, err := windows.CreateNamedPipe(name, flags,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|rejectRemote,
		windows.PIPE_UNLIMITED_INSTANCES, bufSize, bufSize, 0, l.sa)
	if err != nil {
		return 0, fmt.Errorf("pipe: create %s: %w", l.cfg.Name, err)
	}
	return h, nil
}

// Accept waits for a client whose token Classify admits and returns its
// connection, with the peer's kind and SID. Other clients are
// disconnected before a byte is read, and logged; Accept keeps waiting.
// It returns ctx's error when ctx is done and net.ErrClosed after Close.
func (l *Listener) Accept(ctx context.Context) (*ipc.Conn, error) {
	for {
		h, err := l.connect(ctx)
		if err != nil {
			return nil, err
		}
		tok, pid, err := clientIdentity(h)
		var kind ipc.PeerKind
		if err == nil {
			kind, err = Classify(l.cfg.AllowedSIDs, l.cfg.SystemOnly, tok)
		}
		if err != nil {
			l.cfg.Logger.WarnContext(ctx, "ipc connection rejected", "sid", tok.User, "pid", pid, "err", err)
			_ = windows.DisconnectNamedPipe(h)
			windows.CloseHandle(h)
			continue
		}
		return ipc.NewConn(newConn(h, l.cfg.Name), ipc.Peer{PID: int32(pid), Kind: kind, SID: tok.User}), nil
	}
}

// connect waits for a client on the waiting instance, puts a new
// instance in its place and returns the connected one.
func (l *Listener) connect(ctx context.Context) (windows.Handle, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, fmt.Errorf("pipe: accept: %w", net.ErrClosed)
	}
	h := l.next
	l.mu.Unlock()

	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return 0, fmt.Errorf("pipe: accept: %w", err)
	}
	defer windows.CloseHandle(ev)
	ctxEv, stopCtx := contextEvent(ctx)
	defer stopCtx()
	ov := new(windows.Overlapped)
	ov.HEvent = ev
	err = windows.ConnectNamedPipe(h, ov)
	switch {
	case err == nil, errors.Is(err, windows.ERROR_PIPE_CONNECTED):
	case errors.Is(err, windows.ERROR_IO_PENDING):
		r, werr := windows.WaitForMultipleObjects([]windows.Handle{ev, l.stop, ctxEv}, false, windows.INFINITE)
		if werr != nil || r != windows.WAIT_OBJECT_0 {
			_ = windows.CancelIoEx(h, ov)
			var n uint32
			_ = windows.GetOverlappedResult(h, ov, &n, true)
			if ctx.Err() != nil {
				return 0, fmt.Errorf("pipe: accept: %w", ctx.Err())
			}
			return 0, fmt.Errorf("pipe: accept: %w", net.ErrClosed)
		}
		var n uint32
		if err := windows.GetOverlappedResult(h, ov, &n, false); err != nil && !errors.Is(err, windows.ERROR_PIPE_CONNECTED) {
			_ = windows.DisconnectNamedPipe(h)
			return 0, l.replaceAfterError(h, err)
		}
	default:
		// ERROR_NO_DATA: the client came and went; start over.
		_ = windows.DisconnectNamedPipe(h)
		return 0, l.replaceAfterError(h, err)
	}
	nh, err := l.instance(false)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.next = nh
	l.mu.Unlock()
	return h, nil
}

// replaceAfterError keeps the failed instance for the next client where
// it can be reused (it was disconnected) and reports err.
func (l *Listener) replaceAfterError(h windows.Handle, err error) error {
	if errors.Is(err, windows.ERROR_NO_DATA) || errors.Is(err, windows.ERROR_BROKEN_PIPE) {
		return fmt.Errorf("pipe: accept: client left: %w", err)
	}
	return fmt.Errorf("pipe: accept: %w", err)
}

// Close stops accepting. Connections already returned stay open.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	_ = windows.SetEvent(l.stop)
	_ = windows.CancelIoEx(l.next, nil)
	return windows.CloseHandle(l.next)
}

// contextEvent returns an event that is set when ctx is done.
func contextEvent(ctx context.Context) (windows.Handle, func()) {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return 0, func() {}
	}
	stop := context.AfterFunc(ctx, func() { _ = windows.SetEvent(ev) })
	return ev, func() {
		stop()
		windows.CloseHandle(ev)
	}
}

// clientIdentity impersonates the pipe's client on a locked thread and
// returns what Classify needs of its token, and its process id.
func clientIdentity(h windows.Handle) (Token, uint32, error) {
	var pid uint32
	_ = windows.GetNamedPipeClientProcessId(h, &pid)
	// A goroutine that cannot revert stays locked: the runtime then
	// ends its thread instead of reusing it with the client's identity.
	runtime.LockOSThread()
	if err := impersonateNamedPipeClient(h); err != nil {
		runtime.UnlockOSThread()
		return Token{}, pid, fmt.Errorf("pipe: impersonate client: %w", err)
	}
	var tok windows.Token
	err := windows.OpenThreadToken(windows.CurrentThread(), windows.TOKEN_QUERY, true, &tok)
	if rerr := windows.RevertToSelf(); rerr != nil {
		if err == nil {
			tok.Close()
		}
		return Token{}, pid, fmt.Errorf("pipe: revert to self: %w", rerr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return Token{}, pid, fmt.Errorf("pipe: client token: %w", err)
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return Token{}, pid, fmt.Errorf("pipe: client token user: %w", err)
	}
	t := Token{User: u.User.Sid.String()}
	gs, err := tok.GetTokenGroups()
	if err != nil {
		return t, pid, fmt.Errorf("pipe: client token groups: %w", err)
	}
	for _, g := range gs.AllGroups() {
		t.Groups = append(t.Groups, Group{SID: g.Sid.String(), Attributes: g.Attributes})
	}
	return t, pid, nil
}

// Dial connects to the agent's pipe cfg.Name and checks that the process
// serving it runs as one of cfg.AllowedSIDs (SYSTEM by default). It
// identifies itself at SecurityIdentification level only: the agent can
// read who it is but cannot act as it. It asks for ClientAccess, which
// the pipe grants a user as well as SYSTEM.
func Dial(ctx context.Context, cfg Config) (*ipc.Conn, error) {
	cfg.defaults()
	name, err := windows.UTF16PtrFromString(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("pipe: dial: %w", err)
	}
	const sqos = 0x00100000 | 0x00010000 // SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION
	var h windows.Handle
	for {
		h, err = windows.CreateFile(name, ClientAccess, 0, nil,
			windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED|sqos, 0)
		if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pipe: dial: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pipe: dial: %w", err)
	}
	var pid uint32
	if err := getNamedPipeServerProcessId(h, &pid); err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("pipe: dial: server process: %w", err)
	}
	sid, err := processSID(pid)
	if err != nil || !Allowed(cfg.AllowedSIDs, sid) {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("pipe: dial: server %s (pid %d): %w", sid, pid, ErrRefused)
	}
	return ipc.NewConn(newConn(h, cfg.Name), ipc.Peer{PID: int32(pid)}), nil
}

func processSID(pid uint32) (string, error) {
	p, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return "", err
	}
	defer windows.CloseHandle(p)
	var tok windows.Token
	if err := windows.OpenProcessToken(p, windows.TOKEN_QUERY, &tok); err != nil {
		return "", err
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return "", err
	}
	return u.User.Sid.String(), nil
}

// conn is a net.Conn over an overlapped pipe handle. Each Read or Write
// waits for its own operation, its deadline and Close; a deadline or
// Close cancels the operation (CancelIoEx) and waits for it to finish
// before returning, so the buffer is never written after Read returns.
type conn struct {
	h     windows.Handle
	name  string
	close windows.Handle // manual-reset event set by Close
	rd    deadline
	wd    deadline

	mu     sync.Mutex
	ops    sync.WaitGroup
	closed bool
}

type deadline struct {
	mu      sync.Mutex
	t       time.Time
	changed windows.Handle // auto-reset event set by Set
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	d.t = t
	d.mu.Unlock()
	_ = windows.SetEvent(d.changed)
}

// wait returns the wait time in milliseconds and whether the deadline
// has passed.
func (d *deadline) wait() (uint32, bool) {
	d.mu.Lock()
	t := d.t
	d.mu.Unlock()
	if t.IsZero() {
		return windows.INFINITE, false
	}
	left := time.Until(t)
	if left <= 0 {
		return 0, true
	}
	ms := left.Milliseconds() + 1
	if ms >= windows.INFINITE {
		ms = windows.INFINITE - 1
	}
	return uint32(ms), false
}

func newConn(h windows.Handle, name string) *conn {
	c := &conn{h: h, name: name}
	c.close, _ = windows.CreateEvent(nil, 1, 0, nil)
	c.rd.changed, _ = windows.CreateEvent(nil, 0, 0, nil)
	c.wd.changed, _ = windows.CreateEvent(nil, 0, 0, nil)
	return c
}

func (c *conn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.ops.Add(1)
	return true
}

func (c *conn) io(b []byte, write bool, d *deadline) (int, error) {
	if !c.begin() {
		return 0, net.ErrClosed
	}
	defer c.ops.Done()
	if len(b) == 0 {
		return 0, nil
	}
	if _, passed := d.wait(); passed {
		return 0, os.ErrDeadlineExceeded
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return 0, err
	}
	defer windows.CloseHandle(ev)
	ov := new(windows.Overlapped)
	ov.HEvent = ev
	var n uint32
	if write {
		err = windows.WriteFile(c.h, b, &n, ov)
	} else {
		err = windows.ReadFile(c.h, b, &n, ov)
	}
	if err != nil && !errors.Is(err, windows.ERROR_IO_PENDING) {
		return 0, ioError(err)
	}
	var why error
	for why == nil {
		ms, passed := d.wait()
		if passed {
			why = os.ErrDeadlineExceeded
			break
		}
		r, werr := windows.WaitForMultipleObjects([]windows.Handle{ev, c.close, d.changed}, false, ms)
		switch {
		case werr != nil:
			why = werr
		case r == windows.WAIT_OBJECT_0:
			if err := windows.GetOverlappedResult(c.h, ov, &n, false); err != nil {
				return int(n), ioError(err)
			}
			return int(n), nil
		case r == windows.WAIT_OBJECT_0+1:
			why = net.ErrClosed
		case r == uint32(windows.WAIT_TIMEOUT):
			why = os.ErrDeadlineExceeded
		}
		// WAIT_OBJECT_0+2: the deadline changed; look again.
	}
	_ = windows.CancelIoEx(c.h, ov)
	if err := windows.GetOverlappedResult(c.h, ov, &n, true); err == nil {
		return int(n), nil // it completed before the cancel
	}
	return 0, why
}

func ioError(err error) error {
	if errors.Is(err, windows.ERROR_BROKEN_PIPE) || errors.Is(err, windows.ERROR_PIPE_NOT_CONNECTED) || errors.Is(err, windows.ERROR_NO_DATA) {
		return io.EOF
	}
	return err
}

func (c *conn) Read(b []byte) (int, error) { return c.io(b, false, &c.rd) }

func (c *conn) Write(b []byte) (int, error) {
	total := 0
	for total < len(b) {
		n, err := c.io(b[total:], true, &c.wd)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Close cancels pending operations, waits for them and closes the pipe.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	_ = windows.SetEvent(c.close)
	c.ops.Wait()
	// CloseHandle without DisconnectNamedPipe: the client still reads
	// what was written (a Credential) before it sees the end.
	err := windows.CloseHandle(c.h)
	windows.CloseHandle(c.close)
	windows.CloseHandle(c.rd.changed)
	windows.CloseHandle(c.wd.changed)
	return err
}

type addr string

func (a addr) Network() string { return "pipe" }
func (a addr) String() string  { return string(a) }

func (c *conn) LocalAddr() net.Addr  { return addr(c.name) }
func (c *conn) RemoteAddr() net.Addr { return addr(c.name) }

func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}
func (c *conn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }
