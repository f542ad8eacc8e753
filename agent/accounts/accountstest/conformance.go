package accountstest

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
)

// Harness is what Conformance needs to exercise a Backend.
type Harness struct {
	// Backend under test. Conformance creates and deletes accounts whose
	// names start with Prefix; it must run against an account database
	// that holds none.
	Backend accounts.Backend
	// Login attempts a real login with pw, checking both authentication
	// and account state (Linux: pamtester authenticate acct_mgmt
	// open_session). It returns nil exactly when the platform accepts it,
	// and should record the login where the Backend reads Info.LastUse.
	Login func(ctx context.Context, name string, pw password.Secret) error
	// MaxNameLen is the Backend's name length limit.
	MaxNameLen int
	// Prefix starts every account name the suite uses; "" means "jkt-".
	Prefix string
	// Rand is the password randomness; nil means crypto/rand.
	Rand io.Reader
	// Admins, if set, lists the members of the administrators group as
	// the platform stores them, read without the Backend (Linux: getent
	// group sudo; a fake: its own record), so that the suite catches a
	// Lookup that misreports membership. nil: the suite relies on
	// Lookup alone.
	Admins func(ctx context.Context) ([]string, error)
}

// Conformance runs the behavioural suite every accounts.Backend must pass:
// the JIT lifecycle, admin membership (and its removal at a session's
// end), not-found and invalid-name errors.
// Harness.Backend and Harness.Login must be safe for concurrent use.
func Conformance(t *testing.T, h Harness) {
	t.Helper()
	if h.Prefix == "" {
		h.Prefix = "jkt-"
	}
	if h.Rand == nil {
		h.Rand = rand.Reader
	}
	s := &suite{Harness: h}
	// The cases use distinct account names and run in parallel; the group
	// returns when all are done.
	t.Run("Conformance", func(t *testing.T) {
		for _, c := range []struct {
			name string
			f    func(*testing.T)
		}{
			{"Lifecycle", s.lifecycle},
			{"Admin", s.admin},
			{"EndRemovesAdmin", s.endRemovesAdmin},
			{"NotFound", s.notFound},
			{"InvalidInput", s.invalidInput},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.f(t)
			})
		}
	})
}

type suite struct {
	Harness
}

func (s *suite) pw(t *testing.T) password.Secret {
	t.Helper()
	pw, err := password.Generate(s.Rand, password.MinLength)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pw.Wipe)
	return pw
}

func (s *suite) must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (s *suite) lookup(t *testing.T, name string) accounts.Info {
	t.Helper()
	info, err := s.Backend.Lookup(t.Context(), name)
	s.must(t, "lookup", err)
	if info.Name != name {
		t.Fatalf("Lookup(%q).Name = %q", name, info.Name)
	}
	return info
}

func (s *suite) loginOK(t *testing.T, name string, pw password.Secret, when string) {
	t.Helper()
	if err := s.Login(t.Context(), name, pw); err != nil {
		t.Fatalf("%s: login refused: %v", when, err)
	}
}

func (s *suite) loginRefused(t *testing.T, name string, pw password.Secret, when string) {
	t.Helper()
	if err := s.Login(t.Context(), name, pw); err == nil {
		t.Fatalf("%s: login accepted", when)
	}
}

