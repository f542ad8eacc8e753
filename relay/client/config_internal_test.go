package client

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// TestNoQUICKeepAlive: the app Ping is the keep-alive (pingLoop); a QUIC
// keep-alive at the same period would add a PING and its ACK per period
// and idle peer on the relay for nothing (BENCHMARKS.md, Relay).
func TestNoQUICKeepAlive(t *testing.T) {
	c, err := New(Config{
		Identity: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)),
		Home:     "127.0.0.1:4443",
		Pins:     [][32]byte{{1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	q := c.quicConfig()
	if q.KeepAlivePeriod != 0 {
		t.Errorf("QUIC KeepAlivePeriod = %v, want 0 (the app Ping keeps the connection alive)", q.KeepAlivePeriod)
	}
	if q.MaxIdleTimeout != 45*time.Second || c.cfg.KeepAlive != 15*time.Second {
		t.Errorf("idle timeout %v, app keep-alive %v: the Ping must come well within the idle timeout", q.MaxIdleTimeout, c.cfg.KeepAlive)
	}
}
