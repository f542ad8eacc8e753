package lifecycle_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// foreign is an account an administrator made, not jitkey.
type foreign struct {
	name string
	pw   password.Secret
	info accounts.Info
}

// makeForeign creates name as a customer administrator would: enabled,
// with a password jitkey does not know, under fullName, and logged in.
func (e *env) makeForeign(t *testing.T, name, fullName string) foreign {
	t.Helper()
	ctx := context.Background()
	pw, err := password.Generate(rand.Reader, 24)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.backend.Create(ctx, name, fullName, pw); err != nil {
		t.Fatal(err)
	}
	if err := e.backend.Enable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := e.backend.Login(ctx, name, pw); err != nil {
		t.Fatal(err)
	}
	return foreign{name: name, pw: pw, info: e.info(t, name)}
}

// untouched fails unless f is as its administrator left it: same ID, still
// enabled, not made admin, its login still running, its password still
// logs in.
func (e *env) untouched(t *testing.T, f foreign) {
	t.Helper()
	i, err := e.backend.Lookup(context.Background(), f.name)
	if err != nil {
		t.Fatalf("foreign account %s: %v", f.name, err)
	}
	if i.ID != f.info.ID || !i.Enabled || i.Admin {
		t.Fatalf("foreign account touched: %+v, was %+v", i, f.info)
	}
	if e.backend.Sessions(f.name) == 0 {
		t.Fatalf("foreign account %s: its sessions were ended", f.name)
	}
	if err := e.backend.Login(context.Background(), f.name, f.pw); err != nil {
		t.Fatalf("foreign account's password changed: %v", err)
	}
}

