package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/consoletest"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/protocol"
)

// phoneClock is the phone's clock: real time, or a fixed time while the
// phone shows offline codes.
type phoneClock struct {
	mu    sync.Mutex
	fixed time.Time
}

func (c *phoneClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now()
	}
	return c.fixed
}

func (c *phoneClock) set(t time.Time) { c.mu.Lock(); c.fixed = t; c.mu.Unlock() }

// agentView is what an agent learns at enrollment: its certificate, its
// tenant's policy and (shared mode) the tenant's offline secret.
type agentView struct {
	cert    protocol.DeviceCert
	policy  protocol.Policy
	secrets []protocol.TenantSecret
}

// enrolAgent enrols a device homed on relay, as FlowEnroll would, and
// returns what its agent received.
func (e *env) enrolAgent(relay, tenant, name string) agentView {
	e.t.Helper()
	text, _, err := e.con.NewToken(e.ctx, tenant, time.Hour, 1)
	e.must(err)
	tok, err := protocol.DecodeEnrollToken(text, e.clock.Now())
	e.must(err)
	sid, err := protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession)
	e.must(err)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	e.must(err)
	ik, err := protocol.IdentityKeyOf(pub)
	e.must(err)
	pi := console.PeerInfo{Session: sid, From: protocol.PeerAddr{Relay: relay, Mailbox: protocol.MailboxFor(pub)}, HandshakeHash: make([]byte, 32)}
	rand.Read(pi.HandshakeHash)
	rand.Read(pi.NoiseKey[:])
	req := protocol.EnrollRequest{Name: name, OS: "windows", IdentityKey: ik, Relay: relay,
		IdentitySig: ed25519.Sign(priv, protocol.ProofInput("identity", pi.HandshakeHash))}
	resp, _, err := e.con.Enroll(e.ctx, pi, &req)
	if err != nil {
		e.t.Fatalf("enrol %s: %v", name, err)
	}
	var v agentView
	msp := e.con.Settings().MSPKey
	e.must(resp.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, msp, &v.cert))
	e.must(resp.Policy.VerifyEd25519(protocol.DocPolicy, msp, &v.policy))
	v.secrets = resp.OfflineSecrets
	return v
}

