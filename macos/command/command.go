// Package command runs the macOS administration tools (dscl, dseditgroup,
// pwpolicy, sysadminctl, security, launchctl, pkill) for the macos
// packages, behind the Runner interface: on a Mac, Exec runs them; in tests
// on Linux, a fake that follows the tools' documented behaviour
// (package mactest) answers instead.
//
// Secrets never travel in arguments (which any local user sees in the
// process list): callers pass them on stdin, in the tools' interactive
// modes (dscl, security -i), and Runner implementations must not log
// stdin.
package command

import (
	"context"
	"os/exec"

	"github.com/jitkey/jitkey/internal/command"
)

// Runner runs one command to completion. stdin may be nil. On a non-zero
// exit or a failure to start it returns a *Error; stdout and stderr are
// returned in both cases (sysadminctl and security report on stderr, even
// when they succeed).
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error)
}

// Error reports a command that failed: its name and arguments (never
// secrets: those travel on stdin), exit code and standard error.
type Error = command.Error

// ExitCode returns the exit code of an *Error in err's chain, -1 if the
// command did not exit normally, or 0 if err is nil.
func ExitCode(err error) int { return command.ExitCode(err) }

// Env is the fixed environment every command runs with: the system PATH
// and the C locale, so that output parses the same everywhere. Nothing of
// the caller's environment is passed on.
func Env() []string {
	return []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C", "LANG=C"}
}

// Exec runs commands on the host (on a Mac, the real tools).
type Exec struct{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	return command.Run(ctx, exec.CommandContext(ctx, name, args...), Env(), stdin, name, args)
}
