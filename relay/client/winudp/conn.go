// Package winudp is a UDP net.PacketConn built on plain winsock calls
// (socket, bind, select, recvfrom, sendto, closesocket), for Wine.
//
// It exists for Wine only: Go's net package turns off
// SIO_UDP_CONNRESET with WSAIoctl on every UDP socket it opens, and
// Wine 8 answers that ioctl with WSAEOPNOTSUPP ("winapi error #10045"),
// so net.ListenUDP fails there and a Windows agent under Wine would have
// no relay socket. The relay client (relay/client) takes this package
// only when net.ListenUDP fails with exactly that error (Fallback), and
// logs that it did; real Windows implements the ioctl and never takes
// it.
//
// The socket is blocking. A read waits in select on the socket and on a
// second loopback socket (the waker) to which SetReadDeadline and Close
// send a byte, so that a deadline set from another goroutine interrupts
// a waiting read as quic-go needs (quic-go's Transport.Close calls
// SetReadDeadline(time.Now()) and waits for its read loop to end). The
// connection has no SyscallConn and no ReadMsgUDP, so quic-go uses it as
// a basic net.PacketConn (no ECN, no GSO, no DF). Receive errors that
// report an ICMP answer to an earlier send (WSAECONNRESET, WSAENETRESET:
// what SIO_UDP_CONNRESET would have switched off) are skipped.
package winudp

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// errReset is what a socket's recvFrom returns for a datagram that only
// reports an ICMP error for an earlier send; the Conn reads on.
var errReset = errors.New("winudp: icmp error report")

// socket is the platform's datagram socket with its waker.
type socket interface {
	// wait blocks until the socket or the waker is readable, or for
	// timeout (forever if timeout < 0).
	wait(timeout time.Duration) (readable, woken bool, err error)
	// recvFrom reads one datagram from the socket; it returns errReset
	// for an ICMP error report.
	recvFrom(b []byte) (int, netip.AddrPort, error)
	// sendTo sends b to addr.
	sendTo(b []byte, addr netip.AddrPort) error
	// wake makes a waiting or the next wait return woken.
	wake() error
	// drainWake consumes one wake; call it only after wait said woken.
	drainWake() error
	// setBuffer sets the socket's receive (read) or send buffer size.
	setBuffer(read bool, n int) error
	localAddr() netip.AddrPort
	close() error
}

// Conn is a UDP net.PacketConn over a socket. Its methods are safe for
// concurrent use; reads are served one at a time.
type Conn struct {
	sock  socket
	laddr *net.UDPAddr
	ops   sync.WaitGroup // reads and writes in progress, for Close
	rmu   sync.Mutex     // one reader at a time

	mu       sync.Mutex
	closed   bool
	reading  bool // a reader is in its wait loop
	rdl, wdl time.Time
}

func newConn(s socket) *Conn {
	return &Conn{sock: s, laddr: net.UDPAddrFromAddrPort(s.localAddr())}
}

// begin registers an operation; it fails once the Conn is closed.
func (c *Conn) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.ops.Add(1)
	return nil
}

func (c *Conn) opErr(op string, addr net.Addr, err error) error {
	e := &net.OpError{Op: op, Net: "udp", Source: c.laddr, Err: err}
	if addr != nil {
		e.Addr = addr
	}
	return e
}

// ReadFrom reads one datagram. It returns an error satisfying
// errors.Is(err, os.ErrDeadlineExceeded) (a net.Error whose Timeout and
// Temporary are true) once the read deadline has passed, and one
// satisfying errors.Is(err, net.ErrClosed) after Close.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	if err := c.begin(); err != nil {
		return 0, nil, c.opErr("read", nil, err)
	}
	defer c.ops.Done()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reading = false
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		closed, dl := c.closed, c.rdl
		c.reading = true
		c.mu.Unlock()
		if closed {
			return 0, nil, c.opErr("read", nil, net.ErrClosed)
		}
		timeout := time.Duration(-1)
		if !dl.IsZero() {
			if timeout = time.Until(dl); timeout <= 0 {
				return 0, nil, c.opErr("read", nil, os.ErrDeadlineExceeded)
			}
		}
		readable, woken, err := c.sock.wait(timeout)
		if err != nil {
			return 0, nil, c.opErr("read", nil, err)
		}
		if woken {
			if err := c.sock.drainWake(); err != nil {
				return 0, nil, c.opErr("read", nil, err)
			}
		}
		if !readable {
			continue // woken or timed out: look at the deadline again
		}
		n, from, err := c.sock.recvFrom(b)
		if errors.Is(err, errReset) {
			continue
		}
		if err != nil {
			return 0, nil, c.opErr("read", nil, err)
		}
		return n, net.UDPAddrFromAddrPort(from), nil
	}
}

// WriteTo sends b to addr, a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErr("write", addr, net.InvalidAddrError("not a UDP address"))
	}
	if err := c.begin(); err != nil {
		return 0, c.opErr("write", addr, err)
	}
	defer c.ops.Done()
	c.mu.Lock()
	dl := c.wdl
	c.mu.Unlock()
	if !dl.IsZero() && !time.Now().Before(dl) {
		return 0, c.opErr("write", addr, os.ErrDeadlineExceeded)
	}
	if err := c.sock.sendTo(b, ua.AddrPort()); err != nil {
		return 0, c.opErr("write", addr, err)
	}
	return len(b), nil
}

// Close closes the socket; a read waiting in another goroutine returns
// net.ErrClosed. Close waits for reads and writes in progress to end.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("close", nil, net.ErrClosed)
	}
	c.closed = true
	reading := c.reading
	c.mu.Unlock()
	if reading {
		if err := c.sock.wake(); err != nil {
			return c.opErr("close", nil, err)
		}
	}
	c.ops.Wait()
	if err := c.sock.close(); err != nil {
		return c.opErr("close", nil, err)
	}
	return nil
}

// LocalAddr is the address the socket is bound to.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets the read deadline; a read waiting in another
// goroutine sees the new deadline at once (zero: no deadline).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("set", nil, net.ErrClosed)
	}
	c.rdl = t
	reading := c.reading
	c.mu.Unlock()
	if reading {
		if err := c.sock.wake(); err != nil {
			return c.opErr("set", nil, err)
		}
	}
	return nil
}

// SetWriteDeadline sets the write deadline, checked when a write starts
// (a UDP send does not wait for the peer).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", nil, net.ErrClosed)
	}
	c.wdl = t
	return nil
}

// SetReadBuffer sets the socket's receive buffer size (SO_RCVBUF);
// quic-go asks for a larger one than the default.
func (c *Conn) SetReadBuffer(n int) error { return c.setBuffer(true, n) }

// SetWriteBuffer sets the socket's send buffer size (SO_SNDBUF).
func (c *Conn) SetWriteBuffer(n int) error { return c.setBuffer(false, n) }

func (c *Conn) setBuffer(read bool, n int) error {
	if err := c.begin(); err != nil {
		return c.opErr("set", nil, err)
	}
	defer c.ops.Done()
	if err := c.sock.setBuffer(read, n); err != nil {
		return c.opErr("set", nil, err)
	}
	return nil
}

var _ net.PacketConn = (*Conn)(nil)
