package authdb_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/macos/authdb"
	"github.com/jitkey/jitkey/macos/mactest"
	"github.com/jitkey/jitkey/macos/plist"
)

// The tests run against mactest's fake `security authorizationdb`, seeded
// with the recorded rights of macos/testdata.

func recorded(t testing.TB, right string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "authdb-"+right+".plist"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newMac(t *testing.T) (*mactest.Mac, map[string][]byte) {
	t.Helper()
	orig := map[string][]byte{}
	for _, s := range authdb.DefaultRights() {
		orig[s.Right] = recorded(t, s.Right)
	}
	return mactest.New(mactest.Config{Rights: orig}), orig
}

func newManager(t *testing.T, mac *mactest.Mac) (*authdb.Manager, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "authdb")
	m, err := authdb.New(authdb.Config{Runner: mac, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func mechanisms(t *testing.T, doc []byte) []string {
	t.Helper()
	v, err := plist.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	mv, _ := v.Get("mechanisms")
	ms, _ := mv.Strings()
	return ms
}

func right(t *testing.T, mac *mactest.Mac, name string) []byte {
	t.Helper()
	b, ok := mac.Right(name)
	if !ok {
		t.Fatalf("right %s missing", name)
	}
	return b
}

func TestInstallRestore(t *testing.T) {
	mac, orig := newMac(t)
	m, dir := newManager(t, mac)
	ctx := t.Context()
	changed, err := m.Install(ctx)
	if err != nil || len(changed) != 3 {
		t.Fatalf("Install: %v %v", changed, err)
	}
	login := mechanisms(t, right(t, mac, "system.login.console"))
	want := slices.Clone(mechanisms(t, orig["system.login.console"]))
	want[slices.Index(want, "loginwindow:login")] = authdb.MechLogin
	if !slices.Equal(login, want) {
		t.Fatalf("login mechanisms %q, want %q", login, want)
	}
	if i, j := slices.Index(login, authdb.MechLogin), slices.Index(login, "builtin:login-begin"); i < 0 || i > j {
		t.Fatalf("jitkey's mechanism not before builtin:login-begin: %q", login)
	}
	prefs, _ := plist.Decode(right(t, mac, "system.preferences"))
	if c, _ := prefs.Get("class"); c.Str != "evaluate-mechanisms" {
		t.Fatalf("class %q", c.Str)
	}
	if g, _ := prefs.Get("group"); g.Str != "admin" {
		t.Fatal("group key lost")
	}
	if ms := mechanisms(t, right(t, mac, "system.privilege.admin")); !slices.Equal(ms, []string{authdb.MechElevate, "builtin:authenticate,privileged", authdb.MechAdmin}) {
		t.Fatalf("admin mechanisms %q", ms)
	}
	// Keys other than class and mechanisms are kept, in order.
	before, _ := plist.Decode(orig["system.privilege.admin"])
	after, _ := plist.Decode(right(t, mac, "system.privilege.admin"))
	for _, e := range before.Dict {
		if e.Key == "class" {
			continue
		}
		if v, ok := after.Get(e.Key); !ok || v.Kind != e.Value.Kind {
			t.Errorf("key %s lost or changed", e.Key)
		}
	}
	st, err := m.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Installed || !s.Saved {
			t.Fatalf("Check: %+v", st)
		}
		if fi, err := os.Stat(filepath.Join(dir, s.Right+".plist")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("saved copy of %s: %v %v", s.Right, fi, err)
		}
	}
	// Install again: nothing to do.
	if changed, err := m.Install(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("second Install: %v %v", changed, err)
	}
	// Uninstall: every right byte for byte as it was, copies gone.
	if err := m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	for name, b := range orig {
		if !bytes.Equal(right(t, mac, name), b) {
			t.Errorf("%s not restored:\n%s", name, right(t, mac, name))
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("saved copies left: %v", ents)
	}
}

// TestRepairAfterOSUpdate: an OS update resets system.login.console to
// its new default (here with one more mechanism); Check sees it, Install
// repairs it, and Restore then gives back the NEW default, not the old.
func TestRepairAfterOSUpdate(t *testing.T) {
	mac, orig := newMac(t)
	m, _ := newManager(t, mac)
	ctx := t.Context()
	if _, err := m.Install(ctx); err != nil {
		t.Fatal(err)
	}
	updated := bytes.Replace(orig["system.login.console"], []byte("\t\t<string>loginwindow:done</string>\n"),
		[]byte("\t\t<string>SomeNewMechanism:login</string>\n\t\t<string>loginwindow:done</string>\n"), 1)
	if bytes.Equal(updated, orig["system.login.console"]) {
		t.Fatal("test setup: update made no change")
	}
	mac.SetRight("system.login.console", updated)
	st, err := m.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Right != "system.login.console" || st[0].Installed || !st[1].Installed {
		t.Fatalf("Check after the update: %+v", st)
	}
	changed, err := m.Install(ctx)
	if err != nil || !slices.Equal(changed, []string{"system.login.console"}) {
		t.Fatalf("repair: %v %v", changed, err)
	}
	ms := mechanisms(t, right(t, mac, "system.login.console"))
	if !slices.Contains(ms, authdb.MechLogin) || !slices.Contains(ms, "SomeNewMechanism:login") || slices.Contains(ms, "loginwindow:login") {
		t.Fatalf("repaired mechanisms %q", ms)
	}
	if err := m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(right(t, mac, "system.login.console"), updated) {
		t.Fatal("restore did not give back the OS's updated right")
	}
	if !bytes.Equal(right(t, mac, "system.preferences"), orig["system.preferences"]) {
		t.Fatal("system.preferences not restored")
	}
}

// TestRestoreWithoutSavedCopy: the saved copies are gone (state dir
// wiped): the login right is stripped of jitkey's mechanism; an admin
// right that cannot be rebuilt is reported, not left half-done silently.
func TestRestoreWithoutSavedCopy(t *testing.T) {
	mac, orig := newMac(t)
	m, dir := newManager(t, mac)
	ctx := t.Context()
	if _, err := m.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err := m.Restore(ctx)
	if !errors.Is(err, authdb.ErrUnsupported) {
		t.Fatalf("Restore: %v", err)
	}
	if !authdb.Equal(right(t, mac, "system.login.console"), orig["system.login.console"]) {
		t.Fatalf("login right not stripped back:\n%s", right(t, mac, "system.login.console"))
	}
}

func TestUnsupportedRight(t *testing.T) {
	doc := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>class</key><string>rule</string><key>rule</key><array><string>authenticate-admin</string></array></dict></plist>`)
	mac := mactest.New(mactest.Config{Rights: map[string][]byte{"system.preferences": doc, "system.login.console": recorded(t, "system.login.console")}})
	m, err := authdb.New(authdb.Config{Runner: mac, StateDir: t.TempDir(),
		Rights: []authdb.Spec{{Right: "system.preferences", Kind: authdb.Elevate}, {Right: "system.login.console", Kind: authdb.Login}}})
	if err != nil {
		t.Fatal(err)
	}
	changed, err := m.Install(t.Context())
	if !errors.Is(err, authdb.ErrUnsupported) || !slices.Equal(changed, []string{"system.login.console"}) {
		t.Fatalf("Install: %v %v", changed, err)
	}
	if !bytes.Equal(right(t, mac, "system.preferences"), doc) {
		t.Fatal("unsupported right changed")
	}
	if _, err := authdb.New(authdb.Config{}); !errors.Is(err, authdb.ErrNoRunner) {
		t.Fatal(err)
	}
	bad, _ := authdb.New(authdb.Config{Runner: mac, StateDir: t.TempDir(), Rights: []authdb.Spec{{Right: "../x", Kind: authdb.Login}}})
	if _, err := bad.Install(t.Context()); err == nil || !strings.Contains(err.Error(), "invalid right") {
		t.Fatalf("right name with a slash: %v", err)
	}
}

// TestWriteFailureKeepsOriginal: a failing write leaves the right as it
// was and reports the error; the next Install completes.
func TestWriteFailureKeepsOriginal(t *testing.T) {
	mac, orig := newMac(t)
	m, _ := newManager(t, mac)
	mac.FailNext("security authorizationdb write", errors.New("NO (-60005)"))
	if _, err := m.Install(t.Context()); err == nil {
		t.Fatal("no error")
	}
	if !bytes.Equal(right(t, mac, "system.login.console"), orig["system.login.console"]) {
		t.Fatal("right changed by a failed write")
	}
	if _, err := m.Install(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(right(t, mac, "system.login.console"), orig["system.login.console"]) {
		t.Fatal("restore after a retried install")
	}
}
