//go:build linux

package linux_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/password"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for the mount namespace sandbox (CI runs as root)")
	}
}

// recorder wraps a Runner and keeps every command line and stdin.
type recorder struct {
	linux.Runner
	mu    sync.Mutex
	argv  [][]string
	stdin [][]byte
}

func (r *recorder) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	r.argv = append(r.argv, append([]string{name}, args...))
	r.stdin = append(r.stdin, bytes.Clone(stdin))
	r.mu.Unlock()
	return r.Runner.Run(ctx, stdin, name, args...)
}

func newSandbox(t *testing.T) (*sandbox.Sandbox, *linux.Backend, *recorder) {
	t.Helper()
	needRoot(t)
	t.Parallel()
	sb, err := sandbox.Open(t.Context(), sandbox.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Runner: sb}
	b, err := linux.New(linux.Config{Runner: rec})
	if err != nil {
		t.Fatal(err)
	}
	return sb, b, rec
}

func newPassword(t *testing.T) password.Secret {
	t.Helper()
	pw, err := password.Generate(rand.Reader, password.MinLength)
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// TestConformance runs the shared Backend suite against real shadow-utils
// in a sandbox, logging in with pamtester; it also checks that no password
// ever appeared in a command line, and that nothing reached the host.
func TestConformance(t *testing.T) {
	sb, b, rec := newSandbox(t)
	var issued []password.Secret
	var mu sync.Mutex
	login := func(ctx context.Context, name string, pw password.Secret) error {
		mu.Lock()
		issued = append(issued, pw.Clone())
		mu.Unlock()
		return sb.Login(ctx, name, pw)
	}
	// The sudo group as /etc/group in the sandbox holds it.
	admins := func(ctx context.Context) ([]string, error) {
		out, err := sb.Run(ctx, nil, "getent", "group", "sudo")
		if err != nil {
			return nil, err
		}
		f := strings.Split(strings.TrimSpace(string(out)), ":")
		if len(f) != 4 {
			return nil, fmt.Errorf("group entry %q", out)
		}
		return strings.Split(f[3], ","), nil
	}
	accountstest.Conformance(t, accountstest.Harness{Backend: b, Login: login, MaxNameLen: accounts.MaxNameLinux, Admins: admins})

	if len(issued) < 5 {
		t.Fatalf("only %d logins recorded", len(issued))
	}
	for _, argv := range rec.argv {
		line := strings.Join(argv, " ")
		for _, pw := range issued {
			if strings.Contains(line, string(pw.Bytes())) {
				t.Fatalf("password on a command line: %s", argv[0])
			}
		}
	}
	// chpasswd got the passwords on stdin.
	n := 0
	for i, argv := range rec.argv {
		if argv[0] == "chpasswd" {
			n++
			if len(argv) != 1 || !bytes.HasSuffix(rec.stdin[i], []byte("\n")) || !bytes.Contains(rec.stdin[i], []byte(":")) {
				t.Fatalf("chpasswd call %q with stdin of %d bytes", argv, len(rec.stdin[i]))
			}
		}
	}
	if n == 0 {
		t.Fatal("chpasswd never ran")
	}
	// The host never saw the sandbox's accounts.
	if out, err := exec.Command("getent", "passwd", "jkt-life").CombinedOutput(); err == nil {
		t.Fatalf("host has the sandbox account: %s", out)
	}
}

func shadowLine(t *testing.T, sb *sandbox.Sandbox, name string) []string {
	t.Helper()
	out, err := sb.Run(t.Context(), nil, "getent", "shadow", name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(out)), ":")
}

