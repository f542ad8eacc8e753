package cliflag

import (
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
