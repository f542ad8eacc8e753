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
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
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
type Error struct {
	// Name and Args are the command as the caller asked for it.
	Name string
	Args []string
	// Code is the exit code, or -1 if the command did not exit normally
	// (not found, killed, context done).
	Code int
	// Stderr is the command's standard error, trimmed.
	Stderr string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("run ")
	b.WriteString(e.Name)
	for _, a := range e.Args {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit code of an *Error in err's chain, -1 if the
// command did not exit normally, or 0 if err is nil.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if ce, ok := errors.AsType[*Error](err); ok {
		return ce.Code
	}
	return -1
}

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
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Env = Env()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), stderr.Bytes(), nil
	}
	code := -1
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.Bytes(), stderr.Bytes(), &Error{Name: name, Args: args, Code: code,
		Stderr: strings.TrimSpace(stderr.String()), Err: err}
}