func (e *env) row(t *testing.T, name string) store.Account {
	t.Helper()
	var a store.Account
	if err := e.agent.Store.View(context.Background(), func(tx *store.Tx) error {
		var err error
		a, err = tx.Account(name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return a
}

// replace deletes jitkey's account name and has an administrator create
// one under the same name. With bumpID another account is created first,
// so the new one gets another ID; without, it gets the deleted one's ID
// back (as useradd reuses the highest uid).
func (e *env) replace(t *testing.T, name string, bumpID bool) foreign {
	t.Helper()
	old := e.info(t, name)
	if bumpID {
		e.makeForeign(t, "bystander", "Bystander")
	}
	if err := e.backend.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	f := e.makeForeign(t, name, "Customer admin")
	if (f.info.ID == old.ID) == bumpID {
		t.Fatalf("re-created %s: ID %s, old ID %s, bumpID %v", name, f.info.ID, old.ID, bumpID)
	}
	return f
}

// TestForeignAccountNeverTouched: whatever path leads jitkey to a name,
// an account under it that jitkey did not create (or not the one it
// created) is never enabled, re-passworded, added to sudo, disabled or
// deleted, and logins for it are refused with ErrForeign.
func TestForeignAccountNeverTouched(t *testing.T) {
	mustBegin := func(t *testing.T, e *env, user string) lifecycle.Grant {
		t.Helper()
		g, err := e.mgr.Begin(t.Context(), e.request(user))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	mustEnd := func(t *testing.T, e *env, g lifecycle.Grant) {
		t.Helper()
		if err := e.mgr.End(t.Context(), g.Session, audit.SessionEnded); err != nil {
			t.Fatal(err)
		}
	}
	begin := func(t *testing.T, e *env) error { _, err := e.mgr.Begin(t.Context(), e.request("nik")); return err }
	for _, c := range []struct {
		name string
		// setup leaves msp-nik foreign and returns it.
		setup func(t *testing.T, e *env) foreign
		act   func(t *testing.T, e *env) error
		want  error
		// events the act may append (checked as a prefix-free set).
		events []string
	}{
		{
			name: "created after the reservation at LoginHello",
			setup: func(t *testing.T, e *env) foreign {
				if _, err := e.mgr.AccountFor(t.Context(), "id-nik", "nik", &e.policy); err != nil {
					t.Fatal(err)
				}
				return e.makeForeign(t, "msp-nik", "Customer admin")
			},
			act: begin, want: lifecycle.ErrForeign,
		},
		{
			name: "created with jitkey's full name after the reservation",
			setup: func(t *testing.T, e *env) foreign {
				if _, err := e.mgr.AccountFor(t.Context(), "id-nik", "nik", &e.policy); err != nil {
					t.Fatal(err)
				}
				return e.makeForeign(t, "msp-nik", accounts.JITFullNamePrefix+"nik")
			},
			act: begin, want: lifecycle.ErrForeign,
		},
		{
			name: "created after a failed Create left the reservation",
			setup: func(t *testing.T, e *env) foreign {
				e.backend.FailNth(accountstest.OpCreate, 1, nil)
				if _, err := e.mgr.Begin(t.Context(), e.request("nik")); !errors.Is(err, lifecycle.ErrBackend) {
					t.Fatalf("first Begin = %v", err)
				}
				return e.makeForeign(t, "msp-nik", "Customer admin")
			},
			act: begin, want: lifecycle.ErrForeign,
		},
		{
			name: "created between Lookup and Create (Create returns ErrExists)",
			setup: func(t *testing.T, e *env) foreign {
				if _, err := e.mgr.AccountFor(t.Context(), "id-nik", "nik", &e.policy); err != nil {
					t.Fatal(err)
				}
				f := e.makeForeign(t, "msp-nik", "Customer admin")
				// activate's Lookup still sees the name free.
				e.backend.FailNth(accountstest.OpLookup, e.backend.Calls(accountstest.OpLookup)+1, accounts.ErrNotFound)
				return f
			},
			act: begin, want: lifecycle.ErrForeign,
		},
		{
			name: "jitkey's account deleted and re-created with another ID",
			setup: func(t *testing.T, e *env) foreign {
				mustEnd(t, e, mustBegin(t, e, "nik"))
				return e.replace(t, "msp-nik", true)
			},
			act: begin, want: lifecycle.ErrForeign,
		},
		{
			name: "jitkey's account deleted and re-created with its ID reused",
			setup: func(t *testing.T, e *env) foreign {
				mustEnd(t, e, mustBegin(t, e, "nik"))
				return e.replace(t, "msp-nik", false)
			},
			act: begin, want: lifecycle.ErrForeign,
		},
		{
			name: "replaced during a session, then End",
			setup: func(t *testing.T, e *env) foreign {
				mustBegin(t, e, "nik")
				return e.replace(t, "msp-nik", true)
			},
			act: func(t *testing.T, e *env) error {
				return e.mgr.End(t.Context(), e.row(t, "msp-nik").Session, audit.SessionEnded)
			},
			events: []string{audit.SessionEnded},
		},
		{
			name: "replaced during a session, then the deadline",
			setup: func(t *testing.T, e *env) foreign {
				mustBegin(t, e, "nik")
				return e.replace(t, "msp-nik", false)
			},
			act: func(t *testing.T, e *env) error {
				e.clock.Add(2 * time.Hour)
				return e.mgr.Tick(t.Context())
			},
			events: []string{audit.SessionExpired},
		},
		{
			name: "replaced during a session, then a crash: Recover",
			setup: func(t *testing.T, e *env) foreign {
				mustBegin(t, e, "nik")
				return e.replace(t, "msp-nik", true)
			},
			act:    func(t *testing.T, e *env) error { return e.newManager().Recover(t.Context()) },
			events: []string{audit.AgentRecovered},
		},
		{
			name: "replaced after the session ended: Recover",
			setup: func(t *testing.T, e *env) foreign {
				mustEnd(t, e, mustBegin(t, e, "nik"))
				return e.replace(t, "msp-nik", false)
			},
			act:    func(t *testing.T, e *env) error { return e.newManager().Recover(t.Context()) },
			events: []string{audit.AgentRecovered},
		},
		{
			name: "reserved name taken: Recover",
			setup: func(t *testing.T, e *env) foreign {
				if _, err := e.mgr.AccountFor(t.Context(), "id-nik", "nik", &e.policy); err != nil {
					t.Fatal(err)
				}
				return e.makeForeign(t, "msp-nik", "Customer admin")
			},
			act: func(t *testing.T, e *env) error { return e.newManager().Recover(t.Context()) },
		},
		{
			name: "replaced after the session ended: DeleteInactive",
			setup: func(t *testing.T, e *env) foreign {
				mustEnd(t, e, mustBegin(t, e, "nik"))
				f := e.replace(t, "msp-nik", true)
				e.clock.Add(31 * 24 * time.Hour)
				return f
			},
			act: func(t *testing.T, e *env) error { return e.mgr.DeleteInactive(t.Context(), 30) },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			f := c.setup(t, e)
			before := len(e.events(t))
			calls := map[accountstest.Op]int{}
			for _, op := range []accountstest.Op{accountstest.OpSetPassword, accountstest.OpEnable, accountstest.OpDisable, accountstest.OpSetAdmin, accountstest.OpDelete} {
				calls[op] = e.backend.Calls(op)
			}
			err := c.act(t, e)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			e.untouched(t, f)
			for op, n := range calls {
				// Only the bystander and the foreign account exist
				// besides jitkey's; no operation may have run.
				if got := e.backend.Calls(op); got != n {
					t.Errorf("%s called %d times", op, got-n)
				}
			}
			got := e.events(t)[before:]
			if !slices.Equal(got, c.events) {
				t.Errorf("audit %v, want %v", got, c.events)
			}
			for _, r := range e.agent.Records(t)[before:] {
				if !strings.Contains(r.Detail, "not the one jitkey created") {
					t.Errorf("%s record without the reason: %q", r.Event, r.Detail)
				}
			}
			if a := e.row(t, "msp-nik"); a.SystemID != "" || a.Session != (protocol.SessionID{}) || a.State != store.StateReserved {
				t.Errorf("row %+v, want reserved, no ID, no session", a)
			}
			// Idempotent: a second pass (of Recover, Tick, ...) touches
			// nothing and records nothing more.
			_ = c.act(t, e)
			e.untouched(t, f)
			if n := len(e.events(t)); n != before+len(got) {
				t.Errorf("second pass recorded %v", e.events(t)[before+len(got):])
			}
		})
	}
}

// TestOwnershipRecorded: jitkey's own account records its ID when created,
// and later sessions, ends, recovery and deletion work on it.
func TestOwnershipRecorded(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if _, err := e.mgr.AccountFor(ctx, "id-nik", "nik", &e.policy); err != nil {
		t.Fatal(err)
	}
	if a := e.row(t, "msp-nik"); a.State != store.StateReserved || a.SystemID != "" {
		t.Fatalf("reserved row %+v", a)
	}
	g, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	i := e.info(t, "msp-nik")
	if a := e.row(t, "msp-nik"); a.State != store.StateActive || a.SystemID != i.ID || i.ID == "" {
		t.Fatalf("active row %+v, account %+v", a, i)
	}
	if i.FullName != accounts.JITFullNamePrefix+"nik" || !i.IsJIT() {
		t.Fatalf("full name %q", i.FullName)
	}
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	if a := e.row(t, "msp-nik"); a.State != store.StateEnded || a.SystemID != i.ID {
		t.Fatalf("ended row %+v", a)
	}
	// A crash in the middle of the next session: Recover disables it.
	if _, err := e.mgr.Begin(ctx, e.request("nik")); err != nil {
		t.Fatal(err)
	}
	if err := e.newManager().Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if e.info(t, "msp-nik").Enabled {
		t.Fatal("enabled after recovery")
	}
	e.clock.Add(31 * 24 * time.Hour)
	if err := e.mgr.DeleteInactive(ctx, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := e.backend.Lookup(ctx, "msp-nik"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("not deleted: %v", err)
	}
	if a := e.row(t, "msp-nik"); a.State != store.StateDeleted || a.SystemID != "" {
		t.Fatalf("deleted row %+v", a)
	}
	// After deletion jitkey creates the account afresh and owns the new one.
	if _, err := e.mgr.Begin(ctx, e.request("nik")); err != nil {
		t.Fatal(err)
	}
	if a := e.row(t, "msp-nik"); a.SystemID != e.info(t, "msp-nik").ID {
		t.Fatalf("re-created row %+v", a)
	}
	want := []string{"account.created", "account.enabled", "session.ended", "account.disabled",
		"account.enabled", "agent.recovered", "account.disabled", "account.deleted", "account.created", "account.enabled"}
	if got := e.events(t); !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
}

// TestCreateNotRecorded: the store fails right after Create; the account
// just created is removed again rather than left for jitkey to mistake
// for a foreign one, and the next login works.
func TestCreateNotRecorded(t *testing.T) {
	e := newEnv(t)
	// commits of Begin: reserve, intent, created.
	e.failAt.Store(e.commits.Load() + 3)
	if _, err := e.mgr.Begin(t.Context(), e.request("nik")); !errors.Is(err, lifecycle.ErrStore) {
		t.Fatalf("Begin = %v, want ErrStore", err)
	}
	if names := e.backend.Names(); len(names) != 0 {
		t.Fatalf("accounts left: %v", names)
	}
	if _, err := e.mgr.Begin(t.Context(), e.request("nik")); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

// TestLockdown: with the store unreadable, every account carrying jitkey's
// full-name marker is disabled and re-randomised; others are not touched.
func TestLockdown(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var grants []lifecycle.Grant
	for _, u := range []string{"nik", "ann"} {
		g, err := e.mgr.Begin(ctx, e.request(u))
		if err != nil {
			t.Fatal(err)
		}
		grants = append(grants, g)
	}
	f := e.makeForeign(t, "admin", "Customer admin")
	names, err := lifecycle.Lockdown(ctx, e.backend, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"msp-ann", "msp-nik"}) {
		t.Fatalf("disabled %v", names)
	}
	for _, g := range grants {
		if e.info(t, g.Account).Enabled {
			t.Errorf("%s still enabled", g.Account)
		}
		if err := e.backend.Login(ctx, g.Account, g.Password); err == nil {
			t.Errorf("%s: issued password still logs in", g.Account)
		}
	}
	e.untouched(t, f)

	if _, err := lifecycle.Lockdown(ctx, struct{ accounts.Backend }{e.backend}, rand.Reader); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Lockdown without a Lister = %v, want ErrUnsupported", err)
	}
}

var _ lifecycle.Lister = (*accountstest.Backend)(nil)
