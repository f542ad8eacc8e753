package command_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/macos/command"
)

// TestExec runs real commands on this host (sh): stdin in, stdout and
// stderr out, exit codes as *Error, and the fixed environment.
func TestExec(t *testing.T) {
	ctx := context.Background()
	out, errb, err := command.Exec{}.Run(ctx, []byte("in"), "sh", "-c", `cat; echo " $LANG" ; echo warn >&2`)
	if err != nil || string(out) != "in C\n" || string(errb) != "warn\n" {
		t.Fatalf("out %q stderr %q err %v", out, errb, err)
	}
	_, _, err = command.Exec{}.Run(ctx, nil, "sh", "-c", "echo oops >&2; exit 56")
	ce, ok := errors.AsType[*command.Error](err)
	if !ok || ce.Code != 56 || ce.Stderr != "oops" || command.ExitCode(err) != 56 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "run sh -c") {
		t.Fatalf("message %q", err)
	}
	if _, _, err := (command.Exec{}).Run(ctx, nil, "/nonexistent/tool"); command.ExitCode(err) != -1 {
		t.Fatalf("missing tool: %v", err)
	}
	if command.ExitCode(nil) != 0 {
		t.Fatal("ExitCode(nil)")
	}
}
