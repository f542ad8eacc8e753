package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

type env struct {
	agent    *agenttest.Agent
	backend  *accountstest.Backend
	mgr      *lifecycle.Manager
	clock    *agenttest.Clock
	policy   protocol.Policy
	failNext atomic.Int32 // commits to fail, counting down
	failAt   atomic.Int32 // fail the commit with this 1-based index from now
	commits  atomic.Int32
	// onFailAt, if set, runs when the failAt commit fails (in the
	// committing goroutine).
	onFailAt func()
}

func newEnv(t *testing.T) *env {
	e := &env{clock: agenttest.NewClock(time.Now())}
	msp := agenttest.NewMSP(t, "acme")
	e.policy = msp.Policy(1)
	e.agent = agenttest.NewAgent(t, msp, &e.policy, store.Config{BeforeCommit: func() error {
		n := e.commits.Add(1)
		if at := e.failAt.Load(); at != 0 && n == at {
			if e.onFailAt != nil {
				e.onFailAt()
			}
			return errors.New("injected: disk full")
		}
		if e.failNext.Load() > 0 {
			e.failNext.Add(-1)
			return errors.New("injected: disk full")
		}
		return nil
	}})
	e.backend = accountstest.New(accountstest.Config{Now: e.clock.Now})
	e.mgr = e.newManager()
	return e
}

func (e *env) newManager() *lifecycle.Manager {
	return lifecycle.New(lifecycle.Config{
		Backend: e.backend, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader, Now: e.clock.Now,
		MaxNameLen: accounts.MaxNameLinux,
	})
}

func (e *env) request(user string) lifecycle.Request {
	var s protocol.SessionID
	rand.Read(s[:])
	return lifecycle.Request{TechID: "id-" + user, Username: user, Policy: &e.policy, Session: s, Action: protocol.ActionLogon, Method: protocol.MethodQR, Online: true}
}

func (e *env) info(t *testing.T, name string) accounts.Info {
	t.Helper()
	i, err := e.backend.Lookup(context.Background(), name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return i
}

func (e *env) events(t *testing.T) []string { return agenttest.Events(e.agent.Records(t)) }

func TestSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	g, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Account != "msp-nik" || g.Password.Len() < password.MinLength || g.Deadline != e.clock.Now().Add(time.Hour) {
		t.Fatalf("grant %s len %d deadline %v", g.Account, g.Password.Len(), g.Deadline)
	}
	if i := e.info(t, "msp-nik"); !i.Enabled || !i.Admin {
		t.Fatalf("after Begin: %+v", i)
	}
	if err := e.backend.Login(ctx, "msp-nik", g.Password); err != nil {
		t.Fatalf("issued password does not log in: %v", err)
	}
	pw1 := g.Password.Clone()
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	if i := e.info(t, "msp-nik"); i.Enabled {
		t.Fatal("account enabled after End")
	}
	if err := e.backend.Login(ctx, "msp-nik", pw1); err == nil {
		t.Fatal("old password logs in after End")
	}
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); !errors.Is(err, lifecycle.ErrNoSession) {
		t.Fatalf("second End = %v", err)
	}
	// Second session: no new account, a new password.
	g2, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if password.Equal(g2.Password, pw1) {
		t.Fatal("password reused across sessions")
	}
	if e.backend.Calls(accountstest.OpCreate) != 1 {
		t.Fatalf("Create called %d times", e.backend.Calls(accountstest.OpCreate))
	}
	want := []string{"account.created", "account.enabled", "session.ended", "account.disabled", "account.enabled"}
	if got := e.events(t); !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
}

func TestNoPasswordOnDisk(t *testing.T) {
	e := newEnv(t)
	g, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	pw := append([]byte(nil), g.Password.Bytes()...)
	if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(e.agent.Dir, "*"))
	if len(files) < 3 {
		t.Fatalf("state files %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, pw) {
			t.Fatalf("password found in %s", f)
		}
	}
}

