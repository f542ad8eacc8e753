package netuser_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/winhelper/netuser"
	"github.com/jitkey/jitkey/winhelper/netuser/netusertest"
)

func newBackend(t *testing.T, cfg netusertest.Config) (*netuser.Backend, *netusertest.SAM) {
	t.Helper()
	sam := netusertest.New(cfg)
	b, err := netuser.New(netuser.Config{API: sam})
	if err != nil {
		t.Fatal(err)
	}
	return b, sam
}

func login(sam *netusertest.SAM) func(context.Context, string, password.Secret) error {
	return func(_ context.Context, name string, pw password.Secret) error {
		if code := sam.LogonUser(name, pw.Bytes()); code != 0 {
			return fmt.Errorf("LogonUser: %w", netuser.ErrStatus(code))
		}
		return nil
	}
}

// TestConformance runs the shared accounts suite on the Backend over the
// fake SAM, with a password policy as strict as the generated passwords
// allow and a German Administrators group name.
func TestConformance(t *testing.T) {
	b, sam := newBackend(t, netusertest.Config{MinPasswordLen: password.MinLength, AdminsGroup: "Administratoren"})
	accountstest.Conformance(t, accountstest.Harness{Backend: b, Login: login(sam), MaxNameLen: accounts.MaxNameWindows, Prefix: "w-",
		Admins: func(context.Context) ([]string, error) { return sam.Admins(), nil }})
	if names := sam.Names(); len(names) != 0 {
		t.Fatalf("suite left accounts behind: %v", names)
	}
}

func pw(s string) password.Secret { return password.FromBytes([]byte(s)) }

func TestStatusCodes(t *testing.T) {
	ctx := t.Context()
	b, sam := newBackend(t, netusertest.Config{MinPasswordLen: 14})

	if err := b.Create(ctx, "msp-short", "", pw("Abc-123")); !errors.Is(err, netuser.ErrPasswordPolicy) || !errors.Is(err, netuser.ErrStatus(netuser.NERRPasswordTooShort)) {
		t.Fatalf("short password: err = %v, want ErrPasswordPolicy with NERR_PasswordTooShort", err)
	}
	if _, err := b.Lookup(ctx, "msp-short"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("refused Create left an account: %v", err)
	}
	if err := b.Create(ctx, "msp-a", "A", pw("Abc-12345678901234")); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, "MSP-A", "A", pw("Abc-12345678901234")); !errors.Is(err, accounts.ErrInvalidName) {
		t.Fatalf("upper-case name: %v", err)
	}
	if err := b.SetPassword(ctx, "msp-a", pw("short-1")); !errors.Is(err, netuser.ErrPasswordPolicy) {
		t.Fatalf("SetPassword short: %v", err)
	}

	sam.Deny("UserAdd", true)
	err := b.Create(ctx, "msp-b", "", pw("Abc-12345678901234"))
	if !errors.Is(err, netuser.ErrStatus(netuser.ErrorAccessDenied)) || errors.Is(err, accounts.ErrExists) {
		t.Fatalf("access denied: err = %v", err)
	}
	sam.Deny("UserAdd", false)

	// The full name cannot be set: the account is deleted again.
	sam.Deny("UserSetFullName", true)
	if err := b.Create(ctx, "msp-c", "C", pw("Abc-12345678901234")); !errors.Is(err, netuser.ErrStatus(netuser.ErrorAccessDenied)) {
		t.Fatalf("full name denied: %v", err)
	}
	if _, err := b.Lookup(ctx, "msp-c"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("half-created account left: %v", err)
	}
	// ... unless deleting fails too: both errors are reported.
	sam.Deny("UserDel", true)
	err = b.Create(ctx, "msp-d", "D", pw("Abc-12345678901234"))
	if err == nil || !errors.Is(err, netuser.ErrStatus(netuser.ErrorAccessDenied)) {
		t.Fatalf("full name and delete denied: %v", err)
	}
	if info, lerr := b.Lookup(ctx, "msp-d"); lerr != nil || info.Enabled {
		t.Fatalf("left-over account must be disabled: %+v %v", info, lerr)
	}
	sam.Deny("UserSetFullName", false)
	sam.Deny("UserDel", false)

	// Membership: already a member / not a member are success.
	sam.Deny("LocalGroupAddMember", true)
	if err := b.SetAdmin(ctx, "msp-a", true); !errors.Is(err, netuser.ErrStatus(netuser.ErrorAccessDenied)) {
		t.Fatalf("SetAdmin denied: %v", err)
	}
	sam.Deny("LocalGroupAddMember", false)
	for _, admin := range []bool{true, true, false, false} {
		if err := b.SetAdmin(ctx, "msp-a", admin); err != nil {
			t.Fatalf("SetAdmin(%v): %v", admin, err)
		}
	}
}

