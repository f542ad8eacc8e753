package lifecycle_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/protocol"
)

// TestEndRemovesAdmin (SPEC.md 6.6, 11.13): a session's end takes the
// account out of the administrators group and its signed receipt says
// so; the next session puts it back before the account is enabled. A
// superseded session (same technician, programs carried over) loses the
// membership too, and the session replacing it has it again when Begin
// returns.
func TestEndRemovesAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	g1 := e.loggedIn(t, "nik")
	if i := e.info(t, "msp-nik"); !i.Admin || !i.Enabled {
		t.Fatalf("in the session: %+v, want enabled administrator", i)
	}
	g2, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if rc := e.agent.LastReceipt(t, "msp-nik"); rc.Session != g1.Session || !rc.AdminRemoved || rc.ProcessesEnded {
		t.Fatalf("superseded session's receipt %+v, want AdminRemoved, processes kept", rc)
	}
	if i := e.info(t, "msp-nik"); !i.Admin || !i.Enabled {
		t.Fatalf("in the superseding session: %+v, want enabled administrator", i)
	}
	if err := e.mgr.End(ctx, g2.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	if i := e.info(t, "msp-nik"); i.Admin || i.Enabled {
		t.Fatalf("after End: %+v, want disabled, not an administrator", i)
	}
	rc := e.agent.LastReceipt(t, "msp-nik")
	if rc.Session != g2.Session || !rc.AdminRemoved || !rc.Disabled || !rc.PasswordRotated || !rc.ProcessesEnded {
		t.Fatalf("receipt %+v, want every action stated", rc)
	}
	e.loggedIn(t, "nik")
	if i := e.info(t, "msp-nik"); !i.Admin || !i.Enabled {
		t.Fatalf("next session: %+v, want enabled administrator again", i)
	}
}

// TestAdminRemovalFailureIsRetried: when the membership cannot be
// removed, the account is still disabled, logged out and re-randomised;
// the end stays pending (no account.disabled, so no receipt yet) and the
// next Tick finishes it, with a receipt stating AdminRemoved.
func TestAdminRemovalFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	g := e.loggedIn(t, "nik")
	e.backend.FailNth(accountstest.OpSetAdmin, e.backend.Calls(accountstest.OpSetAdmin)+1, nil)
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); !errors.Is(err, lifecycle.ErrBackend) || !errors.Is(err, accountstest.ErrInjected) {
		t.Fatalf("End = %v, want ErrBackend", err)
	}
	i := e.info(t, "msp-nik")
	if i.Enabled || !i.Admin || e.backend.Sessions("msp-nik") != 0 {
		t.Fatalf("after the failed removal: %+v, %d sessions; want disabled, logged out, still a member", i, e.backend.Sessions("msp-nik"))
	}
	if err := e.backend.Login(ctx, "msp-nik", g.Password); err == nil {
		t.Fatal("issued password still logs in after a failed removal")
	}
	if n := e.countEvents(t, audit.AccountDisabled); n != 0 {
		t.Fatalf("account.disabled recorded %d times before the membership went", n)
	}
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if e.info(t, "msp-nik").Admin {
		t.Fatal("still an administrator after the retry")
	}
	if n := e.countEvents(t, audit.AccountDisabled); n != 1 {
		t.Fatalf("account.disabled recorded %d times", n)
	}
	if rc := e.agent.LastReceipt(t, "msp-nik"); rc.Session != g.Session || !rc.AdminRemoved {
		t.Fatalf("receipt %+v", rc)
	}
}

// stickyAdmin is a backend whose SetAdmin(false) reports success but
// leaves the membership while stuck is set, as a platform call that
// "succeeds" on the wrong group would.
type stickyAdmin struct {
	*accountstest.Backend
	stuck atomic.Bool
}

func (b *stickyAdmin) SetAdmin(ctx context.Context, name string, admin bool) error {
	if !admin && b.stuck.Load() {
		return nil
	}
	return b.Backend.SetAdmin(ctx, name, admin)
}

// TestAdminRemovalVerified: the lifecycle does not take SetAdmin's word
// for it. A removal the system does not show afterwards fails the end
// (pending, no receipt); once the membership really goes, the receipt
// states it.
func TestAdminRemovalVerified(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	b := &stickyAdmin{Backend: e.backend}
	m := lifecycle.New(lifecycle.Config{Backend: b, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader,
		Now: e.clock.Now, MaxNameLen: accounts.MaxNameLinux})
	g, err := m.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	b.stuck.Store(true)
	if err := m.End(ctx, g.Session, audit.SessionEnded); !errors.Is(err, lifecycle.ErrBackend) || !strings.Contains(err.Error(), "still in the administrators group") {
		t.Fatalf("End = %v, want the membership found still there", err)
	}
	if e.info(t, "msp-nik").Enabled {
		t.Fatal("account enabled")
	}
	if n := e.countEvents(t, audit.AccountDisabled); n != 0 {
		t.Fatalf("an end that left the membership was recorded (%d account.disabled)", n)
	}
	b.stuck.Store(false)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if rc := e.agent.LastReceipt(t, "msp-nik"); !rc.AdminRemoved || e.info(t, "msp-nik").Admin {
		t.Fatalf("receipt %+v after the membership went", rc)
	}
}

// TestRecoverFinishesInterruptedEnd: the agent dies during an end, after
// Disable and before the membership went; the next start's Recover
// finishes the end (logged out, out of the group, re-randomised) and
// signs a receipt that says so. An account of jitkey's found disabled
// but still in the group without a session (as an agent of an earlier
// version left it) is taken out too.
func TestRecoverFinishesInterruptedEnd(t *testing.T) {
	t.Run("interrupted end", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		g := e.loggedIn(t, "nik")
		e.backend.FailNth(accountstest.OpSetAdmin, e.backend.Calls(accountstest.OpSetAdmin)+1, nil)
		if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); err == nil {
			t.Fatal("End succeeded with the removal failing")
		}
		// The agent dies here: a new Manager on the same store.
		if err := e.newManager().Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if i := e.info(t, "msp-nik"); i.Enabled || i.Admin {
			t.Fatalf("after Recover: %+v", i)
		}
		rc := e.agent.LastReceipt(t, "msp-nik")
		if rc.Event != audit.AgentRecovered || !rc.AdminRemoved || !rc.ProcessesEnded || rc.Session != g.Session {
			t.Fatalf("receipt %+v", rc)
		}
	})
	t.Run("disabled member without a session", func(t *testing.T) {
		e := newEnv(t)
		ctx := t.Context()
		g := e.loggedIn(t, "nik")
		if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); err != nil {
			t.Fatal(err)
		}
		if err := e.backend.SetAdmin(ctx, "msp-nik", true); err != nil {
			t.Fatal(err)
		}
		if err := e.newManager().Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if e.info(t, "msp-nik").Admin {
			t.Fatal("Recover left the disabled account in the administrators group")
		}
		rc := e.agent.LastReceipt(t, "msp-nik")
		if rc.Event != audit.AgentRecovered || !rc.AdminRemoved || rc.Session != (protocol.SessionID{}) {
			t.Fatalf("receipt %+v", rc)
		}
		var found bool
		for _, r := range e.agent.Records(t) {
			found = found || (r.Event == audit.AgentRecovered && strings.Contains(r.Detail, "administrators group"))
		}
		if !found {
			t.Fatalf("no agent.recovered naming the group: %v", e.events(t))
		}
	})
}
