// Package cliscript runs command-line test scripts (testdata/*.txt) against
// a binary's Run function in-process, checking exit codes and the exact
// text a person reads, as age's cmd/age/testdata scripts do.
//
// A script is lines, then files:
//
//	# a comment
//	NAME ARGS...        run command NAME; it must exit 0
//	! NAME ARGS...      it must exit 1
//	!N NAME ARGS...     it must exit N (2: usage error, ...)
//	cmp stdout FILE     the last command's stdout is exactly FILE's text
//	cmp stderr FILE     ... its stderr
//	stdout RE / stderr RE      the output matches the regular expression
//	! stdout RE / ! stderr RE  ... does not match
//	EXTRA ARGS...       a command the test adds (Script.Extra)
//	-- FILE --          the lines up to the next such header are FILE
//
// Files are written to the work directory ($WORK) before the script runs.
// $WORK in arguments and in compared text is the work directory, and
// $NAME is State.Vars[NAME] (set by extra commands).
// Arguments split on spaces; 'single quotes' group.
package cliscript

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cmd runs one command line (without the program name) and returns its
// exit code.
type Cmd func(ctx context.Context, work string, args []string, stdout, stderr io.Writer) int

// Script configures the runner.
type Script struct {
	// Cmds are the commands scripts run, by name.
	Cmds map[string]Cmd
	// Extra are further script commands (setup steps); an error fails
	// the script.
	Extra map[string]func(st *State, args []string) error
	// Timeout bounds one command; default 30 s. A command still running
	// then fails the script, whatever it prints: a script checks errors
	// that come at once, not after a wait.
	Timeout time.Duration
}

// State is a running script's, for extra commands.
type State struct {
	T              *testing.T
	Work           string            // the work directory
	Vars           map[string]string // $NAME substitutions
	Stdout, Stderr string            // the last command's output
}

// subst replaces $WORK and $NAME of st.Vars in s.
func (st *State) subst(s string) string {
	s = strings.ReplaceAll(s, "$WORK", st.Work)
	for k, v := range st.Vars {
		s = strings.ReplaceAll(s, "$"+k, v)
	}
	return s
}

// RunDir runs every testdata/*.txt script as a subtest.
func (s *Script) RunDir(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { s.Run(t, f) })
	}
}

// parse splits a script into its lines and its files.
func parse(b []byte) (lines []string, files map[string]string) {
	files = make(map[string]string)
	head := regexp.MustCompile(`^-- (\S+) --$`)
	var cur string
	var buf strings.Builder
	in := false
	flush := func() {
		if in {
			files[cur] = buf.String()
		}
		buf.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if m := head.FindStringSubmatch(l); m != nil {
			flush()
			cur, in = m[1], true
			continue
		}
		if in {
			buf.WriteString(l + "\n")
		} else {
			lines = append(lines, l)
		}
	}
	flush()
	return lines, files
}

// Run runs one script.
func (s *Script) Run(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	st := &State{T: t, Work: work, Vars: make(map[string]string)}
	lines, files := parse(b)
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var stdout, stderr bytes.Buffer
	for n, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = st.subst(line)
		f := Fields(line)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s\n%s\nstdout:\n%s\nstderr:\n%s", path, n+1, line, fmt.Sprintf(format, args...), stdout.String(), stderr.String())
		}
		neg, want := false, 0
		if strings.HasPrefix(f[0], "!") && len(f) > 1 {
			neg, want = true, 1
			if f[0] != "!" {
				if want, err = strconv.Atoi(f[0][1:]); err != nil {
					fail("bad exit code %q", f[0])
				}
			}
			f = f[1:]
		}
		switch f[0] {
		case "cmp":
			if len(f) != 3 || (f[1] != "stdout" && f[1] != "stderr") {
				fail("usage: cmp stdout|stderr FILE")
			}
			exp, ok := files[f[2]]
			if !ok {
				fail("no file %q in the script", f[2])
			}
			exp = st.subst(exp)
			got := stdout.String()
			if f[1] == "stderr" {
				got = stderr.String()
			}
			if got != exp {
				fail("%s differs from %s:\ngot:\n%s\nwant:\n%s", f[1], f[2], got, exp)
			}
		case "stdout", "stderr":
			out := stdout.String()
			if f[0] == "stderr" {
				out = stderr.String()
			}
			re, err := regexp.Compile(strings.Join(f[1:], " "))
			if err != nil {
				fail("bad regexp: %v", err)
			}
			if re.MatchString(out) == neg {
				fail("%s match of %q is %v", f[0], re, !neg)
			}
		default:
			if cmd, ok := s.Cmds[f[0]]; ok {
				stdout.Reset()
				stderr.Reset()
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				code := cmd(ctx, work, f[1:], &stdout, &stderr)
				expired := ctx.Err() != nil
				cancel()
				st.Stdout, st.Stderr = stdout.String(), stderr.String()
				if expired {
					// Whatever it printed, it waited for something that
					// was never coming (scripts test errors that come at once).
					fail("the command ran into the script's deadline (%s)", timeout)
				}
				if code != want {
					fail("exit code %d, want %d", code, want)
				}
				continue
			}
			if x, ok := s.Extra[f[0]]; ok && !neg {
				if err := x(st, f[1:]); err != nil {
					fail("%v", err)
				}
				continue
			}
			fail("unknown script command %q", f[0])
		}
	}
}

// Fields splits a script line on spaces; 'single quotes' group.
func Fields(line string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			inQ, have = !inQ, true
		case r == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