func TestEndSessions(t *testing.T) {
	ctx := t.Context()
	b, sam := newBackend(t, netusertest.Config{})
	secret := pw("Abc-12345678901234")
	for _, n := range []string{"msp-a", "msp-b"} {
		if err := b.Create(ctx, n, "", secret); err != nil {
			t.Fatal(err)
		}
		if err := b.Enable(ctx, n); err != nil {
			t.Fatal(err)
		}
		if code := sam.LogonUser(n, secret.Bytes()); code != 0 {
			t.Fatal(netuser.ErrStatus(code))
		}
	}
	sam.StartProcess("msp-a") // a process outside any session
	if s, p := sam.Running("msp-a"); s != 1 || p != 2 {
		t.Fatalf("before: %d sessions, %d processes", s, p)
	}
	if err := b.EndSessions(ctx, "msp-a"); err != nil {
		t.Fatal(err)
	}
	if s, p := sam.Running("msp-a"); s != 0 || p != 0 {
		t.Fatalf("after: %d sessions, %d processes of msp-a", s, p)
	}
	if s, p := sam.Running("msp-b"); s != 1 || p != 1 {
		t.Fatalf("EndSessions(msp-a) touched msp-b: %d sessions, %d processes", s, p)
	}
}

func TestEndSessionsGivesUp(t *testing.T) {
	ctx := t.Context()
	sam := netusertest.New(netusertest.Config{StickyProcesses: 10})
	b, err := netuser.New(netuser.Config{API: sam, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, "msp-a", "", pw("Abc-12345678901234")); err != nil {
		t.Fatal(err)
	}
	sam.StartProcess("msp-a")
	if err := b.EndSessions(ctx, "msp-a"); !errors.Is(err, netuser.ErrSessionsRemain) {
		t.Fatalf("err = %v, want ErrSessionsRemain", err)
	}
}

// fixedInfo reports an account whose expiry an administrator set.
type fixedInfo struct {
	netuser.API
	expires uint32
}

func (f fixedInfo) UserGetInfo(name string) (netuser.UserInfo, uint32) {
	i, code := f.API.UserGetInfo(name)
	i.AcctExpires = f.expires
	return i, code
}

func TestExpiredAccountIsNotEnabled(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	sam := netusertest.New(netusertest.Config{})
	for _, c := range []struct {
		expires uint32
		enabled bool
	}{
		{netuser.TimeqForever, true},
		{uint32(now.Add(time.Hour).Unix()), true},
		{uint32(now.Add(-time.Second).Unix()), false},
	} {
		b, err := netuser.New(netuser.Config{API: fixedInfo{sam, c.expires}, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Create(ctx, "msp-x", "", pw("Abc-12345678901234"))
		if err := b.Enable(ctx, "msp-x"); err != nil {
			t.Fatal(err)
		}
		if info, err := b.Lookup(ctx, "msp-x"); err != nil || info.Enabled != c.enabled {
			t.Fatalf("expires %d: Enabled = %v (%v), want %v", c.expires, info.Enabled, err, c.enabled)
		}
	}
}