// TestDisableBlocksTwice shows that a disabled account is blocked by both
// mechanisms independently: with only the password unlocked, PAM account
// management still refuses (expired; this is what stops SSH keys); with
// only the expiry cleared, authentication still refuses (locked).
func TestDisableBlocksTwice(t *testing.T) {
	sb, b, _ := newSandbox(t)
	ctx := t.Context()
	const name = "msp-twice"
	pw := newPassword(t)
	if err := b.Create(ctx, name, "Twice", pw); err != nil {
		t.Fatal(err)
	}
	f := shadowLine(t, sb, name)
	if !strings.HasPrefix(f[1], "!") || f[7] != "1" {
		t.Fatalf("created account: locked=%v expire=%q, want locked and expire 1", strings.HasPrefix(f[1], "!"), f[7])
	}
	if err := b.Enable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := sb.Login(ctx, name, pw); err != nil {
		t.Fatalf("enabled account: %v", err)
	}
	if err := b.Disable(ctx, name); err != nil {
		t.Fatal(err)
	}

	// Only the expiry left: authentication passes, account management fails.
	if _, err := sb.Run(ctx, nil, "usermod", "--unlock", name); err != nil {
		t.Fatal(err)
	}
	if err := sb.PAMTest(ctx, sandbox.PAMService, name, pw, "authenticate"); err != nil {
		t.Fatalf("unlocked password should authenticate: %v", err)
	}
	err := sb.PAMTest(ctx, sandbox.PAMService, name, pw, "acct_mgmt")
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired account passed account management: %v", err)
	}

	// Only the lock left: authentication fails.
	if _, err := sb.Run(ctx, nil, "usermod", "--lock", "--expiredate", "", name); err != nil {
		t.Fatal(err)
	}
	if err := sb.PAMTest(ctx, sandbox.PAMService, name, pw, "acct_mgmt"); err != nil {
		t.Fatalf("unexpired account should pass account management: %v", err)
	}
	if err := sb.PAMTest(ctx, sandbox.PAMService, name, pw, "authenticate"); err == nil {
		t.Fatal("locked password authenticated")
	}
}

// TestSetPasswordKeepsLock: chpasswd alone would drop the '!' of a locked
// account; the backend puts it back.
func TestSetPasswordKeepsLock(t *testing.T) {
	sb, b, _ := newSandbox(t)
	ctx := t.Context()
	const name = "msp-keeplock"
	if err := b.Create(ctx, name, "", newPassword(t)); err != nil {
		t.Fatal(err)
	}
	pw := newPassword(t)
	if err := b.SetPassword(ctx, name, pw); err != nil {
		t.Fatal(err)
	}
	if f := shadowLine(t, sb, name); !strings.HasPrefix(f[1], "!$") {
		t.Fatal("SetPassword on a disabled account removed the lock")
	}
	if err := sb.PAMTest(ctx, sandbox.PAMService, name, pw, "authenticate"); err == nil {
		t.Fatal("locked account authenticated")
	}
	if err := b.Enable(ctx, name); err != nil {
		t.Fatal(err)
	}
	pw2 := newPassword(t)
	if err := b.SetPassword(ctx, name, pw2); err != nil {
		t.Fatal(err)
	}
	if f := shadowLine(t, sb, name); strings.HasPrefix(f[1], "!") {
		t.Fatal("SetPassword on an enabled account locked it")
	}
	if err := sb.Login(ctx, name, pw2); err != nil {
		t.Fatal(err)
	}
}

// TestAdminGroupCreated: SetAdmin creates a missing sudo group.
func TestAdminGroupCreated(t *testing.T) {
	sb, b, _ := newSandbox(t)
	ctx := t.Context()
	if _, err := sb.Run(ctx, nil, "groupdel", "sudo"); err != nil {
		t.Fatal(err)
	}
	const name = "msp-adm"
	if err := b.Create(ctx, name, "", newPassword(t)); err != nil {
		t.Fatal(err)
	}
	if info, err := b.Lookup(ctx, name); err != nil || info.Admin {
		t.Fatalf("Lookup without sudo group: %+v, %v", info, err)
	}
	if err := b.SetAdmin(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	out, err := sb.Run(ctx, nil, "id", "-nG", name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(out)), "sudo") {
		t.Fatalf("id -nG %s = %q, want sudo", name, out)
	}
	if info, err := b.Lookup(ctx, name); err != nil || !info.Admin {
		t.Fatalf("Lookup: %+v, %v", info, err)
	}
}

