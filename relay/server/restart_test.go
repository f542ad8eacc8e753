package server_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

// killableConn is a relay's UDP socket that can be killed as by SIGKILL:
// from then on nothing is sent (no CONNECTION_CLOSE, no GoAway).
type killableConn struct {
	net.PacketConn
	dead atomic.Bool
}

func (k *killableConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if k.dead.Load() {
		return len(b), nil
	}
	return k.PacketConn.WriteTo(b, addr)
}

// kill silences the socket, closes it and stops the server.
func (k *killableConn) kill(cancel context.CancelFunc, done <-chan error) {
	k.dead.Store(true)
	k.PacketConn.Close()
	cancel()
	<-done
}

// TestReconnectAfterKill: a relay killed without any goodbye and restarted
// with the same key on the same address resets its predecessor's
// connections (stateless reset from a key derived from the TLS key), and
// clients reconnect within about a keep-alive period, far below the idle
// timeout.
func TestReconnectAfterKill(t *testing.T) {
	cfg := func() server.Config { return server.Config{Rand: newSeeded(7)} }
	s1, err := server.New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	k := &killableConn{PacketConn: pc}
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { done1 <- s1.Serve(ctx1, k) }()
	<-s1.Ready()
	r1 := &relay{Server: s1, addr: addr}

	const keepAlive = 500 * time.Millisecond
	fast := func(c *client.Config) { c.KeepAlive = keepAlive; c.IdleTimeout = 30 * time.Second }
	a, _ := startClient(t, r1, fast)
	b, _ := startClient(t, r1, fast)

	k.kill(cancel1, done1)
	r2 := startRelay(t, cfg(), addr)
	if r2.Pin() != s1.Pin() {
		t.Fatal("restarted relay has another pin")
	}
	start := time.Now()
	// A send on the dead connection fails promptly instead of hanging
	// until the idle timeout.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := a.Send(sctx, b.Addr(), []byte("lost")); err != nil && !errors.Is(err, client.ErrConnectionLost) && !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("send across the restart: %v, want nil, ErrConnectionLost or ErrNotConnected", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("send across the restart took %v", d)
	}
	// Both clients are back within a few keep-alive periods.
	deadline := time.Now().Add(4 * time.Second)
	for _, c := range []*client.Client{a, b} {
		for r2.metric(t, "jitkey_relay_peers") < 2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		wctx, wcancel := context.WithDeadline(context.Background(), deadline)
		err := c.WaitConnected(wctx)
		wcancel()
		if err != nil {
			t.Fatalf("client not reconnected %v after the restart: %v", time.Since(start), err)
		}
	}
	if n := r2.metric(t, "jitkey_relay_peers"); n != 2 {
		t.Fatalf("restarted relay has %d peers, want 2 (after %v)", n, time.Since(start))
	}
	t.Logf("reconnected in %v", time.Since(start))
	if err := a.Send(ctxT(t), b.Addr(), []byte("again")); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if m := relaytest.Recv(t, b); string(m.Payload) != "again" {
		t.Fatalf("got %q", m.Payload)
	}
}

// silentConn is a relay's UDP socket that can go silent both ways, as when
// the network between a peer and its relay is cut: packets are dropped, the
// relay keeps running and sends nothing (so no stateless reset either).
type silentConn struct {
	net.PacketConn
	silent atomic.Bool
}

func (s *silentConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := s.PacketConn.ReadFrom(b)
		if err != nil || !s.silent.Load() {
			return n, addr, err
		}
	}
}

func (s *silentConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if s.silent.Load() {
		return len(b), nil
	}
	return s.PacketConn.WriteTo(b, addr)
}

// TestPingTimeout: a client whose relay stops answering gives the
// connection up PingTimeout after its Ping (not at the 30 s idle timeout)
// and reconnects once the relay is reachable again; a relay that answers
// keeps its idle clients connected through many ping periods.
func TestPingTimeout(t *testing.T) {
	s, err := server.New(server.Config{Rand: newSeeded(9)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sc := &silentConn{PacketConn: pc}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, sc) }()
	t.Cleanup(func() { cancel(); <-done; pc.Close() })
	<-s.Ready()
	r := &relay{Server: s, addr: pc.LocalAddr().String()}

	const keepAlive, pingTimeout = 150 * time.Millisecond, 300 * time.Millisecond
	fast := func(c *client.Config) {
		c.KeepAlive, c.PingTimeout, c.IdleTimeout = keepAlive, pingTimeout, 30*time.Second
	}
	a, _ := startClient(t, r, fast)
	b, _ := startClient(t, r, fast)
	if err := a.WaitConnected(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Idle through ten ping periods: no reconnect while the relay answers.
	accepted := r.metric(t, "jitkey_relay_connections_accepted_total")
	time.Sleep(10 * keepAlive)
	if n := r.metric(t, "jitkey_relay_connections_accepted_total"); n != accepted {
		t.Fatalf("idle clients reconnected %d times while the relay answered their pings", n-accepted)
	}

	sc.silent.Store(true)
	start := time.Now()
	time.Sleep(keepAlive + pingTimeout + 500*time.Millisecond)
	sc.silent.Store(false)
	// Both clients gave up the silent connection and dial again; well
	// within the idle timeout they are back (the relay replaces each old
	// connection with its new one).
	deadline := time.Now().Add(5 * time.Second)
	for r.metric(t, "jitkey_relay_mailbox_replaced_total") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.metric(t, "jitkey_relay_mailbox_replaced_total"); n != 2 {
		t.Fatalf("%d of 2 clients reconnected %v after the relay went silent (idle timeout 30 s)", n, time.Since(start))
	}
	t.Logf("both clients back %v after the relay went silent", time.Since(start).Round(time.Millisecond))
	if err := a.Send(ctxT(t), b.Addr(), []byte("back")); err != nil {
		t.Fatalf("send after reconnect: %v", err)
	}
	if m := relaytest.Recv(t, b); string(m.Payload) != "back" {
		t.Fatalf("got %q", m.Payload)
	}
}
