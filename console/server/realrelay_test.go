package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/consoletest"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// TestPagedTransfersOverRealRelay: the paged transfers of
// TestPagedTransfersAtScale over a real QUIC relay on loopback with its
// default limits (a per-recipient queue of 64 frames / 512 KiB, 100 Sends/s
// with a burst of 200). A tenant with 1,000 devices makes a view of about
// 240 KB, four pages or more. The console (console/server on relay/client,
// as `jitkey-console serve` runs it) pairs the real phone code
// (mobilesim/app on mobilesim/cli.RelayConnect, as jitkey-phone connects),
// then answers its sync; the phone ends up with every device each time.
// The devices are enrolled on the same relay and have no agent running, so
// the console's pushes to them (each refused as not connected) share its
// send rate with the phone's pages.
func TestPagedTransfersOverRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("enrols 1,000 devices")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The relay, default limits.
	relay := consoletest.StartRelay(t)
	relayAddr, pin := relay.Addr, relay.Pin

	// The console core, its devices and a technician.
	clk := &clock{t: time.Now()}
	logs := &logBuf{}
	con, db := consoletest.NewConsole(ctx, t, "", relay, clk.Now, slog.New(logs))
	e := &env{t: t, ctx: ctx, con: con, db: db, clock: clk, logs: logs}
	const devices = 1000
	_, _, err := con.AddTenant(ctx, "big", console.TenantChange{})
	e.must(err)
	start := time.Now()
	e.enrolManyAt(relayAddr, "big", devices) // before the server runs: no push rounds over a growing table meanwhile
	t.Logf("enrolled %d devices in %v", devices, time.Since(start))
	_, err = con.AddTech(ctx, "nik", "nik@example.com", false, []protocol.Grant{{Tenant: "big", Role: protocol.RoleAdmin}})
	e.must(err)

	// The console on the relay. The enrolled devices have no agent: keep
	// the pusher's attempts at them rare.
	consoletest.Serve(ctx, t, relay, server.Config{Console: con, PollInterval: 100 * time.Millisecond,
		RetryInterval: 10 * time.Second, SessionTimeout: 20 * time.Second, Logger: slog.New(logs)})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()

	// The phone on the relay.
	key, err := biometric.Generate(ctx, &biometric.Fixed{}, rand.Reader)
	e.must(err)
	w, err := wallet.Create(filepath.Join(t.TempDir(), "phone"), relayAddr, [][32]byte{pin}, key, rand.Reader)
	e.must(err)
	a := app.New(app.Config{Wallet: w, Gate: &biometric.Fixed{}, Now: clk.Now})
	link, err := cli.RelayConnect(wctx, cli.LinkConfig{Phone: w.Phone(), Accept: a.Accept, Handle: a.Handle})
	if err != nil {
		t.Fatalf("phone to relay: %v", err)
	}
	t.Cleanup(link.Close)

	// Pairing: the view is 1,000 device certificates in four pages or more.
	q, err := con.NewPairing(ctx, "nik")
	e.must(err)
	text, err := q.Encode()
	e.must(err)
	start = time.Now()
	v, err := a.Pair(ctx, link.Mux, text)
	if err != nil {
		t.Fatalf("pair over the relay: %v", err)
	}
	t.Logf("paired with %d devices in %v", len(v.Devices), time.Since(start))
	e.checkView("phone after pairing", w, []string{"big"}, devices)

	// More devices, then a sync.
	e.enrolManyAt(relayAddr, "big", 5)
	start = time.Now()
	u, err := a.Sync(ctx, link.Mux)
	if err != nil {
		t.Fatalf("sync over the relay: %v", err)
	}
	t.Logf("synced %d devices in %d pages in %v", u.Devices, u.Pages, time.Since(start))
	if u.Pages < 4 {
		t.Fatalf("sync in %d page(s), want 4 or more", u.Pages)
	}
	e.checkView("phone after sync", w, []string{"big"}, devices+5)
}

// enrolManyAt enrols n devices in tenant, homed on relay (see enrolMany;
// a name such as relay-b:443 would be resolved by relay/client, outside
// any context, on every push attempt over a real relay).
func (e *env) enrolManyAt(relay, tenant string, n int) {
	e.t.Helper()
	for n > 0 {
		uses := min(n, console.MaxTokenUses)
		text, _, err := e.con.NewToken(e.ctx, tenant, time.Hour, uses)
		e.must(err)
		tok, err := protocol.DecodeEnrollToken(text, e.clock.Now())
		e.must(err)
		sid, err := protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession)
		e.must(err)
		for i := range uses {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			e.must(err)
			ik, err := protocol.IdentityKeyOf(pub)
			e.must(err)
			pi := console.PeerInfo{Session: sid, From: protocol.PeerAddr{Relay: relay, Mailbox: protocol.MailboxFor(pub)},
				HandshakeHash: make([]byte, 32)}
			rand.Read(pi.HandshakeHash)
			rand.Read(pi.NoiseKey[:])
			req := protocol.EnrollRequest{Name: fmt.Sprintf("%s-PC-%04d", tenant, n-i), OS: "windows", IdentityKey: ik, Relay: relay,
				IdentitySig: ed25519.Sign(priv, protocol.ProofInput("identity", pi.HandshakeHash))}
			if _, _, err := e.con.Enroll(e.ctx, pi, &req); err != nil {
				e.t.Fatalf("enrol %s: %v", req.Name, err)
			}
		}
		n -= uses
	}
}