func (s *suite) lifecycle(t *testing.T) {
	ctx := t.Context()
	b := s.Backend
	name := s.Prefix + "life"

	if _, err := b.Lookup(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("Lookup before Create: err = %v, want ErrNotFound", err)
	}

	// created: disabled, random unknown password.
	pw0 := s.pw(t)
	s.must(t, "create", b.Create(ctx, name, "JIT Test Technician", pw0))
	t.Cleanup(func() { _ = b.Delete(context.WithoutCancel(ctx), name) })
	created := s.lookup(t, name)
	if created.Enabled || created.Admin || !created.LastUse.IsZero() {
		t.Fatalf("after Create: %+v, want disabled, not admin, never used", created)
	}
	if created.ID == "" || created.FullName != "JIT Test Technician" {
		t.Fatalf("after Create: ID %q, full name %q; want an ID and the full name given", created.ID, created.FullName)
	}
	s.loginRefused(t, name, pw0, "created (disabled) account")
	if err := b.Create(ctx, name, "again", s.pw(t)); !errors.Is(err, accounts.ErrExists) {
		t.Fatalf("second Create: err = %v, want ErrExists", err)
	}

	// active: fresh password, enabled.
	pw1 := s.pw(t)
	s.must(t, "set password", b.SetPassword(ctx, name, pw1))
	s.must(t, "enable", b.Enable(ctx, name))
	s.must(t, "enable again", b.Enable(ctx, name))
	if info := s.lookup(t, name); !info.Enabled || info.ID != created.ID {
		t.Fatalf("after Enable: %+v, want enabled, ID %s", info, created.ID)
	}
	s.loginRefused(t, name, pw0, "active account, creation password")
	before := time.Now().Add(-2 * time.Second)
	s.loginOK(t, name, pw1, "active account, issued password")
	if info := s.lookup(t, name); info.LastUse.IsZero() || info.LastUse.Before(before.Add(-24*time.Hour)) {
		t.Fatalf("after login: LastUse = %v, want a recent time", info.LastUse)
	}

	// ended: disabled, password re-randomised.
	s.must(t, "disable", b.Disable(ctx, name))
	s.must(t, "disable again", b.Disable(ctx, name))
	s.must(t, "end sessions", b.EndSessions(ctx, name))
	s.must(t, "end sessions again", b.EndSessions(ctx, name))
	pw2 := s.pw(t)
	s.must(t, "re-randomise", b.SetPassword(ctx, name, pw2))
	if info := s.lookup(t, name); info.Enabled {
		t.Fatalf("after Disable: %+v, want disabled", info)
	}
	s.loginRefused(t, name, pw1, "ended account, old password")
	s.loginRefused(t, name, pw2, "ended account, its current password")

	// a second session.
	pw3 := s.pw(t)
	s.must(t, "set password", b.SetPassword(ctx, name, pw3))
	s.must(t, "enable", b.Enable(ctx, name))
	s.loginOK(t, name, pw3, "second session")
	s.loginRefused(t, name, pw2, "second session, previous password")
	s.must(t, "disable", b.Disable(ctx, name))

	// removed.
	s.must(t, "delete", b.Delete(ctx, name))
	if _, err := b.Lookup(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("Lookup after Delete: err = %v, want ErrNotFound", err)
	}
	s.loginRefused(t, name, pw3, "deleted account")
	if err := b.Delete(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("second Delete: err = %v, want ErrNotFound", err)
	}
	// The name is free again.
	s.must(t, "re-create", b.Create(ctx, name, "", s.pw(t)))
	if info := s.lookup(t, name); info.Enabled || info.Admin {
		t.Fatalf("re-created account: %+v, want disabled, not admin", info)
	}
	s.must(t, "delete", b.Delete(ctx, name))
}

func (s *suite) admin(t *testing.T) {
	ctx := t.Context()
	b := s.Backend
	name, other := s.Prefix+"adm", s.Prefix+"adm2"
	for _, n := range []string{name, other} {
		s.must(t, "create", b.Create(ctx, n, "Admin Test", s.pw(t)))
		t.Cleanup(func() { _ = b.Delete(context.WithoutCancel(ctx), n) })
	}
	steps := []bool{true, true, false, false, true}
	for i, admin := range steps {
		s.must(t, "set admin", b.SetAdmin(ctx, name, admin))
		if got := s.member(t, name); got != admin {
			t.Fatalf("step %d: Admin = %v after SetAdmin(%v)", i, got, admin)
		}
		if s.member(t, other) {
			t.Fatalf("step %d: SetAdmin on %s changed %s", i, name, other)
		}
	}
	if s.lookup(t, name).Enabled {
		t.Fatal("SetAdmin enabled the account")
	}
	// Deleting an admin and re-creating the name must not inherit
	// membership.
	s.must(t, "delete", b.Delete(ctx, name))
	s.must(t, "re-create", b.Create(ctx, name, "", s.pw(t)))
	if s.lookup(t, name).Admin {
		t.Fatal("re-created account inherited admin membership")
	}
}

// member reports name's membership of the administrators group, from
// Lookup and, if the harness can read it, from the platform's own record;
// the two must agree.
func (s *suite) member(t *testing.T, name string) bool {
	t.Helper()
	admin := s.lookup(t, name).Admin
	if s.Admins == nil {
		return admin
	}
	members, err := s.Admins(t.Context())
	s.must(t, "read the administrators group", err)
	if in := slices.Contains(members, name); in != admin {
		t.Fatalf("Lookup(%q).Admin = %v, but the platform's group record says %v (%v)", name, admin, in, members)
	}
	return admin
}

