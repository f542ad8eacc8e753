//go:build linux

package linuxtest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
)

// Backend opens a sandbox in a temporary directory of t and returns it
// with the real Linux backend running its commands there. It fails t
// unless it runs as root (CI does): the sandbox uses mount namespaces.
func Backend(t *testing.T) (*sandbox.Sandbox, *linux.Backend) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("needs root (CI runs as root): the sandbox uses mount namespaces")
	}
	sb, err := sandbox.Open(t.Context(), sandbox.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	be, err := linux.New(linux.Config{Runner: sb})
	if err != nil {
		t.Fatal(err)
	}
	return sb, be
}

// StartAs starts argv as uid (and gid uid) in / and makes sure it is gone
// when the test ends.
func StartAs(t *testing.T, uid int, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// WantKilled reaps each of cmds (started by StartAs) and checks that
// SIGKILL ended it within 5 s; when says after what, for the failure.
func WantKilled(t *testing.T, when string, cmds ...*exec.Cmd) {
	t.Helper()
	for _, c := range cmds {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: %v (pid %d) still running", when, c.Args, c.Process.Pid)
		}
		ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("%s: %v %v, want killed by SIGKILL", when, c.Args, c.ProcessState)
		}
	}
}
