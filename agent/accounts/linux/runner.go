//go:build linux

package linux

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
// exit or a failure to start, it returns a *CommandError. Implementations
// must not log stdin, which may hold a password.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) (stdout []byte, err error)
}

// CommandError reports a command that failed: its name and arguments (never
// secrets: those travel on stdin), exit code and standard error.
type CommandError struct {
	// Name and Args are the command as the caller asked for it.
	Name string
	Args []string
	// Code is the exit code, or -1 if the command did not exit normally
	// (not found, killed, context done).
	Code int
	// Stderr is the command's standard error, trimmed.
	Stderr string
	// Err is the underlying error (an *exec.ExitError, exec.ErrNotFound,
	// a context error, ...).
	Err error
}

// Error implements error.
func (e *CommandError) Error() string {
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
func (e *CommandError) Unwrap() error { return e.Err }

// exitCode returns the exit code of a *CommandError in err's chain, or -1.
func exitCode(err error) int {
	if ce, ok := errors.AsType[*CommandError](err); ok {
		return ce.Code
	}
	return -1
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
	var stdout, stderr bytes.Buffer
	cmd.Env = commandEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	code := -1
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.Bytes(), &CommandError{
		Name:   name,
		Args:   args,
		Code:   code,
		Stderr: strings.TrimSpace(stderr.String()),
		Err:    err,
	}
}