func TestNaming(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// A foreign account holds msp-nik: jitkey must not take it over.
	foreignPW, _ := password.Generate(rand.Reader, 24)
	if err := e.backend.Create(ctx, "msp-nik", "someone else", foreignPW); err != nil {
		t.Fatal(err)
	}
	g, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Account != "msp-nik-2" {
		t.Fatalf("account %q, want msp-nik-2", g.Account)
	}
	if i := e.info(t, "msp-nik"); i.Enabled || i.Admin {
		t.Fatalf("foreign account touched: %+v", i)
	}
	long := "Maximilian.Alexander.Longname@example.com"
	g, err = e.mgr.Begin(ctx, e.request(long))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Account) > accounts.MaxNameLinux || !strings.HasPrefix(g.Account, "msp-maximilian") || !accounts.ValidName(g.Account, 32) {
		t.Fatalf("account %q", g.Account)
	}
	// Shared mode: the policy's account; a foreign one is refused.
	e.policy.LoginMode, e.policy.SharedAccount = protocol.ModeShared, "msp-0042"
	g, err = e.mgr.Begin(ctx, e.request("ann"))
	if err != nil || g.Account != "msp-0042" {
		t.Fatalf("shared: %q %v", g.Account, err)
	}
	e.policy.SharedAccount = "msp-nik"
	if _, err := e.mgr.Begin(ctx, e.request("bob")); !errors.Is(err, lifecycle.ErrForeign) {
		t.Fatalf("shared foreign = %v, want ErrForeign", err)
	}
}

// TestStoreFailureRefusesLogin: the write-ahead intent cannot be recorded
// (disk full), so the system is never touched.
func TestStoreFailureRefusesLogin(t *testing.T) {
	e := newEnv(t)
	e.failNext.Store(100)
	_, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if !errors.Is(err, lifecycle.ErrStore) {
		t.Fatalf("Begin = %v, want ErrStore", err)
	}
	for _, op := range []accountstest.Op{accountstest.OpCreate, accountstest.OpEnable, accountstest.OpSetPassword} {
		if n := e.backend.Calls(op); n != 0 {
			t.Errorf("%s called %d times", op, n)
		}
	}
}

// TestStoreFailureAfterEnable: the store fails after the account was
// enabled; Begin disables it again and records it, also when the caller
// went away (its ctx cancelled) at that moment.
func TestStoreFailureAfterEnable(t *testing.T) {
	for _, callerGone := range []bool{false, true} {
		t.Run(fmt.Sprintf("callerGone=%v", callerGone), func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if callerGone {
				e.onFailAt = cancel
			}
			// commits of Begin: reserve, intent, created, enabled.
			e.failAt.Store(e.commits.Load() + 4)
			_, err := e.mgr.Begin(ctx, e.request("nik"))
			if !errors.Is(err, lifecycle.ErrStore) {
				t.Fatalf("Begin = %v", err)
			}
			if i := e.info(t, "msp-nik"); i.Enabled {
				t.Fatal("account left enabled")
			}
			got := e.events(t)
			if !slices.Equal(got, []string{"account.created", "account.disabled"}) {
				t.Fatalf("audit %v", got)
			}
			var a store.Account
			if err := e.agent.Store.View(t.Context(), func(tx *store.Tx) error { a, err = tx.Account("msp-nik"); return err }); err != nil {
				t.Fatal(err)
			}
			if a.State != store.StateEnded {
				t.Fatalf("state %q", a.State)
			}
		})
	}
}

