package cliscript

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	got := Fields("a  'b c' d'' ''")
	if want := []string{"a", "b c", "d", ""}; !slices.Equal(got, want) {
		t.Errorf("Fields = %q, want %q", got, want)
	}
}

// TestScripts runs testdata/*.txt with two commands: echo prints its
// arguments on stdout; exit N TEXT prints TEXT on stderr and exits N.
func TestScripts(t *testing.T) {
	s := Script{
		Cmds: map[string]Cmd{
			"echo": func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int {
				fmt.Fprintln(stdout, strings.Join(args, " "))
				return 0
			},
			"exit": func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int {
				n, _ := strconv.Atoi(args[0])
				fmt.Fprintln(stderr, strings.Join(args[1:], " "))
				return n
			},
		},
		Extra: map[string]func(st *State, args []string) error{
			"set": func(st *State, args []string) error { st.Vars[args[0]] = args[1]; return nil },
		},
	}
	s.RunDir(t, "testdata")
}
