package lifecycle_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// loggedIn begins a session for user and logs in with the issued
// password, which opens a session on the fake that only EndSessions ends.
func (e *env) loggedIn(t *testing.T, user string) lifecycle.Grant {
	t.Helper()
	g, err := e.mgr.Begin(t.Context(), e.request(user))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.backend.Login(t.Context(), g.Account, g.Password); err != nil {
		t.Fatal(err)
	}
	return g
}

// endOps returns the account-changing calls on name since the mark
// (len(History()) before), without lookups.
func (e *env) endOps(name string, mark int) []accountstest.Op {
	var ops []accountstest.Op
	for _, c := range e.backend.History()[mark:] {
		if c.Name == name && c.Op != accountstest.OpLookup {
			ops = append(ops, c.Op)
		}
	}
	return ops
}

// TestEndLogsOut (F2, SPEC.md 11.13): every way a session ends leaves
// nothing of it running and no administrator behind: the account is
// disabled, then its sessions are ended, then it leaves the
// administrators group, then its password is re-randomised, in that
// order (no login can start while the sessions are killed).
func TestEndLogsOut(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(t *testing.T, e *env, g lifecycle.Grant)
	}{
		{"End", func(t *testing.T, e *env, g lifecycle.Grant) {
			if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); err != nil {
				t.Fatal(err)
			}
		}},
		{"MaxSession", func(t *testing.T, e *env, g lifecycle.Grant) {
			e.clock.Add(time.Hour)
			if err := e.mgr.Tick(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(e.events(t), audit.SessionExpired) {
				t.Fatalf("audit %v", e.events(t))
			}
		}},
		{"Retire", func(t *testing.T, e *env, g lifecycle.Grant) {
			if err := e.agent.Store.Update(t.Context(), func(tx *store.Tx) error {
				return tx.SetRemoval(store.Removal{Serial: e.agent.Device.Serial, Version: 2})
			}); err != nil {
				t.Fatal(err)
			}
			if err := e.mgr.Retire(t.Context(), "device removed by the MSP"); err != nil {
				t.Fatal(err)
			}
		}},
		{"Recover", func(t *testing.T, e *env, g lifecycle.Grant) {
			// The agent restarts during the session.
			if err := e.newManager().Recover(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"RecoverEnabledWithoutSession", func(t *testing.T, e *env, g lifecycle.Grant) {
			// Ended, then enabled and used by hand: Recover ends that too.
			if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); err != nil {
				t.Fatal(err)
			}
			pw := g.Password.Clone()
			if err := e.backend.SetPassword(t.Context(), g.Account, pw); err != nil {
				t.Fatal(err)
			}
			if err := e.backend.Enable(t.Context(), g.Account); err != nil {
				t.Fatal(err)
			}
			if err := e.backend.Login(t.Context(), g.Account, pw); err != nil {
				t.Fatal(err)
			}
			if err := e.newManager().Recover(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"Lockdown", func(t *testing.T, e *env, g lifecycle.Grant) {
			if _, err := lifecycle.Lockdown(t.Context(), e.backend, rand.Reader); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.loggedIn(t, "nik")
			mark := len(e.backend.History())
			c.end(t, e, g)
			if n := e.backend.Sessions(g.Account); n != 0 {
				t.Fatalf("%d sessions of %s still running", n, g.Account)
			}
			ops := e.endOps(g.Account, mark)
			want := []accountstest.Op{accountstest.OpDisable, accountstest.OpEndSessions, accountstest.OpSetAdmin, accountstest.OpSetPassword}
			if len(ops) < len(want) || !slices.Equal(ops[len(ops)-len(want):], want) {
				t.Fatalf("calls on %s: %v, want them to end with %v", g.Account, ops, want)
			}
			if i := e.info(t, g.Account); i.Enabled || i.Admin {
				t.Fatalf("after the end: %+v, want disabled, not an administrator", i)
			}
		})
	}
}

// TestSupersedeKeepsOwnSessions: a technician's new session on the
// account (unlock, elevate and sudo begin one from inside the running
// session) leaves that technician's processes running; on a shared
// account, another technician's new session ends the previous one's.
func TestSupersedeKeepsOwnSessions(t *testing.T) {
	t.Run("same technician", func(t *testing.T) {
		e := newEnv(t)
		g1 := e.loggedIn(t, "nik")
		g2, err := e.mgr.Begin(t.Context(), e.request("nik"))
		if err != nil {
			t.Fatal(err)
		}
		if e.mgr.Active(g1.Session) || !e.mgr.Active(g2.Session) {
			t.Fatal("old session still active")
		}
		if n := e.backend.Sessions("msp-nik"); n != 1 {
			t.Fatalf("%d sessions after the same technician's new session, want 1", n)
		}
		if n := e.backend.Calls(accountstest.OpEndSessions); n != 0 {
			t.Fatalf("EndSessions called %d times", n)
		}
		// Its end ends them.
		if err := e.mgr.End(t.Context(), g2.Session, audit.SessionEnded); err != nil {
			t.Fatal(err)
		}
		if n := e.backend.Sessions("msp-nik"); n != 0 {
			t.Fatalf("%d sessions after End", n)
		}
	})
	t.Run("other technician on a shared account", func(t *testing.T) {
		e := newEnv(t)
		e.policy.LoginMode, e.policy.SharedAccount = protocol.ModeShared, "msp-0042"
		e.loggedIn(t, "ann")
		if _, err := e.mgr.Begin(t.Context(), e.request("bob")); err != nil {
			t.Fatal(err)
		}
		if n := e.backend.Sessions("msp-0042"); n != 0 {
			t.Fatalf("%d of ann's sessions still running under bob's session", n)
		}
	})
}

// TestEndSessionsFailureIsRetried: when the sessions cannot be ended, the
// account is still disabled and re-randomised, End reports ErrBackend,
// and Tick retries until they are ended; the end is recorded once.
func TestEndSessionsFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	g := e.loggedIn(t, "nik")
	e.backend.FailNth(accountstest.OpEndSessions, e.backend.Calls(accountstest.OpEndSessions)+1, nil)
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); !errors.Is(err, lifecycle.ErrBackend) || !errors.Is(err, accountstest.ErrInjected) {
		t.Fatalf("End = %v, want ErrBackend", err)
	}
	if e.info(t, "msp-nik").Enabled {
		t.Fatal("account enabled after a failed EndSessions")
	}
	if err := e.backend.Login(context.Background(), "msp-nik", g.Password); err == nil {
		t.Fatal("issued password still logs in after a failed EndSessions")
	}
	if n := e.backend.Sessions("msp-nik"); n != 1 {
		t.Fatalf("sessions = %d, want the one the injected failure left", n)
	}
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.backend.Sessions("msp-nik"); n != 0 {
		t.Fatalf("%d sessions after the retry", n)
	}
	n := 0
	for _, ev := range e.events(t) {
		if ev == audit.SessionEnded {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("session.ended recorded %d times: %v", n, e.events(t))
	}
}
