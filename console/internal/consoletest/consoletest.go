// Package consoletest runs a console over a real QUIC relay on loopback
// for the console's tests: a relay server with its default limits, a
// console state directory homed on it, and console/server on a relay
// client, as `jitkey-console serve` runs them. Everything stops when the
// test ends.
package consoletest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/authority"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	relayserver "github.com/jitkey/jitkey/relay/server"
)

// Relay is a relay server running on loopback.
type Relay struct {
	// Addr is its UDP address, host:port.
	Addr string
	// Pin is its pin (SHA-256 of its certificate's SPKI).
	Pin [32]byte
}

// Pins is the relay's pin as relay/client and console.InitOptions take it.
func (r Relay) Pins() [][32]byte { return [][32]byte{r.Pin} }

// StartRelay starts a relay server with its default limits on a loopback
// UDP port; it stops when the test ends.
func StartRelay(t testing.TB) Relay {
	t.Helper()
	rs, err := relayserver.New(relayserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rs.Serve(ctx, pc) }()
	t.Cleanup(func() { cancel(); <-done })
	return Relay{Addr: pc.LocalAddr().String(), Pin: rs.Pin()}
}

// NewConsole initialises a console state directory dir ("": a new
// temporary one) for the organisation "Acme MSP" homed on r (MSP key
// without a passphrase) and opens it with its MSP key, with clock now and
// logger log. It returns the console and its store, which closes when the
// test ends. r need not be running to make the console.
func NewConsole(ctx context.Context, t testing.TB, dir string, r Relay, now func() time.Time, log *slog.Logger) (*console.Console, *store.DB) {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "state")
	}
	if _, _, err := console.Init(ctx, dir, console.InitOptions{Org: "Acme MSP", Relay: r.Addr, RelayPins: r.Pins(), Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	db, peer, err := console.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	auth, err := authority.LoadAuthority(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(ctx, console.Config{DB: db, Peer: peer, Authority: auth, Now: now, Rand: rand.Reader, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return con, db
}

// RunServer runs console/server with cfg until the test ends; a server
// error then fails the test.
func RunServer(ctx context.Context, t testing.TB, cfg server.Config) {
	t.Helper()
	srv := server.New(cfg)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
}

// Serve runs console/server for cfg.Console on a relay client homed on r
// until the test ends (a server error then fails the test) and returns
// once the client is connected to the relay. It sets cfg.Relay and
// cfg.Recv; the caller sets the rest (the intervals, the logger, the
// sign-in registry).
func Serve(ctx context.Context, t testing.TB, r Relay, cfg server.Config) {
	t.Helper()
	rc, err := client.New(client.Config{Identity: cfg.Console.Peer().Identity, Home: r.Addr, Pins: r.Pins()})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	rcDone := make(chan error, 1)
	go func() { rcDone <- rc.Run(rctx) }()
	t.Cleanup(func() { rcancel(); rc.Close(); <-rcDone }) // after the server's
	cfg.Relay = rc
	cfg.Recv = func(ctx context.Context) (protocol.PeerAddr, []byte, error) {
		m, err := rc.Recv(ctx)
		return m.From, m.Payload, err
	}
	RunServer(ctx, t, cfg)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := rc.WaitConnected(wctx); err != nil {
		t.Fatalf("console to relay: %v", err)
	}
}
