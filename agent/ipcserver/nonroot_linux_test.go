package ipcserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jitkey/jitkey/agent/ipcserver"
)

// TestNonRootRefused connects as uid 65534 (nobody): the socket directory
// (0700) and then the socket's mode (0600) stop it in the kernel; with both
// opened up, the listener drops it on SO_PEERCRED before reading a byte.
func TestNonRootRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to uid 65534 (CI runs as root)")
	}
	base, err := os.MkdirTemp("", "jitkey-ipcserver-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(base, "run")
	e := newEnv(t, run)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(base, "helper")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, b, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func() string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), helper)
		cmd.Env = []string{"JITKEY_IPC_HELPER=" + e.sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v %s", err, out)
		}
		return string(out)
	}
	if out := asNobody(); !strings.HasPrefix(out, "dial:") || !strings.Contains(out, "permission denied") {
		t.Fatalf("with the directory 0700: %q", out)
	}
	if err := os.Chmod(run, 0o711); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.HasPrefix(out, "dial:") || !strings.Contains(out, "permission denied") {
		t.Fatalf("with the socket 0600: %q", out)
	}
	if err := os.Chmod(e.sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if out := asNobody(); !strings.HasPrefix(out, "no answer:") {
		t.Fatalf("non-root peer got an answer: %q", out)
	}
	// Root still gets served.
	c := e.dial(t)
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	next[ipcserver.QR](t, c)
}
