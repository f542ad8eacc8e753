package server

import (
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
)

// TestShutdownWaitOrderedWithAccept is the race seen once in CI between
// Serve and Shutdown (TestLimitAcceptRatePerAddr's cleanup): Serve counted
// a connection it had just accepted in its WaitGroup while Shutdown,
// which had started meanwhile, waited on that WaitGroup; a first Add that
// is not ordered before a Wait is a data race. The test makes that
// interleaving certain: it starts Shutdown as soon as the connection is
// accepted (observed before Serve's Add, so that the observation orders
// nothing after it), and Serve, between its Add and anything else, waits
// until Shutdown is blocked in its Wait. Run with -race, which reports
// the unordered Add; without -race the test checks that Shutdown and Serve
// return.
func TestShutdownWaitOrderedWithAccept(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Limits: Limits{HandshakeTimeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	var shutdownDone atomic.Bool
	hooked := make(chan struct{})
	s.afterAdd = func() {
		defer close(hooked)
		// Serve must not synchronize with Shutdown here: wait, by
		// looking at goroutine stacks (which orders nothing), until
		// Shutdown is blocked on the WaitGroup or has returned.
		deadline := time.Now().Add(10 * time.Second)
		for !shutdownDone.Load() && !shutdownWaiting() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), pc) }()
	<-s.Ready()

	ctr := dialNoStream(t, pc.LocalAddr().String())
	defer ctr.Close()
	for deadline := time.Now().Add(30 * time.Second); s.met.connsAccepted.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("relay did not accept the connection")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	shutdownDone.Store(true)
	select {
	case err := <-served:
		if err != ErrServerClosed {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	// With the fix, Serve may also see Shutdown's drain before it counts
	// the connection (the window between the counter read above and
	// Serve's lock); it then closes the connection and the hook does not
	// run. Without the fix the hook always runs.
	select {
	case <-hooked:
	default:
		t.Log("Serve closed the connection during the drain without counting it")
	}
}

// shutdownWaiting reports whether a goroutine is blocked on a WaitGroup
// inside Server.Shutdown.
func shutdownWaiting() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*Server).Shutdown") && strings.Contains(g, "runtime_SemacquireWaitGroup") {
			return true
		}
	}
	return false
}

// dialNoStream completes a QUIC handshake with addr and keeps the
// connection open without a stream until the transport is closed.
func dialNoStream(t *testing.T, addr string) *quic.Transport {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	ra, _ := net.ResolveUDPAddr("udp", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx, ra, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}}, &quic.Config{HandshakeIdleTimeout: 20 * time.Second, MaxIdleTimeout: time.Minute}); err != nil {
		tr.Close()
		t.Fatal(err)
	}
	return tr
}