// TestSandboxOpenSetsUpGroupAndReuse: Open creates the sudo group in a
// copied /etc that lacks it, and reopening keeps the accounts.
func TestSandboxOpenSetsUpGroupAndReuse(t *testing.T) {
	needRoot(t)
	t.Parallel()
	ctx := t.Context()
	src := t.TempDir() + "/etc"
	if out, err := exec.Command("cp", "-a", "/etc", src).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Remove sudo from the source copy by editing its group files.
	for _, f := range []string{"group", "gshadow"} {
		b, err := os.ReadFile(src + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for l := range strings.Lines(string(b)) {
			if !strings.HasPrefix(l, "sudo:") {
				keep = append(keep, l)
			}
		}
		if err := os.WriteFile(src+"/"+f, []byte(strings.Join(keep, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	sb, err := sandbox.Open(ctx, sandbox.Config{Dir: dir, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Run(ctx, nil, "getent", "group", "sudo"); err != nil {
		t.Fatalf("sudo group missing after Open: %v", err)
	}
	b, err := linux.New(linux.Config{Runner: sb})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, "msp-keep", "", newPassword(t)); err != nil {
		t.Fatal(err)
	}
	sb2, err := sandbox.Open(ctx, sandbox.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := linux.New(linux.Config{Runner: sb2})
	if _, err := b2.Lookup(ctx, "msp-keep"); err != nil {
		t.Fatalf("reopened sandbox lost the account: %v", err)
	}
	if _, err := os.Stat(dir + "/home/msp-keep"); err != nil {
		t.Fatalf("home directory not in the sandbox: %v", err)
	}
}

// failingRunner fails chpasswd, echoing its stdin to stderr, like a
// careless tool might.
type failingRunner struct{ linux.Runner }

func (f failingRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	if name == "chpasswd" {
		return nil, &linux.CommandError{Name: name, Args: args, Code: 1, Stderr: "chpasswd: bad line: " + string(stdin), Err: errors.New("exit status 1: " + string(stdin))}
	}
	return f.Runner.Run(ctx, stdin, name, args...)
}

// TestErrorsNameCommandWithoutPassword: a failing command is reported with
// its name and stderr, with the password scrubbed; a Create that fails
// after useradd leaves no account behind.
func TestErrorsNameCommandWithoutPassword(t *testing.T) {
	sb, _, _ := newSandbox(t)
	ctx := t.Context()
	b, err := linux.New(linux.Config{Runner: failingRunner{sb}})
	if err != nil {
		t.Fatal(err)
	}
	pw := newPassword(t)
	err = b.Create(ctx, "msp-fail", "", pw)
	if err == nil {
		t.Fatal("Create succeeded with a failing chpasswd")
	}
	msg := err.Error()
	if strings.Contains(msg, string(pw.Bytes())) {
		t.Fatal("error message contains the password")
	}
	if !strings.Contains(msg, "run chpasswd") || !strings.Contains(msg, "bad line: msp-fail:REDACTED") {
		t.Fatalf("error lacks the command or its stderr: %s", msg)
	}
	if _, err := b.Lookup(ctx, "msp-fail"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("half-created account left behind: %v", err)
	}

	// A real failure carries the real stderr.
	good, _ := linux.New(linux.Config{Runner: sb})
	if err := good.Create(ctx, "msp-dup", "", pw); err != nil {
		t.Fatal(err)
	}
	err = good.Create(ctx, "msp-dup", "", pw)
	if !errors.Is(err, accounts.ErrExists) || !strings.Contains(err.Error(), "useradd: user 'msp-dup' already exists") {
		t.Fatalf("duplicate Create: %v", err)
	}
	if ce, ok := errors.AsType[*linux.CommandError](err); !ok || ce.Code != 9 || ce.Name != "useradd" {
		t.Fatalf("duplicate Create error: %#v", ce)
	}
}

func TestNewNeedsRunner(t *testing.T) {
	if _, err := linux.New(linux.Config{}); !errors.Is(err, linux.ErrNoRunner) {
		t.Fatalf("err = %v, want ErrNoRunner", err)
	}
}

// TestListJIT: ListJIT finds exactly the accounts with jitkey's full-name
// marker, with their uid as ID.
func TestListJIT(t *testing.T) {
	sb, b, _ := newSandbox(t)
	ctx := t.Context()
	for name, full := range map[string]string{
		"jkt-one":   accounts.JITFullNamePrefix + "nik",
		"jkt-two":   accounts.JITFullNamePrefix + "ann",
		"jkt-other": "jitkey JIT", // no marker: the prefix ends with a space
	} {
		if err := b.Create(ctx, name, full, newPassword(t)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.ListJIT(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range got {
		names = append(names, i.Name)
		out, err := sb.Run(ctx, nil, "id", "-u", i.Name)
		if err != nil || strings.TrimSpace(string(out)) != i.ID {
			t.Errorf("%s: ID %q, id -u %q %v", i.Name, i.ID, out, err)
		}
		if !i.IsJIT() || i.Enabled {
			t.Errorf("%+v", i)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"jkt-one", "jkt-two"}) {
		t.Fatalf("ListJIT = %v", names)
	}
}
