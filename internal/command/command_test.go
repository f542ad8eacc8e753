package command

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "ONLY=this"}
	script := `read line; echo "out:$line:$ONLY:${HOME:-nohome}"; echo "  err  " >&2; exit $1`

	t.Run("success", func(t *testing.T) {
		args := []string{"-c", script, "sh", "0"}
		out, errOut, err := Run(ctx, exec.CommandContext(ctx, "sh", args...), env, []byte("secret\n"), "sh", args)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := string(out); got != "out:secret:this:nohome\n" {
			t.Errorf("stdout = %q: stdin or environment not as given", got)
		}
		if string(errOut) != "  err  \n" {
			t.Errorf("stderr = %q", errOut)
		}
		if ExitCode(err) != 0 {
			t.Errorf("ExitCode(nil) = %d, want 0", ExitCode(err))
		}
	})

	t.Run("exit code", func(t *testing.T) {
		args := []string{"-c", script, "sh", "3"}
		_, _, err := Run(ctx, exec.CommandContext(ctx, "sh", args...), env, []byte("pw\n"), "sh", args)
		ce, ok := errors.AsType[*Error](err)
		if !ok {
			t.Fatalf("err = %v, want *Error", err)
		}
		if ce.Code != 3 || ExitCode(err) != 3 || ce.Stderr != "err" || ce.Name != "sh" {
			t.Errorf("Error = %+v", ce)
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("error %q shows stdin", err)
		}
		if !strings.HasPrefix(err.Error(), "run sh -c ") || !strings.HasSuffix(err.Error(), ": err") {
			t.Errorf("Error() = %q", err)
		}
	})

	t.Run("not found", func(t *testing.T) {
		_, _, err := Run(ctx, exec.CommandContext(ctx, "/nonexistent/tool"), env, nil, "tool", nil)
		if ExitCode(err) != -1 || !errors.Is(err, exec.ErrNotFound) && !strings.Contains(err.Error(), "no such file") {
			t.Errorf("err = %v (code %d)", err, ExitCode(err))
		}
	})

	t.Run("context done", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		args := []string{"-c", "exec sleep 10"}
		_, _, err := Run(cctx, exec.CommandContext(cctx, "sh", args...), env, nil, "sh", args)
		if !errors.Is(err, context.DeadlineExceeded) || ExitCode(err) != -1 {
			t.Errorf("err = %v (code %d), want the context's error and -1", err, ExitCode(err))
		}
	})

	if ExitCode(errors.New("other")) != -1 {
		t.Error("ExitCode of a foreign error is not -1")
	}
}
