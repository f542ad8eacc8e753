package lifecycle_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/protocol"
)

// countEvents returns how often event is in the audit log.
func (e *env) countEvents(t *testing.T, event string) int {
	n := 0
	for _, ev := range e.events(t) {
		if ev == event {
			n++
		}
	}
	return n
}

// TestHardCapWarnsThenEnds (SPEC.md 11.13): WarnBefore ahead of the cap
// the user of the session is warned once (session.warned); at the cap
// the session ends for real: its running sessions are gone, the account
// is disabled and the issued password no longer works.
func TestHardCapWarnsThenEnds(t *testing.T) {
	e := newEnv(t)
	e.policy.MaxSession, e.policy.WarnBefore = 3600, 300
	ctx := t.Context()
	g := e.loggedIn(t, "nik")
	if want := e.clock.Now().Add(time.Hour); !g.Deadline.Equal(want) {
		t.Fatalf("deadline %v, want %v", g.Deadline, want)
	}
	e.clock.Add(3600*time.Second - 301*time.Second)
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.backend.Calls(accountstest.OpNotify); n != 0 {
		t.Fatalf("warned %d times 301 s before the cap", n)
	}
	e.clock.Add(time.Second)
	for range 3 {
		if err := e.mgr.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	notices := e.backend.Notices("msp-nik")
	if len(notices) != 1 || !strings.Contains(notices[0], "msp-nik") || !strings.Contains(notices[0], g.Deadline.UTC().Format("15:04:05")) {
		t.Fatalf("notices %q, want one naming the account and the deadline", notices)
	}
	if n := e.countEvents(t, audit.SessionWarned); n != 1 {
		t.Fatalf("%d session.warned records", n)
	}
	if !e.info(t, "msp-nik").Enabled || e.backend.Sessions("msp-nik") != 1 {
		t.Fatal("the warning ended the session early")
	}
	e.clock.Add(300 * time.Second)
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.backend.Sessions("msp-nik"); n != 0 {
		t.Fatalf("%d sessions still running at the cap", n)
	}
	if e.info(t, "msp-nik").Enabled {
		t.Fatal("account enabled at the cap")
	}
	if err := e.backend.Login(ctx, "msp-nik", g.Password); err == nil {
		t.Fatal("the issued password still logs in after the cap")
	}
	ev := e.events(t)
	if i, j := slices.Index(ev, audit.SessionWarned), slices.Index(ev, audit.SessionExpired); i < 0 || j < i {
		t.Fatalf("audit %v", ev)
	}
	rc := e.agent.LastReceipt(t, "msp-nik")
	if rc.Event != audit.SessionExpired || !rc.Disabled || !rc.PasswordRotated || !rc.ProcessesEnded || rc.Session != g.Session ||
		rc.Username != "nik" || rc.Deadline != g.Deadline.Unix() || rc.Ended != e.clock.Now().Unix() {
		t.Fatalf("receipt %+v", rc)
	}
}

// TestEndReceipts (SPEC.md 6.6): every end that disables the account
// carries a signed receipt saying so; the same technician's superseded
// session's receipt says its processes were kept.
func TestEndReceipts(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	g1 := e.loggedIn(t, "nik")
	if _, err := e.mgr.Begin(ctx, e.request("nik")); err != nil {
		t.Fatal(err)
	}
	rc := e.agent.LastReceipt(t, "msp-nik")
	if rc.Session != g1.Session || rc.ProcessesEnded || !rc.Disabled || rc.Event != audit.SessionEnded {
		t.Fatalf("superseded session's receipt %+v", rc)
	}
	g3 := e.loggedIn(t, "ann")
	if err := e.mgr.End(ctx, g3.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	if rc := e.agent.LastReceipt(t, "msp-ann"); rc.Session != g3.Session || !rc.ProcessesEnded || rc.TechID != "id-ann" {
		t.Fatalf("receipt %+v", rc)
	}
	// Forged: the receipt does not verify with another key, nor as
	// another document type, nor for another account.
	recs := e.agent.Records(t)
	last := recs[len(recs)-1]
	other := agenttest.NewMSP(t, "acme")
	if _, err := protocol.VerifyEndReceipt(last.Receipt, other.Pub, e.agent.Device.DeviceID, "msp-ann"); !errors.Is(err, protocol.ErrBadSignature) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := protocol.VerifyEndReceipt(last.Receipt, e.agent.Keys.IdentityPublic(), e.agent.Device.DeviceID, "msp-nik"); !errors.Is(err, protocol.ErrReceiptMismatch) {
		t.Fatalf("other account: %v", err)
	}
}

// TestHardCapNoWarning: WarnBefore 0 warns nobody; the cap ends the
// session all the same.
func TestHardCapNoWarning(t *testing.T) {
	e := newEnv(t)
	e.policy.MaxSession = 3600
	e.loggedIn(t, "nik")
	e.clock.Add(3600 * time.Second)
	if err := e.mgr.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.backend.Calls(accountstest.OpNotify); n != 0 {
		t.Fatalf("Notify called %d times", n)
	}
	if e.backend.Sessions("msp-nik") != 0 || e.info(t, "msp-nik").Enabled {
		t.Fatal("session survived the cap")
	}
}

// TestHardCapNotExtended: a new session of the same technician (unlock,
// elevate, sudo from inside the running one) carries the programs over,
// and with them the deadline: the cap is not pushed back, and a user
// already warned is not warned again. A session that began later than
// the old deadline allows keeps its own, shorter one.
func TestHardCapNotExtended(t *testing.T) {
	e := newEnv(t)
	e.policy.MaxSession, e.policy.WarnBefore = 3600, 300
	ctx := t.Context()
	g1 := e.loggedIn(t, "nik")
	e.clock.Add(3400 * time.Second)
	if err := e.mgr.Tick(ctx); err != nil { // warned
		t.Fatal(err)
	}
	g2, err := e.mgr.Begin(ctx, e.request("nik")) // sudo inside the session
	if err != nil {
		t.Fatal(err)
	}
	if d := g1.Deadline.Sub(g2.Deadline); d < 0 || d >= time.Millisecond { // the store keeps milliseconds
		t.Fatalf("new session's deadline %v, want the first one's %v", g2.Deadline, g1.Deadline)
	}
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.backend.Notices("msp-nik")); n != 1 {
		t.Fatalf("%d notices, want 1", n)
	}
	e.clock.Add(200 * time.Second)
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if e.backend.Sessions("msp-nik") != 0 || e.info(t, "msp-nik").Enabled || e.mgr.Active(g2.Session) {
		t.Fatal("the carried-over session outlived the first session's cap")
	}

	// A shorter policy cap applies to the new session.
	g3 := e.loggedIn(t, "nik")
	e.policy.MaxSession = 600
	g4, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(600 * time.Second); !g4.Deadline.Equal(want) || !g4.Deadline.Before(g3.Deadline) {
		t.Fatalf("deadline %v, want %v", g4.Deadline, want)
	}
}

// TestEndUserNotice (SPEC.md 11.13): with EndUserNotice the computer's
// users are told when a technician session starts (session.announced);
// without it nobody is.
func TestEndUserNotice(t *testing.T) {
	e := newEnv(t)
	e.loggedIn(t, "nik")
	if got := e.backend.Announced(); len(got) != 0 {
		t.Fatalf("announced %q without EndUserNotice", got)
	}
	e.policy.EndUserNotice = true
	g := e.loggedIn(t, "ann")
	got := e.backend.Announced()
	if len(got) != 1 || !strings.Contains(got[0], "technician ann") || !strings.Contains(got[0], "msp-ann") ||
		!strings.Contains(got[0], g.Deadline.UTC().Format("15:04:05")) {
		t.Fatalf("announced %q", got)
	}
	if n := e.countEvents(t, audit.SessionAnnounced); n != 1 {
		t.Fatalf("%d session.announced records", n)
	}
}
