//go:build linux || windows

package winudp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// hookSocket reports each wait on waits and can inject errReset before
// the real receive.
type hookSocket struct {
	socket
	waits  chan time.Duration
	resets atomic.Int32
}

func (h *hookSocket) wait(timeout time.Duration) (bool, bool, error) {
	select {
	case h.waits <- timeout:
	default:
	}
	return h.socket.wait(timeout)
}

func (h *hookSocket) recvFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := h.socket.recvFrom(b)
	if err == nil && h.resets.Add(-1) >= 0 {
		// Report the datagram as an ICMP error, as Windows does for an
		// earlier send that drew a port unreachable.
		return 0, netip.AddrPort{}, errReset
	}
	return n, from, err
}

func newTestConn(t *testing.T) (*Conn, *hookSocket) {
	t.Helper()
	s, err := openTestSocket()
	if err != nil {
		t.Fatal(err)
	}
	h := &hookSocket{socket: s, waits: make(chan time.Duration, 1)}
	c := newConn(h)
	t.Cleanup(func() { c.Close() })
	return c, h
}

type readResult struct {
	n    int
	from net.Addr
	err  error
}

func readAsync(c *Conn, b []byte) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		n, from, err := c.ReadFrom(b)
		ch <- readResult{n, from, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFrom did not return")
		return readResult{}
	}
}

// waiting blocks until the reader is in its wait (the hook saw it).
func waiting(t *testing.T, h *hookSocket) time.Duration {
	t.Helper()
	select {
	case d := <-h.waits:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("the reader never waited")
		return 0
	}
}

func TestRoundTrip(t *testing.T) {
	a, _ := newTestConn(t)
	b, hb := newTestConn(t)
	buf := make([]byte, 100)
	ch := readAsync(b, buf)
	if d := waiting(t, hb); d >= 0 {
		t.Fatalf("wait timeout %v without a deadline, want forever", d)
	}
	if n, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil || n != 5 {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	r := await(t, ch)
	if r.err != nil || string(buf[:r.n]) != "hello" {
		t.Fatalf("ReadFrom: %q, %v", buf[:r.n], r.err)
	}
	if r.from.String() != a.LocalAddr().String() {
		t.Fatalf("from %v, want %v", r.from, a.LocalAddr())
	}
	if _, err := a.WriteTo([]byte("x"), &net.TCPAddr{}); err == nil {
		t.Fatal("WriteTo a TCP address: no error")
	}
}

// TestDeadlineInterruptsRead is what quic-go's Transport.Close does: a
// read waiting without deadline returns a temporary timeout when another
// goroutine sets the deadline to now; with the deadline cleared, reads
// work again.
func TestDeadlineInterruptsRead(t *testing.T) {
	a, _ := newTestConn(t)
	b, hb := newTestConn(t)
	buf := make([]byte, 100)
	ch := readAsync(b, buf)
	waiting(t, hb)
	if err := b.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch)
	var ne net.Error
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || !errors.As(r.err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrom after SetReadDeadline(now): %v, want a timeout", r.err)
	}
	if tmp, ok := r.err.(interface{ Temporary() bool }); !ok || !tmp.Temporary() {
		t.Fatalf("the timeout %v is not Temporary: quic-go's read loop would close the transport", r.err)
	}
	if err := b.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	ch = readAsync(b, buf)
	waiting(t, hb)
	if _, err := a.WriteTo([]byte("again"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil || string(buf[:r.n]) != "again" {
		t.Fatalf("ReadFrom after clearing the deadline: %q, %v", buf[:r.n], r.err)
	}
}

func TestDeadlineExpires(t *testing.T) {
	b, hb := newTestConn(t)
	const d = 50 * time.Millisecond
	start := time.Now()
	if err := b.SetReadDeadline(start.Add(d)); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.ReadFrom(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom: %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("returned after %v, before the %v deadline", el, d)
	}
	select {
	case w := <-hb.waits:
		if w <= 0 || w > d {
			t.Fatalf("waited with timeout %v, want in (0, %v]", w, d)
		}
	default:
		t.Fatal("ReadFrom did not wait")
	}
	// A deadline already past fails at once, without waiting.
	b.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := b.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom with a past deadline: %v", err)
	}
	select {
	case w := <-hb.waits:
		t.Fatalf("waited (%v) with a past deadline", w)
	default:
	}
	b.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := b.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteTo with a past deadline: %v", err)
	}
}

func TestCloseInterruptsRead(t *testing.T) {
	b, hb := newTestConn(t)
	ch := readAsync(b, make([]byte, 10))
	waiting(t, hb)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", r.err)
	}
	if err := b.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if _, _, err := b.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if err := b.SetReadDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetReadDeadline after Close: %v", err)
	}
}

// TestResetSkipped: an ICMP error report (WSAECONNRESET on Windows) is
// not an error of the socket; the read goes on to the next datagram.
func TestResetSkipped(t *testing.T) {
	a, _ := newTestConn(t)
	b, hb := newTestConn(t)
	hb.resets.Store(1)
	for _, s := range []string{"reported as reset", "real"} {
		if _, err := a.WriteTo([]byte(s), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	n, _, err := b.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "real" {
		t.Fatalf("ReadFrom: %q, %v; want the datagram after the reset", buf[:n], err)
	}
	if err := b.SetReadBuffer(1 << 20); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}
	if err := b.SetWriteBuffer(1 << 20); err != nil {
		t.Fatalf("SetWriteBuffer: %v", err)
	}
}

// TestQUIC runs quic-go over the Conn as the relay client does (a
// quic.Transport on it, a dial, a stream echo), then closes the
// transport, which interrupts the read loop with SetReadDeadline.
// The server's socket is a Conn too.
func TestQUIC(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Both ends on a Conn: under Wine net.ListenUDP cannot open one.
	srvConn, _ := newTestConn(t)
	ln, err := quic.Listen(srvConn, serverTLS(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()

	c, _ := newTestConn(t)
	tr := &quic.Transport{Conn: c}
	conn, err := tr.Dial(ctx, srvConn.LocalAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"winudp-test"}}, nil)
	if err != nil {
		t.Fatalf("dial over the winudp Conn: %v", err)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("jitkey "), 2000) // several packets
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d bytes, %v; want %d", len(got), err, len(msg))
	}
	conn.CloseWithError(0, "")
	done := make(chan error, 1)
	go func() { done <- tr.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Transport.Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Transport.Close did not return: its read loop was not interrupted")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := srvConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if st := string(buf[:runtime.Stack(buf, true)]); strings.Contains(st, "winudp.(*Conn).ReadFrom") {
		t.Fatalf("a read is still running after Close:\n%s", st)
	}
}

func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}, NextProtos: []string{"winudp-test"}}
}
