//go:build linux

package linux_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/password"
)

// lockedBuffer collects a command's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sudoScript runs as the account: sudo with the password on stdin
// (caching a credential), sudo -n (from the cache, no password), then
// waits for a line and tries sudo -n again.
const sudoScript = `sudo -S -p '' true && echo first-ok
sudo -n true && echo cached-ok || echo cached-refused
read line
sudo -n true && echo after-ok || echo after-refused
`

// TestDisableDropsSudoCredential (SPEC.md 11.13, README "sudo"): real
// sudo 1.9 in the sandbox caches a JIT account's authentication (its
// timestamp record) and runs a second command without asking; after
// Disable, a process of the account that is still running (its end not
// finished yet) gets nothing from the cache: Disable removed the
// account's timestamp file. With sudo's default pam_acct_mgmt, PAM's
// account check (the expired account) refuses as well; with
// !pam_acct_mgmt (sudoers allows it) the removed file is all that
// stands in the way: without it that sudo runs as root.
func TestDisableDropsSudoCredential(t *testing.T) {
	needRoot(t)
	t.Parallel()
	for _, c := range []struct{ name, sudoers string }{
		{"pam_acct_mgmt", ""},
		{"no_pam_acct_mgmt", "Defaults !pam_acct_mgmt\n"},
	} {
		t.Run(c.name, func(t *testing.T) { sudoAfterDisable(t, c.sudoers) })
	}
}

func sudoAfterDisable(t *testing.T, sudoers string) {
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		t.Fatal("sudo is not installed (make deps installs it)")
	}
	ctx := t.Context()
	dir := t.TempDir()
	sb, err := sandbox.Open(ctx, sandbox.Config{Dir: filepath.Join(dir, "sb")})
	if err != nil {
		t.Fatal(err)
	}
	// sudo keeps its records in a directory both namespaces see.
	ts := filepath.Join(dir, "ts")
	if err := os.WriteFile(sb.Path("/etc/sudoers.d/zz-test"), []byte("Defaults timestampdir="+ts+"\nDefaults !use_pty\n"+sudoers), 0o440); err != nil {
		t.Fatal(err)
	}
	b, err := linux.New(linux.Config{Runner: sb, SudoTimestampDir: ts})
	if err != nil {
		t.Fatal(err)
	}
	const name = "jkt-sudo"
	pw, err := password.Generate(rand.Reader, password.MinLength)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return b.Create(ctx, name, "sudo test", pw) },
		func() error { return b.SetAdmin(ctx, name, true) },
		func() error { return b.Enable(ctx, name) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = b.Delete(context.WithoutCancel(ctx), name) })

	cmd := sb.Command(ctx, "setpriv", "--reuid="+name, "--regid="+name, "--init-groups", "--", "/bin/sh", "-c", sudoScript)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if !ok || got != want {
				t.Fatalf("sudo script said %q (open %v), want %q; stderr:\n%s", got, ok, want, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q from the sudo script; stderr:\n%s", want, stderr.String())
		}
	}
	if _, err := io.WriteString(stdin, string(pw.Bytes())+"\n"); err != nil {
		t.Fatal(err)
	}
	next("first-ok")
	// The cache works: without it this test could not fail.
	next("cached-ok")

	// The session ends while the shell still runs (EndSessions has not
	// killed it yet).
	if err := b.Disable(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ts, name)); !os.IsNotExist(err) {
		t.Fatalf("timestamp record after Disable: %v", err)
	}
	if _, err := io.WriteString(stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	next("after-refused")
	t.Logf("sudo said: %s", strings.TrimSpace(stderr.String()))
}
