//go:build linux

package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// bin is the directory with the binaries under test (see harness.Binaries).
var bin string

func TestMain(m *testing.M) {
	scratch, err := os.MkdirTemp("", "jitkey-testbed-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bin, err = harness.Binaries(ctx, scratch, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "testbed: "+f+"\n", a...) })
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(scratch)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// newBed returns a Bed in a fresh directory; on failure the test log gets
// the tail of the combined process log. JITKEY_TESTBED_KEEP=1 keeps the
// directory and prints its path.
func newBed(t *testing.T) *harness.Bed {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("JITKEY_TESTBED_KEEP") != "" {
		d, err := os.MkdirTemp("", "jitkey-testbed-"+t.Name()+"-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
		t.Logf("testbed directory kept: %s", dir)
	}
	b, err := harness.New(harness.Config{Dir: dir, Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", filepath.Base(b.LogPath()), b.Tail(150))
		}
	})
	return b
}

// newWorld builds the standard World (see harness.World).
func newWorld(t *testing.T, ctx context.Context) *harness.World {
	t.Helper()
	w := harness.NewWorld(newBed(t))
	start := time.Now()
	if err := w.Setup(ctx); err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Logf("world set up in %v", time.Since(start).Round(time.Millisecond))
	return w
}

// showLoginQR starts a logon screen on agent a (held for up to an hour)
// and waits until it shows its first QR code.
func showLoginQR(t *testing.T, ctx context.Context, a *harness.Agent) *harness.Surface {
	t.Helper()
	s, err := a.StartSurface("logon", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitQR(ctx, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