func TestBackendFailureLeavesDisabled(t *testing.T) {
	for _, op := range []accountstest.Op{accountstest.OpCreate, accountstest.OpSetPassword, accountstest.OpEnable, accountstest.OpSetAdmin} {
		t.Run(string(op), func(t *testing.T) {
			e := newEnv(t)
			e.backend.FailNth(op, 1, nil)
			_, err := e.mgr.Begin(t.Context(), e.request("nik"))
			if !errors.Is(err, lifecycle.ErrBackend) {
				t.Fatalf("Begin = %v", err)
			}
			if i, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil && i.Enabled {
				t.Fatal("account left enabled")
			}
			// The next login works.
			if _, err := e.mgr.Begin(t.Context(), e.request("nik")); err != nil {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

func TestDisableFailureIsRetried(t *testing.T) {
	e := newEnv(t)
	g, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	e.backend.FailNth(accountstest.OpDisable, e.backend.Calls(accountstest.OpDisable)+1, nil)
	if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); !errors.Is(err, lifecycle.ErrBackend) {
		t.Fatalf("End = %v", err)
	}
	if err := e.mgr.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.info(t, "msp-nik").Enabled {
		t.Fatal("still enabled after retry")
	}
	if got := e.events(t); got[len(got)-1] != "account.disabled" {
		t.Fatalf("audit %v", got)
	}
}

func TestMaxSession(t *testing.T) {
	e := newEnv(t)
	g, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(59 * time.Minute)
	if err := e.mgr.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !e.info(t, "msp-nik").Enabled {
		t.Fatal("disabled before the deadline")
	}
	e.clock.Add(time.Minute)
	if err := e.mgr.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.info(t, "msp-nik").Enabled || e.mgr.Active(g.Session) {
		t.Fatal("enabled after the deadline")
	}
	if got := e.events(t); !slices.Contains(got, "session.expired") {
		t.Fatalf("audit %v", got)
	}
}

func TestSupersede(t *testing.T) {
	e := newEnv(t)
	g1, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	g2, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if e.mgr.Active(g1.Session) || !e.mgr.Active(g2.Session) {
		t.Fatal("old session still active")
	}
	if err := e.backend.Login(t.Context(), "msp-nik", g1.Password); err == nil {
		t.Fatal("old password still works")
	}
}

func TestRecover(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if _, err := e.mgr.Begin(ctx, e.request("nik")); err != nil {
		t.Fatal(err)
	}
	g, err := e.mgr.Begin(ctx, e.request("ann"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	// Someone enabled msp-ann behind jitkey's back.
	if err := e.backend.Enable(ctx, "msp-ann"); err != nil {
		t.Fatal(err)
	}
	// A crash between intent and create for a third technician.
	e.failAt.Store(0)
	_ = e.agent.Store.Update(ctx, func(tx *store.Tx) error {
		return tx.PutAccount(store.Account{Name: "msp-bob", Owner: "tech:id-bob", State: store.StateActivating, Session: protocol.SessionID{9}, Updated: time.Now()})
	})
	// "Restart": a new manager over the same store and system.
	m2 := e.newManager()
	before := len(e.events(t))
	if err := m2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"msp-nik", "msp-ann"} {
		if e.info(t, n).Enabled {
			t.Errorf("%s enabled after recovery", n)
		}
	}
	got := e.events(t)[before:]
	if c := strings.Count(strings.Join(got, " "), "agent.recovered"); c != 3 {
		t.Fatalf("recovery audit %v", got)
	}
	// Idempotent.
	if err := m2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.events(t)); n != before+len(got) {
		t.Fatalf("second Recover added records")
	}
	if _, err := m2.Begin(ctx, e.request("bob")); err != nil {
		t.Fatalf("login after recovery: %v", err)
	}
}

func TestDeleteInactive(t *testing.T) {
	e := newEnv(t)
	g, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.DeleteInactive(t.Context(), 30); err != nil {
		t.Fatal(err)
	}
	if len(e.backend.Names()) != 1 {
		t.Fatal("deleted too early")
	}
	e.clock.Add(31 * 24 * time.Hour)
	if err := e.mgr.DeleteInactive(t.Context(), 30); err != nil {
		t.Fatal(err)
	}
	if len(e.backend.Names()) != 0 {
		t.Fatalf("not deleted: %v", e.backend.Names())
	}
	if got := e.events(t); got[len(got)-1] != "account.deleted" {
		t.Fatalf("audit %v", got)
	}
	if _, err := e.mgr.Begin(t.Context(), e.request("nik")); err != nil {
		t.Fatalf("login after deletion: %v", err)
	}
}
