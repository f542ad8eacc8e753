//go:build linux

package linux

import (
	"context"
	"os/exec"

	"github.com/jitkey/jitkey/internal/command"
)

// Runner runs one command to completion. stdin may be nil. On a non-zero
// exit or a failure to start, it returns a *CommandError. Implementations
// must not log stdin, which may hold a password.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) (stdout []byte, err error)
}

// CommandError reports a command that failed: its name and arguments (never
// secrets: those travel on stdin), exit code and standard error.
type CommandError = command.Error

// exitCode returns the exit code of a *CommandError in err's chain, or -1.
func exitCode(err error) int {
	if err == nil {
		return -1
	}
	return command.ExitCode(err)
}

// commandEnv is the fixed environment every command runs with: a standard
// PATH and the C locale, so output parses the same everywhere. Nothing from
// the agent's own environment is passed on.
func commandEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "LANG=C"}
}

// ExecRunner runs commands directly on the host.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	return Exec(ctx, stdin, name, args, exec.CommandContext(ctx, name, args...))
}

// Exec runs cmd, which carries out the command name args (possibly through
// a wrapper such as unshare), with stdin and a fixed environment (standard PATH, C locale), and reports a
// failure as a *CommandError naming name and args. Runners share it.
func Exec(ctx context.Context, stdin []byte, name string, args []string, cmd *exec.Cmd) ([]byte, error) {
	stdout, _, err := command.Run(ctx, cmd, commandEnv(), stdin, name, args)
	return stdout, err
}