// TestPhoneOfflineCodesOverRealRelay: the console (console/server on a
// real QUIC relay on loopback) pairs jitkey-phone; the code the phone
// shows for a device of a shared-mode tenant is the code the device's
// agent computes from the tenant secret it got at enrollment
// (otpcode.SharedCodeKey); after the console rotates the secret (a device
// removed) the phone's next sync brings the new tech key, its code follows
// the new secret, and the old code is gone; a named-mode device without a
// key and the removed device are refused.
func TestPhoneOfflineCodesOverRealRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	relay := consoletest.StartRelay(t)
	relayAddr, pin := relay.Addr, relay.Pin
	clk, logs := &clock{t: time.Now()}, &logBuf{}
	con, db := consoletest.NewConsole(ctx, t, "", relay, clk.Now, slog.New(logs))
	e := &env{t: t, ctx: ctx, con: con, db: db, clock: clk, logs: logs}
	_, _, err := con.AddTenant(ctx, "globex", console.TenantChange{LoginMode: ptr(protocol.ModeShared), Digits: ptr(8),
		Period: ptr(60), Algorithm: ptr(console.AlgorithmSHA256)})
	e.must(err)
	_, _, err = con.AddTenant(ctx, "acme", console.TenantChange{})
	e.must(err)
	sam, err := con.AddTech(ctx, "sam", "sam@example.com", false, []protocol.Grant{{Tenant: "globex", Role: protocol.RoleAdmin}, {Tenant: "acme", Role: protocol.RoleAdmin}})
	e.must(err)
	gx1, _, ac1 := e.enrolAgent(relayAddr, "globex", "GX-1"), e.enrolAgent(relayAddr, "globex", "GX-2"), e.enrolAgent(relayAddr, "acme", "AC-1")
	if len(gx1.secrets) != 1 || gx1.secrets[0].Generation != 1 || len(ac1.secrets) != 0 {
		t.Fatalf("enrollment secrets: globex %v, acme %d", gens(gx1.secrets), len(ac1.secrets))
	}

	// The console on the relay. The devices have no agent running: keep
	// the pusher's attempts at them rare.
	consoletest.Serve(ctx, t, relay, server.Config{Console: con, PollInterval: 100 * time.Millisecond,
		RetryInterval: 10 * time.Second, SessionTimeout: 10 * time.Second, Logger: slog.New(logs)})

	// jitkey-phone, as the binary runs it.
	pclk := &phoneClock{}
	penv := &cli.Env{Connect: cli.RelayConnect, Stdin: strings.NewReader(""), Now: pclk.Now}
	state := filepath.Join(t.TempDir(), "phone")
	run := func(args ...string) (string, string, int) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		var out, errb bytes.Buffer
		code := penv.Run(rctx, append([]string{"--state", state, "--timeout", "10s"}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, errs, code := run(args...)
		if code != 0 {
			t.Fatalf("jitkey-phone %s: exit %d: %s", args[0], code, errs)
		}
		return out
	}
	mustRun("init", "--relay", relayAddr, "--relay-pin", hex.EncodeToString(pin[:]))
	q, err := con.NewPairing(ctx, "sam")
	e.must(err)
	qtext, err := q.Encode()
	e.must(err)
	mustRun("pair", qtext)

	at := time.Unix(1_790_000_040+25, 0) // 25 s into a 60 s step
	otp := func(device string) map[string]any {
		t.Helper()
		pclk.set(at)
		defer pclk.set(time.Time{})
		var m map[string]any
		if err := json.Unmarshal([]byte(mustRun("otp", device, "--json")), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	agentCode := func(a agentView, secret protocol.TenantSecret) string {
		t.Helper()
		key, err := otpcode.SharedCodeKey(secret.Secret, sam.ID, a.cert.DeviceID)
		e.must(err)
		c, err := otpcode.Code(key, otpcode.Step(at, a.policy.Offline.Period), a.policy.Offline)
		e.must(err)
		return c
	}
	got := otp("GX-1")
	want := map[string]any{"device": "GX-1", "tenant": "globex", "username": "sam", "code": agentCode(gx1, gx1.secrets[0]),
		"seconds_left": float64(35), "mode": "shared"}
	if len(want["code"].(string)) != 8 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("otp GX-1: %v, want %v", got, want)
	}
	if out := mustRun("devices"); !regexp.MustCompile(`(?m)^AC-1 +acme +windows +- `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^GX-1 +globex +windows +otp `).MatchString(out) {
		t.Fatalf("devices:\n%s", out)
	}
	if _, errs, code := run("otp", "AC-1"); code != cli.ExitRefused ||
		errs != "jitkey-phone: log in online on AC-1 once with the QR code to get offline codes for it\n" {
		t.Fatalf("otp AC-1: exit %d: %q", code, errs)
	}

	// Removing GX-2 rotates globex's secret; an agent enrolled now gets
	// the new one, and so does the phone's next sync.
	_, _, err = con.RemoveDevice(ctx, "GX-2", "")
	e.must(err)
	gx3 := e.enrolAgent(relayAddr, "globex", "GX-3")
	if len(gx3.secrets) != 1 || gx3.secrets[0].Generation != 2 || bytes.Equal(gx3.secrets[0].Secret, gx1.secrets[0].Secret) {
		t.Fatalf("secret after the removal: generations %v", gens(gx3.secrets))
	}
	mustRun("sync")
	got = otp("GX-1")
	if got["code"] != agentCode(gx1, gx3.secrets[0]) || got["code"] == agentCode(gx1, gx1.secrets[0]) {
		t.Fatalf("otp GX-1 after rotation: %v", got)
	}
	if got := otp("GX-3"); got["code"] != agentCode(gx3, gx3.secrets[0]) {
		t.Fatalf("otp GX-3: %v", got)
	}
	if _, errs, code := run("otp", "GX-2"); code != cli.ExitRefused ||
		errs != "jitkey-phone: device removed by the MSP: GX-2 (tenant globex); this phone no longer logs in to it\n" {
		t.Fatalf("otp GX-2: exit %d: %q", code, errs)
	}
}
