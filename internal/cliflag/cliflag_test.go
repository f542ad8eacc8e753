package cliflag

import (
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		pos     []string
		approve bool
		name    string
	}{
		{args: nil, pos: nil},
		{args: []string{"a", "b"}, pos: []string{"a", "b"}},
		{args: []string{"--approve", "a"}, pos: []string{"a"}, approve: true},
		{args: []string{"a", "--approve", "b", "--name", "x"}, pos: []string{"a", "b"}, approve: true, name: "x"},
		{args: []string{"a", "--", "--approve", "-x"}, pos: []string{"a", "--approve", "-x"}},
		{args: []string{"--", "-a"}, pos: []string{"-a"}},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		approve := fs.Bool("approve", false, "")
		name := fs.String("name", "", "")
		pos, err := Parse(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.pos) || *approve != tt.approve || *name != tt.name {
			t.Errorf("Parse(%q) = %q, approve %v, name %q, %v; want %q, %v, %q", tt.args, pos, *approve, *name, err, tt.pos, tt.approve, tt.name)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Parse(fs, []string{"a", "--nope"}); err == nil {
		t.Error("an unknown flag after a positional argument was accepted")
	}
}

// errValue is a flag.Value whose Set fails with its own sentence.
type errValue struct{}

func (errValue) String() string     { return "" }
func (errValue) Set(s string) error { return errors.New("want 64 hex digits") }

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag --bogus"},
		{[]string{"a", "-bogus=1"}, "unknown flag --bogus"},
		{[]string{"--name"}, "flag --name needs a value"},
		{[]string{"--timeout", "soon"}, `--timeout "soon": want a duration such as 30s, 5m or 1h30m`},
		{[]string{"--approve=maybe"}, `--approve "maybe": want true or false`},
		{[]string{"--uses", "1e3"}, `--uses "1e3": want a whole number`},
		{[]string{"--pin", "zz"}, `--pin "zz": want 64 hex digits`},
		{[]string{"---x"}, `bad flag "---x"`},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Bool("approve", false, "")
		fs.String("name", "", "")
		fs.Duration("timeout", 0, "")
		fs.Int("uses", 1, "")
		fs.Var(errValue{}, "pin", "")
		_, err := Parse(fs, tt.args)
		var e *Error
		if !errors.As(err, &e) || err.Error() != tt.want {
			t.Errorf("Parse(%q): %v, want *Error %q", tt.args, err, tt.want)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	if _, err := Parse(fs, []string{"--help"}); err != flag.ErrHelp {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}
