package signin

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/protocol"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRegistry(t *testing.T) (*Registry, *clock) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	if _, _, err := console.Init(ctx, dir, console.InitOptions{Org: "Acme MSP", Relay: "relay-a:443", RelayPins: [][32]byte{{1}}, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	db, peer, err := console.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Now()}
	con, err := console.New(ctx, console.Config{DB: db, Peer: peer, Now: clk.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Console: con, Origin: "http://127.0.0.1:8080", Now: clk.Now, Rand: rand.Reader}), clk
}

// TestCodeLimits: a code answers at most MaxOpen sessions at a time and
// MaxHellos in all, only within TTL; its QR is a console sign-in code of
// this console; an unknown or damaged browser secret redeems nothing.
func TestCodeLimits(t *testing.T) {
	r, clk := newRegistry(t)
	code, err := r.Begin("127.0.0.1 test\x1b[2J")
	if err != nil {
		t.Fatal(err)
	}
	q, err := protocol.DecodeQR(code.QR, clk.Now())
	if err != nil || q.Action != protocol.ActionConsole || q.Static != r.cfg.Console.Peer().NoisePublic() || q.Relay != "relay-a:443" {
		t.Fatalf("QR %+v: %v", q, err)
	}
	sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelConsoleSession)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := protocol.Derive(q.Secret[:], protocol.LabelConsolePSK, nil, 32)
	for i := range MaxOpen {
		psk, err := r.PSK(context.Background(), sid)
		if err != nil || string(psk) != string(want) {
			t.Fatalf("hello %d: %v", i, err)
		}
	}
	if _, err := r.PSK(context.Background(), sid); !errors.Is(err, ErrFull) {
		t.Fatalf("hello beyond MaxOpen: %v", err)
	}
	// Sessions that end free their slot, up to MaxHellos in all.
	for i := MaxOpen; i < MaxHellos; i++ {
		r.mu.Lock()
		r.bySession[sid].open--
		r.mu.Unlock()
		if _, err := r.PSK(context.Background(), sid); err != nil {
			t.Fatalf("hello %d: %v", i, err)
		}
	}
	r.mu.Lock()
	r.bySession[sid].open = 0
	if c := r.bySession[sid].client; c != "127.0.0.1 test?[2J" {
		t.Errorf("client text kept as %q (control characters must go)", c)
	}
	r.mu.Unlock()
	if _, err := r.PSK(context.Background(), sid); !errors.Is(err, ErrFull) {
		t.Fatalf("hello beyond MaxHellos: %v", err)
	}

	// Expiry.
	code2, err := r.Begin("x")
	if err != nil {
		t.Fatal(err)
	}
	q2, _ := protocol.ParseQR(code2.QR)
	sid2, _ := protocol.DeriveSessionID(q2.Secret[:], protocol.LabelConsoleSession)
	if st := r.Status(code2.Browser); st != Waiting {
		t.Fatalf("status %v", st)
	}
	clk.Add(TTL + time.Second)
	if _, err := r.PSK(context.Background(), sid2); !errors.Is(err, ErrUnknown) {
		t.Fatalf("expired code: %v", err)
	}
	if st := r.Status(code2.Browser); st != Expired {
		t.Fatalf("status after TTL %v", st)
	}
	for _, b := range []string{"", "short", code2.Browser + "A", code.Browser[:42] + "x"} {
		if a, st := r.Redeem(b); a != nil || st == Approved {
			t.Fatalf("redeem %q: %v", b, st)
		}
	}
}
