package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/qrcode"
)

// TestScripts runs the command-line scripts in testdata/*.txt. Each line is
//
//	jk ARGS...          run a command; it must exit 0
//	! jk ARGS...        it must exit 1 (refused or failed)
//	!2 jk ARGS...       it must exit 2 (usage error)
//	stdout RE / stderr RE       the last command's output matches
//	! stdout RE / ! stderr RE   ... does not match
//	write FILE TEXT     create a file (0600) in the work directory
//	qrpng FILE          FILE holds a PNG whose QR code equals the last qr= line
//
// $WORK is the test's work directory; the state directory defaults to
// $WORK/state. Arguments split on spaces; 'single quotes' group.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

func fields(line string) []string {
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

func runScript(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	var stdout, stderr bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.ReplaceAll(line, "$WORK", work)
		f := fields(line)
		neg := false
		want := 0
		switch f[0] {
		case "!":
			neg, want, f = true, 1, f[1:]
		case "!2":
			neg, want, f = true, 2, f[1:]
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s\n%s\nstdout:\n%s\nstderr:\n%s", path, n, line, strings.TrimSpace(sprintf(format, args...)), stdout.String(), stderr.String())
		}
		switch f[0] {
		case "jk":
			stdout.Reset()
			stderr.Reset()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			code := Run(ctx, f[1:], Env{Stdout: &stdout, Stderr: &stderr, DefaultState: filepath.Join(work, "state"), Now: time.Now, Rand: rand.Reader, ScryptLogN: 10})
			cancel()
			if code != want {
				fail("exit code %d, want %d", code, want)
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
		case "write":
			if err := os.WriteFile(filepath.Join(work, f[1]), []byte(strings.Join(f[2:], " ")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		case "qrpng":
			m := regexp.MustCompile(`(?m)^qr=(.*)$`).FindStringSubmatch(stdout.String())
			if m == nil {
				fail("no qr= line")
			}
			img, err := os.ReadFile(filepath.Join(work, f[1]))
			if err != nil {
				fail("%v", err)
			}
			got, err := qrcode.Decode(img)
			if err != nil || got != m[1] {
				fail("PNG decodes to %q (%v), want %q", got, err, m[1])
			}
		default:
			fail("unknown script command %q", f[0])
		}
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
