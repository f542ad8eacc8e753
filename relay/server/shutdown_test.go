package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// TestShutdownWhileAccepting shuts relays down while Serve accepts
// connections that never authenticate, many times. Serve's WaitGroup.Add
// for an accepted connection must be ordered with Shutdown's Wait (a
// first Add concurrent with a Wait is a data race: the race detector
// reported it once in CI, in TestLimitAcceptRatePerAddr's cleanup); run
// it with -race. Every Serve must return ErrServerClosed, and Shutdown
// must not wait for the pending connections' handshake timeout.
func TestShutdownWhileAccepting(t *testing.T) {
	const rounds = 30
	for i := range rounds {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.New(server.Config{Limits: server.Limits{HandshakeTimeout: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		r := &relay{Server: s, addr: pc.LocalAddr().String()}
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background(), pc) }()
		<-s.Ready()
		// The handshake completes as Shutdown starts: Serve accepts the
		// connection before Shutdown or while it drains (quic-go's
		// Accept still returns queued connections after Close).
		tr, err := dialPending(r)
		if err != nil {
			t.Fatalf("round %d: dial: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		err = s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Shutdown: %v", i, err)
		}
		// Not the pending connection's one-minute handshake timeout.
		if d := time.Since(t0); d > 20*time.Second {
			t.Fatalf("round %d: Shutdown took %s", i, d)
		}
		select {
		case err := <-done:
			if err != server.ErrServerClosed {
				t.Fatalf("round %d: Serve returned %v, want ErrServerClosed", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Serve did not return after Shutdown", i)
		}
		tr.Close()
	}
}

// dialPending completes a QUIC handshake with r and keeps the connection
// open without a stream; closing the returned transport ends it.
func dialPending(r *relay) (*quic.Transport, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: pc}
	ra, _ := net.ResolveUDPAddr("udp", r.addr)
	// Generous: a loaded CI machine can take seconds for a handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx, ra, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}}, &quic.Config{HandshakeIdleTimeout: 20 * time.Second, MaxIdleTimeout: time.Minute}); err != nil {
		return tr, err
	}
	return tr, nil
}
