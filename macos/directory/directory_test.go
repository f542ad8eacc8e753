package directory_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/macos/directory"
	"github.com/jitkey/jitkey/macos/mactest"
)

// These tests run the backend against mactest's fake Mac, which follows
// the tools' documented behaviour. They show the backend's logic, not
// that a real Mac behaves as documented.

func newBackend(t *testing.T, cfg mactest.Config) (*directory.Backend, *mactest.Mac) {
	t.Helper()
	mac := mactest.New(cfg)
	b, err := directory.New(directory.Config{Runner: mac, EndTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

func newPW(t *testing.T) password.Secret {
	t.Helper()
	pw, err := password.Generate(rand.Reader, password.MinLength)
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// TestConformance runs the shared Backend suite on the fake Mac, logging
// in as the login window would (OpenDirectory authentication).
func TestConformance(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{BootstrapToken: true})
	accountstest.Conformance(t, accountstest.Harness{
		Backend:    b,
		MaxNameLen: directory.MaxName,
		Admins:     func(context.Context) ([]string, error) { return mac.Admins(), nil },
		Login: func(ctx context.Context, name string, pw password.Secret) error {
			return mac.Login(ctx, name, pw.Bytes())
		},
	})
	// Passwords never appear in a command's arguments.
	for _, c := range mac.Calls() {
		for _, a := range c {
			if len(a) >= password.MinLength && strings.ContainsAny(a, "-_.,+=@") && !strings.HasPrefix(a, "/") && !strings.Contains(a, ":") && !strings.Contains(a, ";") {
				t.Errorf("argument that may be a password: %q in %q", a, c)
			}
		}
	}
}

func TestCreateRecord(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{})
	ctx := t.Context()
	mac.AddUser("alice", 501, "Alice", []byte("pw"), true, true)
	if err := b.Create(ctx, "msp-nik", accounts.JITFullNamePrefix+"nik", newPW(t)); err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]string{"UniqueID": "502", "PrimaryGroupID": "20", "UserShell": directory.ShellDisabled, "NFSHomeDirectory": "/Users/msp-nik"} {
		if got := mac.Attr("msp-nik", attr); !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	aa := mac.Attr("msp-nik", "AuthenticationAuthority")
	if !slices.Contains(aa, directory.NoSecureToken) || !slices.Contains(aa, directory.DisabledUser) {
		t.Errorf("AuthenticationAuthority = %q", aa)
	}
	if !mac.HasHome("msp-nik") {
		t.Error("no home directory")
	}
	info, err := b.Lookup(ctx, "msp-nik")
	if err != nil || !info.IsJIT() || info.Enabled || info.Admin || info.ID == "" {
		t.Fatalf("%+v %v", info, err)
	}
	list, err := b.ListJIT(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "msp-nik" {
		t.Fatalf("ListJIT = %+v %v", list, err)
	}
	// A failing step leaves no record behind.
	mac.FailNext("createhomedir", errors.New("disk full"))
	if err := b.Create(ctx, "msp-ann", "", newPW(t)); err == nil {
		t.Fatal("Create succeeded with a failing createhomedir")
	}
	if _, err := b.Lookup(ctx, "msp-ann"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("half-created account left: %v", err)
	}
}

// TestNoSecureTokenAtLogin: on a Mac with a bootstrap token, a login at
// the login window grants a token to an account without
// ;DisabledTags;SecureToken, but not to a jitkey account.
func TestNoSecureTokenAtLogin(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{BootstrapToken: true})
	ctx := t.Context()
	pw := newPW(t)
	if err := b.Create(ctx, "msp-nik", "", pw); err != nil {
		t.Fatal(err)
	}
	if err := b.Enable(ctx, "msp-nik"); err != nil {
		t.Fatal(err)
	}
	if err := mac.Login(ctx, "msp-nik", pw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if has, err := b.SecureToken(ctx, "msp-nik"); err != nil || has {
		t.Fatalf("SecureToken = %v, %v", has, err)
	}
	mac.AddUser("bob", 510, "Bob", []byte("bob-pw"), false, false)
	if err := mac.Login(ctx, "bob", []byte("bob-pw")); err != nil {
		t.Fatal(err)
	}
	if has, _ := b.SecureToken(ctx, "bob"); !has {
		t.Fatal("the fake did not grant the control account a token: the test proves nothing")
	}
}

// TestRefusesSecureTokenHolder: an account that holds a token (someone
// removed the tag and granted one) is neither enabled nor given a new
// password.
func TestRefusesSecureTokenHolder(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{})
	ctx := t.Context()
	mac.AddUser("msp-tok", 520, accounts.JITFullNamePrefix+"tok", []byte("old"), true, false)
	if err := b.Enable(ctx, "msp-tok"); !errors.Is(err, directory.ErrSecureToken) {
		t.Fatalf("Enable: %v", err)
	}
	if err := b.SetPassword(ctx, "msp-tok", newPW(t)); !errors.Is(err, directory.ErrSecureToken) {
		t.Fatalf("SetPassword: %v", err)
	}
	if err := mac.Login(ctx, "msp-tok", []byte("old")); err != nil {
		t.Fatalf("the password was changed: %v", err)
	}
}

// TestAdminTag: jitkey revokes only the admin membership it granted.
func TestAdminTag(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{})
	ctx := t.Context()
	mac.AddUser("msp-own", 530, "made an admin by the customer", []byte("x"), false, true)
	if err := b.SetAdmin(ctx, "msp-own", true); err != nil {
		t.Fatal(err)
	}
	if got := mac.Attr("msp-own", directory.AttrAdminGranted); got != nil {
		t.Fatalf("existing admin tagged: %q", got)
	}
	if err := b.SetAdmin(ctx, "msp-own", false); !errors.Is(err, directory.ErrNotGranted) {
		t.Fatalf("revoke untagged: %v", err)
	}
	if info, _ := b.Lookup(ctx, "msp-own"); !info.Admin {
		t.Fatal("jitkey revoked an admin membership it did not grant")
	}
	if err := b.Create(ctx, "msp-nik", "", newPW(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetAdmin(ctx, "msp-nik", true); err != nil {
		t.Fatal(err)
	}
	if got := mac.Attr("msp-nik", directory.AttrAdminGranted); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("tag = %q", got)
	}
	if err := b.SetAdmin(ctx, "msp-nik", false); err != nil {
		t.Fatal(err)
	}
	if got := mac.Attr("msp-nik", directory.AttrAdminGranted); got != nil {
		t.Fatalf("tag left after revoke: %q", got)
	}
	// The tag goes on before the membership: a failing dseditgroup
	// leaves no untagged membership.
	mac.FailNext("dseditgroup", errors.New("node busy"))
	if err := b.SetAdmin(ctx, "msp-nik", true); err == nil {
		t.Fatal("SetAdmin succeeded with a failing dseditgroup")
	}
	if info, _ := b.Lookup(ctx, "msp-nik"); info.Admin {
		t.Fatal("membership without success")
	}
	if err := b.SetAdmin(ctx, "msp-nik", false); err != nil {
		t.Fatalf("clearing a stray tag: %v", err)
	}
	if got := mac.Attr("msp-nik", directory.AttrAdminGranted); got != nil {
		t.Fatalf("stray tag left: %q", got)
	}
}

func TestEndSessions(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{})
	ctx := t.Context()
	pw := newPW(t)
	if err := b.Create(ctx, "msp-nik", "", pw); err != nil {
		t.Fatal(err)
	}
	if err := b.Enable(ctx, "msp-nik"); err != nil {
		t.Fatal(err)
	}
	if err := mac.Login(ctx, "msp-nik", pw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if len(mac.Processes(501)) == 0 {
		t.Fatal("login started no process")
	}
	if err := b.Disable(ctx, "msp-nik"); err != nil {
		t.Fatal(err)
	}
	if err := b.EndSessions(ctx, "msp-nik"); err != nil {
		t.Fatal(err)
	}
	if p := mac.Processes(501); len(p) != 0 {
		t.Fatalf("processes left: %v", p)
	}
	// A system account's processes are never signalled.
	mac.AddUser("msp-sys", 200, "", nil, false, false)
	if err := b.EndSessions(ctx, "msp-sys"); !errors.Is(err, directory.ErrBadUID) {
		t.Fatalf("uid 200: %v", err)
	}
}

func TestDisableKeepsShellAndPassword(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{})
	ctx := t.Context()
	if err := b.Create(ctx, "msp-nik", "", newPW(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Enable(ctx, "msp-nik"); err != nil {
		t.Fatal(err)
	}
	if got := mac.Attr("msp-nik", "UserShell"); !slices.Equal(got, []string{directory.ShellEnabled}) {
		t.Fatalf("shell %q", got)
	}
	mac.FailNext("pwpolicy", errors.New("busy"))
	if err := b.Disable(ctx, "msp-nik"); err == nil {
		t.Fatal("Disable succeeded with a failing pwpolicy")
	}
	if err := b.Disable(ctx, "msp-nik"); err != nil {
		t.Fatal(err)
	}
	if got := mac.Attr("msp-nik", "UserShell"); !slices.Equal(got, []string{directory.ShellDisabled}) {
		t.Fatalf("shell %q", got)
	}
	// SetPassword on a disabled account keeps it disabled.
	if err := b.SetPassword(ctx, "msp-nik", newPW(t)); err != nil {
		t.Fatal(err)
	}
	if info, _ := b.Lookup(ctx, "msp-nik"); info.Enabled {
		t.Fatal("SetPassword enabled the account")
	}
}

func TestPasswordScrubbed(t *testing.T) {
	b, mac := newBackend(t, mactest.Config{})
	ctx := t.Context()
	if err := b.Create(ctx, "msp-nik", "", newPW(t)); err != nil {
		t.Fatal(err)
	}
	pw := newPW(t)
	mac.FailNext("dscl .", errors.New("passwd: bad password "+string(pw.Bytes())))
	err := b.SetPassword(ctx, "msp-nik", pw)
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "passwd: bad password "+password.Redacted) {
		t.Fatalf("not the passwd failure: %v", err)
	}
	if strings.Contains(err.Error(), string(pw.Bytes())) {
		t.Fatalf("password in error: %v", err)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecordedOutputs parses the recorded command outputs.
func TestRecordedOutputs(t *testing.T) {
	r, err := directory.ParseRecord(readTestdata(t, "dscl-read-user.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if r["dsAttrTypeStandard:UniqueID"][0] != "502" || r[directory.AttrAdminGranted][0] != "1" ||
		!slices.Contains(r["dsAttrTypeStandard:AuthenticationAuthority"], directory.DisabledUser) {
		t.Fatalf("%q", r)
	}
	uids, err := directory.ParseUIDList(readTestdata(t, "dscl-list-uid.txt"))
	if err != nil || !slices.Equal(uids, []int{1, -2, 0, 83, 70, 501, 502}) {
		t.Fatalf("%v %v", uids, err)
	}
	if has, err := directory.ParseSecureTokenStatus(readTestdata(t, "securetoken-disabled.txt"), "msp-nik"); err != nil || has {
		t.Fatalf("disabled: %v %v", has, err)
	}
	if has, err := directory.ParseSecureTokenStatus(readTestdata(t, "securetoken-enabled.txt"), "alice"); err != nil || !has {
		t.Fatalf("enabled: %v %v", has, err)
	}
	if _, err := directory.ParseSecureTokenStatus(readTestdata(t, "securetoken-enabled.txt"), "msp-nik"); err == nil {
		t.Fatal("status of another user accepted")
	}
	if _, err := directory.ParseSecureTokenStatus([]byte("sysadminctl[1:2] Unable to find user record\n"), "msp-nik"); err == nil {
		t.Fatal("no status accepted")
	}
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	last, err := directory.ParseLast(readTestdata(t, "last-user.txt"), "msp-nik", now)
	if err != nil || !last.Equal(time.Date(2026, 12, 6, 17, 41, 0, 0, time.UTC)) {
		t.Fatalf("last = %v %v", last, err)
	}
	// Early January: a December login is last year's.
	jan := time.Date(2027, 1, 2, 9, 0, 0, 0, time.UTC)
	if last, err := directory.ParseLast(readTestdata(t, "last-user.txt"), "msp-nik", jan); err != nil || last.Year() != 2026 {
		t.Fatalf("across the new year: %v %v", last, err)
	}
	if last, err := directory.ParseLast(readTestdata(t, "last-user.txt"), "nobody", now); err != nil || !last.IsZero() {
		t.Fatalf("no login: %v %v", last, err)
	}
}

// FuzzParseRecord: the dscl output parser never panics, and what it
// accepts has only string lists.
func FuzzParseRecord(f *testing.F) {
	for _, name := range []string{"dscl-read-user.plist", "dscl-read-user-plain.plist", "dscl-read-admin.plist"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	f.Add([]byte("msp-nik console Sun Dec  6 17:41 - 17:58 (00:17)\n"), "msp-nik")
	f.Add([]byte("2026-12-06 18:02:11.412 sysadminctl[4711:90210] Secure token is DISABLED for user msp-nik\n"), "msp-nik")
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, out []byte, name string) {
		if r, err := directory.ParseRecord(out); err == nil && r == nil {
			t.Fatal("nil record without error")
		}
		_, _ = directory.ParseUIDList(out)
		_, _ = directory.ParseSecureTokenStatus(out, name)
		if last, err := directory.ParseLast(out, name, now); err == nil && last.After(now.Add(24*time.Hour)) {
			t.Fatalf("last login in the future: %v", last)
		}
	})
}
