// Package cliflag parses the command lines of jitkey's binaries, whose
// flags may come before or after the positional arguments
// ("jitkey-phone scan PAYLOAD --approve"), and words their errors as one
// sentence for a person ("unknown flag --bogus").
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"time"
)

// Error is a command line that does not parse. Its text is one sentence
// naming the flag and what is wrong; Unwrap returns the flag package's
// error.
type Error struct {
	Msg string
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the flag package's error.
func (e *Error) Unwrap() error { return e.Err }

// Parse parses args with fs, taking flags wherever they stand, and returns
// the positional arguments in order. Everything after a "--" is
// positional, even if it starts with "-" (a flag value of "--", as in
// "--name --", counts as that terminator too).
//
// Parse prints nothing (it discards fs's output): an error is an *Error,
// except flag.ErrHelp for -h or --help, which the caller answers with its
// usage.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, Explain(fs, err)
		}
		rest := fs.Args()
		// fs.Parse stops at the first positional argument or just after
		// a "--", which it consumes: everything after that is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// The flag package's error texts (flag.go), from which Explain recovers
// the flag's name and value.
var (
	reUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	reNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	reBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-+([^:]*): (.*)$`)
	reBadSyntax = regexp.MustCompile(`^bad flag syntax: (.*)$`)
)

// Explain turns an error of fs.Parse into an *Error whose text is one
// sentence; flag.ErrHelp and nil are returned as they are.
func Explain(fs *flag.FlagSet, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	msg := err.Error()
	if m := reUndefined.FindStringSubmatch(msg); m != nil {
		return &Error{Msg: fmt.Sprintf("unknown flag --%s", m[1]), Err: err}
	}
	if m := reNoValue.FindStringSubmatch(msg); m != nil {
		return &Error{Msg: fmt.Sprintf("flag --%s needs a value", m[1]), Err: err}
	}
	if m := reBadValue.FindStringSubmatch(msg); m != nil {
		value, name, why := m[1], m[2], m[3]
		if want := expected(fs.Lookup(name)); want != "" {
			why = "want " + want
		}
		return &Error{Msg: fmt.Sprintf("--%s %s: %s", name, value, why), Err: err}
	}
	if m := reBadSyntax.FindStringSubmatch(msg); m != nil {
		return &Error{Msg: fmt.Sprintf("bad flag %q", m[1]), Err: err}
	}
	return &Error{Msg: msg, Err: err}
}

// expected describes the values a flag of a built-in type takes, or ""
// for a flag.Value whose own error says it.
func expected(f *flag.Flag) string {
	if f == nil {
		return ""
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 30s, 5m or 1h30m"
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	}
	return ""
}
