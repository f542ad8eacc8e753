package client_test

import (
	"context"
	"crypto/ed25519"
	"net"
	"testing"
	"time"

	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

// testRelay is a real relay (relay/server) on loopback.
type testRelay struct {
	*server.Server
	port string
}

// startRelay serves a relay on listen ("127.0.0.1:0", "[::1]:0", "[::]:0")
// until the end of the test.
func startRelay(t *testing.T, lim server.Limits, listen string) *testRelay {
	t.Helper()
	s, err := server.New(server.Config{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		t.Skipf("listen %s: %v", listen, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), pc) }()
	<-s.Ready()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("relay did not stop")
		}
	})
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	return &testRelay{Server: s, port: port}
}

// metric reads one counter or gauge of the relay.
func (r *testRelay) metric(t *testing.T, name string) int64 {
	t.Helper()
	return relaytest.Metric(t, r.MetricsHandler(), name)
}

// runClient runs a client homed at home (a spelling of a relay's address)
// until the end of the test, and waits until it is connected. exited
// reports Run's result once it has returned (nil while it runs).
func runClient(t *testing.T, home string, pins [][32]byte, mod func(*client.Config)) (c *client.Client, exited func() error) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Config{Identity: k, Home: home, Pins: pins, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err = client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var runErr error
	go func() {
		runErr = c.Run(context.Background())
		close(done)
	}()
	t.Cleanup(func() {
		c.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after Close")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("client homed at %s did not connect: %v", home, err)
	}
	return c, func() error {
		select {
		case <-done:
			return runErr
		default:
			return nil
		}
	}
}
