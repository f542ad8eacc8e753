package main

import (
	"context"
	"io"
	"testing"

	"github.com/jitkey/jitkey/internal/cliscript"
)

// TestScripts runs testdata/*.txt (see package cliscript): what a person
// reads when the command line is wrong.
func TestScripts(t *testing.T) {
	s := cliscript.Script{Cmds: map[string]cliscript.Cmd{
		"jitkey-relay": func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int {
			return run(ctx, args, stdout, stderr)
		},
	}}
	s.RunDir(t, "testdata")
}
