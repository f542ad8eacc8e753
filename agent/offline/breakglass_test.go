package offline_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/breakglass"
	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// recoveryCodes returns the stored generations, newest first.
func (e *env) recoveryCodes() []store.RecoveryCode {
	e.t.Helper()
	var codes []store.RecoveryCode
	if err := e.st.View(e.t.Context(), func(tx *store.Tx) error {
		var err error
		codes, err = tx.RecoveryCodes()
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return codes
}

// currentCode opens the newest generation's sealed code, as the escrow
// does: what the console will reveal to the MSP's administrator.
func (e *env) currentCode() (protocol.RecoveryCode, uint64) {
	e.t.Helper()
	codes := e.recoveryCodes()
	if len(codes) == 0 || codes[0].Sealed == nil {
		e.t.Fatalf("no sealed recovery code: %+v", codes)
	}
	b, err := e.vault.Open(codes[0].Sealed, breakglass.SealContext(codes[0].Generation))
	if err != nil {
		e.t.Fatal(err)
	}
	var c protocol.RecoveryCode
	copy(c[:], b)
	return c, codes[0].Generation
}

func (e *env) recoveryState() store.RecoveryState {
	e.t.Helper()
	var st store.RecoveryState
	if err := e.st.View(e.t.Context(), func(tx *store.Tx) error {
		var err error
		st, err = tx.RecoveryState()
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// stateFiles returns the bytes of every file in the agent's state
// directory (the database, its journal, the vault key).
func (e *env) stateFiles() []byte {
	e.t.Helper()
	var all []byte
	ents, err := os.ReadDir(e.agent.Dir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range ents {
		if d.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.agent.Dir, d.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestBreakGlass: the device's recovery code opens msp-breakglass once;
// the next code exists at once, sealed for escrow; the used code, a wrong
// code and a mistyped code are refused, audited and counted towards the
// lockout; the code is in no log, no audit record and nowhere on disk in
// the clear.
func TestBreakGlass(t *testing.T) {
	e := newEnv(t, protocol.ModeShared) // the break-glass account is the same in both modes
	var logs bytes.Buffer
	e.logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.start()

	code, gen := e.currentCode()
	if gen != 1 {
		t.Fatalf("first generation %d", gen)
	}
	text := code.Text()
	row := e.recoveryCodes()[0]
	if bytes.Equal(row.Verifier, code[:]) || bytes.Contains(row.Verifier, code[:8]) || len(row.Salt) != breakglass.SaltSize {
		t.Fatalf("verifier %x, salt %x, code %x", row.Verifier, row.Salt, code)
	}
	if want, _ := breakglass.Verifier(code, row.Salt); !bytes.Equal(row.Verifier, want) {
		t.Fatal("verifier is not Derive(code, LabelRecoveryVerifier, salt)")
	}

	// Typed as it is dictated: lower case, spaces for dashes.
	typed := strings.ToLower(strings.ReplaceAll(text, "-", " "))
	g, err := e.login(protocol.BreakGlassUsername, typed)
	if err != nil {
		t.Fatalf("recovery code refused: %v", err)
	}
	if g.Account != protocol.BreakGlassAccount {
		t.Fatalf("account %s", g.Account)
	}
	if err := e.backend.Login(t.Context(), g.Account, g.Password); err != nil {
		t.Fatalf("issued password does not log in: %v", err)
	}
	if g.Deadline != e.clock.Now().Add(time.Duration(e.policy.MaxSession)*time.Second) {
		t.Fatalf("deadline %v: the hard cap must apply", g.Deadline)
	}
	codes := e.recoveryCodes()
	if len(codes) != 2 || codes[0].Generation != 2 || !codes[0].Used.IsZero() || codes[0].Sealed == nil ||
		codes[1].Generation != 1 || !codes[1].Used.Equal(e.clock.Now()) {
		t.Fatalf("after use: %+v", codes)
	}
	next, _ := e.currentCode()
	if next == code {
		t.Fatal("the next code is the used one")
	}

	// A new policy (the console is back) leaves the session alone.
	p := e.policy
	p.Version++
	e.setPolicy(p)
	if n, err := e.mgr.Reauthorize(t.Context(), &p, &e.agent.Device); err != nil || n != 0 || !e.mgr.Active(g.Session) {
		t.Fatalf("Reauthorize ended %d sessions (%v); active %v", n, err, e.mgr.Active(g.Session))
	}
	if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}

	// Second use: refused, also after a restart, and counted.
	if _, err := e.login(protocol.BreakGlassUsername, text); !errors.Is(err, offline.ErrRecoveryRefused) {
		t.Fatalf("second use: %v", err)
	}
	e.restart()
	if _, err := e.login(protocol.BreakGlassUsername, text); !errors.Is(err, offline.ErrRecoveryRefused) {
		t.Fatalf("second use after a restart: %v", err)
	}
	if st := e.recoveryState(); st.Failures != 2 {
		t.Fatalf("failures %d after two uses of a used code", st.Failures)
	}
	// A well-formed wrong code and a mistyped one.
	var wrong protocol.RecoveryCode
	if _, err := rand.Read(wrong[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.login(protocol.BreakGlassUsername, wrong.Text()); !errors.Is(err, offline.ErrRecoveryRefused) {
		t.Fatalf("wrong code: %v", err)
	}
	nt := next.Text()
	typo := ""
	for _, r := range "0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
		// A typo the check catches (about 1 in 4096 is not caught).
		if t := nt[:3] + string(r) + nt[4:]; t != nt {
			if _, err := protocol.ParseRecoveryCode(t); err != nil {
				typo = t
				break
			}
		}
	}
	if _, err := e.login(protocol.BreakGlassUsername, typo); !errors.Is(err, offline.ErrRecoveryMistyped) {
		t.Fatalf("mistyped code: %v", err)
	}
	if st := e.recoveryState(); st.Failures != 4 {
		t.Fatalf("failures %d, want 4", st.Failures)
	}
	// The fifth failure locks break-glass out (MaxFailures 5, 30 s):
	// even the right code is refused until then, across a restart.
	var locked *offline.LockedError
	if _, err := e.login(protocol.BreakGlassUsername, wrong.Text()); !errors.As(err, &locked) ||
		!locked.Until.Equal(e.clock.Now().Add(30*time.Second)) {
		t.Fatalf("fifth failure: %v", err)
	}
	e.restart()
	if _, err := e.login(protocol.BreakGlassUsername, nt); !errors.As(err, &locked) {
		t.Fatalf("right code during the lockout: %v", err)
	}
	e.clock.Add(31 * time.Second)
	g2, err := e.login(protocol.BreakGlassUsername, nt)
	if err != nil || g2.Account != protocol.BreakGlassAccount {
		t.Fatalf("next code after the lockout: %v", err)
	}
	if st := e.recoveryState(); st.Failures != 0 || !st.LockedUntil.IsZero() {
		t.Fatalf("state after a success %+v", st)
	}
	// Only the last used generation is kept to tell "used" from "wrong".
	if codes := e.recoveryCodes(); len(codes) != 2 || codes[0].Generation != 3 || codes[1].Generation != 2 {
		t.Fatalf("generations %+v", codes)
	}
	// Generation 1 is pruned: refused as a wrong code.
	if _, err := e.login(protocol.BreakGlassUsername, text); !errors.Is(err, offline.ErrRecoveryRefused) {
		t.Fatalf("generation 1 again: %v", err)
	}

	// Audit: two uses, each breakglass.used then login.approved; every
	// refusal recorded with its reason.
	var used, approved, denied []protocol.AuditRecord
	for _, r := range e.records() {
		if r.Method != protocol.MethodBreakGlass {
			continue
		}
		switch r.Event {
		case protocol.EventBreakGlassUsed:
			used = append(used, r)
		case audit.LoginApproved:
			approved = append(approved, r)
		case audit.LoginDenied:
			denied = append(denied, r)
		}
	}
	if len(used) != 2 || len(approved) != 2 || used[0].Account != protocol.BreakGlassAccount ||
		!strings.HasPrefix(used[0].Detail, "recovery code generation 1 used; generation 2 created") ||
		!strings.HasPrefix(used[1].Detail, "recovery code generation 2 used; generation 3 created") {
		t.Fatalf("used %+v approved %+v", used, approved)
	}
	var reasons []string
	for _, r := range denied {
		reasons = append(reasons, r.Reason)
	}
	want := []string{"recovery code generation 1 already used", "recovery code generation 1 already used", "wrong recovery code",
		"recovery code mistyped", "wrong recovery code", "locked out after 5", "wrong recovery code"}
	if len(reasons) != len(want) {
		t.Fatalf("denials %q", reasons)
	}
	for i := range want {
		if !strings.HasPrefix(reasons[i], want[i]) {
			t.Fatalf("denial %d: %q, want %q...", i, reasons[i], want[i])
		}
	}

	// No code, in any form, in the audit trail, the log or the state
	// directory.
	var trail bytes.Buffer
	for _, r := range e.records() {
		fmt.Fprintf(&trail, "%+v\n", r)
	}
	disk := e.stateFiles()
	for _, c := range []protocol.RecoveryCode{code, next} {
		for _, form := range []string{c.Text(), strings.ReplaceAll(c.Text(), "-", ""), hex.EncodeToString(c[:])} {
			if strings.Contains(trail.String(), form) || strings.Contains(logs.String(), form) {
				t.Fatalf("code %s in the audit trail or the log", form)
			}
		}
		if bytes.Contains(disk, c[:]) || bytes.Contains(disk, []byte(c.Text())) {
			t.Fatal("code on disk in the clear")
		}
	}
	if !strings.Contains(logs.String(), "BREAK-GLASS") {
		t.Fatalf("the log does not show the break-glass login: %s", logs.String())
	}
}

// TestBreakGlassRefusedWhenStoreFails: a recovery code whose use cannot
// be recorded (disk full) opens nothing and stays unused.
func TestBreakGlassRefusedWhenStoreFails(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	code, _ := e.currentCode()
	e.failCommits.Store(true)
	if _, err := e.login(protocol.BreakGlassUsername, code.Text()); err == nil {
		t.Fatal("login while the store fails")
	}
	e.failCommits.Store(false)
	if info, err := e.backend.Lookup(t.Context(), protocol.BreakGlassAccount); err == nil && info.Enabled {
		t.Fatal("break-glass account enabled")
	}
	if codes := e.recoveryCodes(); len(codes) != 1 || !codes[0].Used.IsZero() {
		t.Fatalf("codes %+v", codes)
	}
	if _, err := e.login(protocol.BreakGlassUsername, code.Text()); err != nil {
		t.Fatalf("the code after the store recovered: %v", err)
	}
}

// TestBreakGlassSwitchedOff: while the tenant's policy turns break-glass
// off (field 28), every recovery code, the right one included, is refused
// with ErrBreakGlassOff and audited as login.denied (method breakglass)
// without being checked or counted towards the lockout; the code and its
// escrow stay, so the right code works as soon as the policy turns
// break-glass back on.
func TestBreakGlassSwitchedOff(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	code, gen := e.currentCode()
	before := e.recoveryCodes()

	p := e.policy
	p.Version++
	p.BreakGlassOff = true
	e.setPolicy(p)

	var wrong protocol.RecoveryCode
	if _, err := rand.Read(wrong[:]); err != nil {
		t.Fatal(err)
	}
	// More attempts than MaxFailures (5): none counts, none locks out.
	attempts := []string{code.Text(), wrong.Text(), "not a code", wrong.Text(), wrong.Text(), wrong.Text(), code.Text()}
	for i, typed := range attempts {
		_, err := e.login(protocol.BreakGlassUsername, typed)
		if !errors.Is(err, offline.ErrBreakGlassOff) {
			t.Fatalf("attempt %d while off: %v, want ErrBreakGlassOff", i, err)
		}
		if err.Error() != "offline: break-glass is turned off for this computer" {
			t.Fatalf("refusal %q", err)
		}
	}
	e.restart()
	if _, err := e.login(protocol.BreakGlassUsername, code.Text()); !errors.Is(err, offline.ErrBreakGlassOff) {
		t.Fatalf("after a restart while off: %v", err)
	}
	if st := e.recoveryState(); st.Failures != 0 || !st.LockedUntil.IsZero() {
		t.Fatalf("recovery state %+v while off: refusals must not count", st)
	}
	if info, err := e.backend.Lookup(t.Context(), protocol.BreakGlassAccount); err == nil && info.Enabled {
		t.Fatal("break-glass account enabled while off")
	}
	after := e.recoveryCodes()
	if len(after) != len(before) || after[0].Generation != gen || !after[0].Used.IsZero() ||
		!bytes.Equal(after[0].Sealed, before[0].Sealed) || !bytes.Equal(after[0].Verifier, before[0].Verifier) {
		t.Fatalf("codes changed while off: %+v, were %+v", after, before)
	}
	var denied []protocol.AuditRecord
	for _, r := range e.records() {
		if r.Method != protocol.MethodBreakGlass {
			continue
		}
		if r.Event != audit.LoginDenied {
			t.Fatalf("record %+v while off", r)
		}
		denied = append(denied, r)
	}
	if len(denied) != len(attempts)+1 {
		t.Fatalf("%d denials for %d attempts", len(denied), len(attempts)+1)
	}
	for _, r := range denied {
		if r.Reason != "break-glass is turned off for this computer" || r.Username != protocol.BreakGlassUsername {
			t.Fatalf("denial %+v", r)
		}
	}

	// Back on: the same code opens the break-glass account at once.
	p.Version++
	p.BreakGlassOff = false
	e.setPolicy(p)
	g, err := e.login(protocol.BreakGlassUsername, code.Text())
	if err != nil || g.Account != protocol.BreakGlassAccount {
		t.Fatalf("the code after break-glass is back on: %v", err)
	}
	if codes := e.recoveryCodes(); len(codes) != 2 || codes[1].Generation != gen || codes[1].Used.IsZero() {
		t.Fatalf("codes after use %+v", codes)
	}
}