// endRemovesAdmin runs a JIT session as the agent core does (SPEC.md
// 11.13): membership granted before the account is enabled; at the end
// Disable, EndSessions, SetAdmin(false), SetPassword; the next session
// grants it again. No step but SetAdmin may change membership, and the
// end must leave none behind.
func (s *suite) endRemovesAdmin(t *testing.T) {
	ctx := t.Context()
	b := s.Backend
	name := s.Prefix + "end"
	s.must(t, "create", b.Create(ctx, name, "End Test", s.pw(t)))
	t.Cleanup(func() { _ = b.Delete(context.WithoutCancel(ctx), name) })
	for round := range 2 {
		s.must(t, "grant admin", b.SetAdmin(ctx, name, true))
		pw := s.pw(t)
		s.must(t, "set password", b.SetPassword(ctx, name, pw))
		s.must(t, "enable", b.Enable(ctx, name))
		if !s.member(t, name) {
			t.Fatalf("round %d: not an administrator in the session", round)
		}
		s.loginOK(t, name, pw, "session with admin rights")
		s.must(t, "disable", b.Disable(ctx, name))
		s.must(t, "end sessions", b.EndSessions(ctx, name))
		if !s.member(t, name) {
			t.Fatalf("round %d: Disable or EndSessions changed the membership", round)
		}
		s.must(t, "remove admin", b.SetAdmin(ctx, name, false))
		s.must(t, "re-randomise", b.SetPassword(ctx, name, s.pw(t)))
		if s.member(t, name) {
			t.Fatalf("round %d: membership left behind at the end", round)
		}
		if info := s.lookup(t, name); info.Enabled {
			t.Fatalf("round %d: enabled after the end", round)
		}
		// An end that runs again (a retry after a failure) changes
		// nothing.
		s.must(t, "remove admin again", b.SetAdmin(ctx, name, false))
		if s.member(t, name) {
			t.Fatalf("round %d: a repeated removal restored the membership", round)
		}
	}
}

func (s *suite) notFound(t *testing.T) {
	ctx := t.Context()
	b := s.Backend
	name := s.Prefix + "absent"
	pw := s.pw(t)
	ops := map[string]func() error{
		"SetPassword": func() error { return b.SetPassword(ctx, name, pw) },
		"Enable":      func() error { return b.Enable(ctx, name) },
		"Disable":     func() error { return b.Disable(ctx, name) },
		"EndSessions": func() error { return b.EndSessions(ctx, name) },
		"Delete":      func() error { return b.Delete(ctx, name) },
		"SetAdmin":    func() error { return b.SetAdmin(ctx, name, true) },
		"UnsetAdmin":  func() error { return b.SetAdmin(ctx, name, false) },
		"Lookup":      func() error { _, err := b.Lookup(ctx, name); return err },
	}
	for op, f := range ops {
		if err := f(); !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("%s on absent account: err = %v, want ErrNotFound", op, err)
		}
	}
	if _, err := b.Lookup(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("an operation created the absent account: %v", err)
	}
}

func (s *suite) invalidInput(t *testing.T) {
	ctx := t.Context()
	b := s.Backend
	pw := s.pw(t)
	bad := []string{"", "-o", "--help", "Upper", "with space", "semi;colon", "a:b", "1abc",
		strings.Repeat("a", s.MaxNameLen+1), "root\n"}
	for _, name := range bad {
		if err := b.Create(ctx, name, "", pw); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("Create(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := b.SetPassword(ctx, name, pw); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("SetPassword(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := b.Enable(ctx, name); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("Enable(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := b.EndSessions(ctx, name); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("EndSessions(%q): err = %v, want ErrInvalidName", name, err)
		}
		if err := b.Delete(ctx, name); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidName", name, err)
		}
		if _, err := b.Lookup(ctx, name); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("Lookup(%q): err = %v, want ErrInvalidName", name, err)
		}
	}
	name := s.Prefix + "inv"
	for _, full := range []string{"a:b", "a\nb"} {
		if err := b.Create(ctx, name, full, pw); !errors.Is(err, accounts.ErrInvalidName) {
			t.Errorf("Create with full name %q: err = %v, want ErrInvalidName", full, err)
		}
	}
	if err := b.Create(ctx, name, "", password.Secret{}); !errors.Is(err, accounts.ErrInvalidPassword) {
		t.Errorf("Create with empty password: err = %v, want ErrInvalidPassword", err)
	}
	if _, err := b.Lookup(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("a rejected Create left an account behind: %v", err)
	}
	s.must(t, "create", b.Create(ctx, name, "", pw))
	t.Cleanup(func() { _ = b.Delete(context.WithoutCancel(ctx), name) })
	for _, p := range []password.Secret{{}, password.FromBytes([]byte("line\nbreak-Abc-123456789")), password.FromBytes([]byte("nul\x00Abc-1234567890123456"))} {
		if err := b.SetPassword(ctx, name, p); !errors.Is(err, accounts.ErrInvalidPassword) {
			t.Errorf("SetPassword with an invalid password: err = %v, want ErrInvalidPassword", err)
		}
	}
	if err := b.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
}
