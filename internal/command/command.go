// Package command runs one external program to completion for the account
// backends (shadow-utils on Linux, dscl and friends on macOS) and reports a
// failure as an *Error that names the program, its arguments, its exit code
// and its standard error.
//
// Secrets never travel in arguments, which any local user sees in the
// process list: callers pass them on stdin, and nothing here logs stdin or
// puts it in an error.
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
	// Err is the underlying error (an *exec.ExitError, exec.ErrNotFound,
	// a context error, ...).
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
// command did not exit normally or err holds no *Error, and 0 if err is nil.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if ce, ok := errors.AsType[*Error](err); ok {
		return ce.Code
	}
	return -1
}

// Run runs cmd, which carries out the command name args (possibly through a
// wrapper such as unshare), with stdin (nil for none) and exactly the
// environment env, and waits for it. A non-zero exit, a failure to start or
// the end of ctx is reported as an *Error naming name and args; stdout and
// stderr are returned in every case (some tools report on stderr when they
// succeed).
func Run(ctx context.Context, cmd *exec.Cmd, env []string, stdin []byte, name string, args []string) (stdout, stderr []byte, err error) {
	var out, errOut bytes.Buffer
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err == nil {
		return out.Bytes(), errOut.Bytes(), nil
	}
	code := -1
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out.Bytes(), errOut.Bytes(), &Error{
		Name:   name,
		Args:   args,
		Code:   code,
		Stderr: strings.TrimSpace(errOut.String()),
		Err:    err,
	}
}
