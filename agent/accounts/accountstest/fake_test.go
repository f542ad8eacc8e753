package accountstest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
)

func TestFakeConformance(t *testing.T) {
	b := New(Config{})
	Conformance(t, Harness{Backend: b, Login: b.Login, MaxNameLen: accounts.MaxNameLinux, Admins: adminsOf(b)})
	if names := b.Names(); len(names) != 0 {
		t.Fatalf("suite left accounts behind: %v", names)
	}
}

func adminsOf(b *Backend) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) { return b.Admins(), nil }
}

// keepsAdmin is a Backend whose SetAdmin(false) reports success and
// leaves the membership: the fault the suite must catch.
type keepsAdmin struct{ *Backend }

func (b keepsAdmin) SetAdmin(ctx context.Context, name string, admin bool) error {
	if !admin {
		return nil
	}
	return b.Backend.SetAdmin(ctx, name, admin)
}

// lyingLookup is a Backend whose Lookup never reports membership,
// though the group holds the account: the fault Harness.Admins catches.
type lyingLookup struct{ *Backend }

func (b lyingLookup) Lookup(ctx context.Context, name string) (accounts.Info, error) {
	i, err := b.Backend.Lookup(ctx, name)
	i.Admin = false
	return i, err
}

// TestConformanceCatchesAdminLeftBehind runs the suite, in a child test
// process, against backends that leave the administrators membership
// behind or hide it, and checks that it fails and says why.
func TestConformanceCatchesAdminLeftBehind(t *testing.T) {
	if which := os.Getenv("JITKEY_BROKEN_BACKEND"); which != "" {
		b := New(Config{})
		var be accounts.Backend = keepsAdmin{b}
		if which == "lying" {
			be = lyingLookup{b}
		}
		Conformance(t, Harness{Backend: be, Login: b.Login, MaxNameLen: accounts.MaxNameLinux, Admins: adminsOf(b)})
		return
	}
	for which, want := range map[string]string{
		"keeps": "membership left behind at the end",
		"lying": "but the platform's group record says true",
	} {
		t.Run(which, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestConformanceCatchesAdminLeftBehind$", "-test.count=1")
			cmd.Env = append(os.Environ(), "JITKEY_BROKEN_BACKEND="+which)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), want) {
				t.Fatalf("suite on a backend that %s: err %v, output:\n%s", which, err, out)
			}
		})
	}
}

func TestFakeConformanceWindowsLength(t *testing.T) {
	b := New(Config{MaxNameLen: accounts.MaxNameWindows})
	Conformance(t, Harness{Backend: b, Login: b.Login, MaxNameLen: accounts.MaxNameWindows, Prefix: "w-", Admins: adminsOf(b)})
	if err := b.Create(t.Context(), "msp-abcdefghijklmnopq", "", password.FromBytes([]byte("x"))); !errors.Is(err, accounts.ErrInvalidName) {
		t.Fatalf("21-character name: err = %v, want ErrInvalidName", err)
	}
}

func TestFailNth(t *testing.T) {
	ctx := context.Background()
	b := New(Config{})
	pw := password.FromBytes([]byte("Abc-123456789012345678901"))
	custom := errors.New("disk on fire")
	b.FailNth(OpCreate, 2, nil)
	b.FailNth(OpEnable, 1, custom)

	if err := b.Create(ctx, "msp-a", "", pw); err != nil {
		t.Fatalf("first Create: %v", err)
	}
	if err := b.Create(ctx, "msp-b", "", pw); !errors.Is(err, ErrInjected) {
		t.Fatalf("second Create: err = %v, want ErrInjected", err)
	}
	if _, err := b.Lookup(ctx, "msp-b"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("failed Create had an effect: %v", err)
	}
	if err := b.Create(ctx, "msp-b", "", pw); err != nil {
		t.Fatalf("third Create: %v", err)
	}
	if err := b.Enable(ctx, "msp-a"); !errors.Is(err, custom) {
		t.Fatalf("first Enable: err = %v, want %v", err, custom)
	}
	if info, _ := b.Lookup(ctx, "msp-a"); info.Enabled {
		t.Fatal("failed Enable had an effect")
	}
	if err := b.Enable(ctx, "msp-a"); err != nil {
		t.Fatalf("second Enable: %v", err)
	}
	if got := b.Calls(OpCreate); got != 3 {
		t.Fatalf("Calls(Create) = %d, want 3", got)
	}
	if got := b.Calls(OpEnable); got != 2 {
		t.Fatalf("Calls(Enable) = %d, want 2", got)
	}
}

func TestFakeKeepsOwnCopyOfPassword(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := New(Config{Now: func() time.Time { return now }})
	pw := password.FromBytes([]byte("Abc-123456789012345678901"))
	keep := pw.Clone()
	if err := b.Create(ctx, "msp-a", "", pw); err != nil {
		t.Fatal(err)
	}
	if err := b.Enable(ctx, "msp-a"); err != nil {
		t.Fatal(err)
	}
	pw.Wipe() // the caller wipes its copy after use
	if err := b.Login(ctx, "msp-a", keep); err != nil {
		t.Fatalf("login after the caller wiped its secret: %v", err)
	}
	if info, _ := b.Lookup(ctx, "msp-a"); !info.LastUse.Equal(now) {
		t.Fatalf("LastUse = %v, want %v", info.LastUse, now)
	}
	if err := b.Login(ctx, "msp-a", pw); !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("login with wiped secret: err = %v, want ErrLoginRefused", err)
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := New(Config{})
	if err := b.Create(ctx, "msp-a", "", password.FromBytes([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(b.Names()) != 0 {
		t.Fatal("canceled Create had an effect")
	}
}

// TestFakeSessions: a login opens a session that Disable and SetPassword
// leave running and EndSessions ends; History records the calls in order.
func TestFakeSessions(t *testing.T) {
	ctx := t.Context()
	b := New(Config{})
	pw := password.FromBytes([]byte("Abc-123456789012345678901"))
	if err := b.Create(ctx, "msp-a", "", pw); err != nil {
		t.Fatal(err)
	}
	if err := b.Enable(ctx, "msp-a"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Login(ctx, "msp-a", pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Disable(ctx, "msp-a"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPassword(ctx, "msp-a", password.FromBytes([]byte("Xyz-123456789012345678901"))); err != nil {
		t.Fatal(err)
	}
	if n := b.Sessions("msp-a"); n != 2 {
		t.Fatalf("Sessions after Disable = %d, want 2", n)
	}
	b.FailNth(OpEndSessions, 1, nil)
	if err := b.EndSessions(ctx, "msp-a"); !errors.Is(err, ErrInjected) || b.Sessions("msp-a") != 2 {
		t.Fatalf("failing EndSessions: err = %v, sessions %d", err, b.Sessions("msp-a"))
	}
	for range 2 {
		if err := b.EndSessions(ctx, "msp-a"); err != nil {
			t.Fatal(err)
		}
		if n := b.Sessions("msp-a"); n != 0 {
			t.Fatalf("Sessions after EndSessions = %d", n)
		}
	}
	h := b.History()
	want := []Call{{OpCreate, "msp-a"}, {OpEnable, "msp-a"}, {OpDisable, "msp-a"}, {OpSetPassword, "msp-a"},
		{OpEndSessions, "msp-a"}, {OpEndSessions, "msp-a"}, {OpEndSessions, "msp-a"}}
	if !slices.Equal(h, want) {
		t.Fatalf("History = %v, want %v", h, want)
	}
}
