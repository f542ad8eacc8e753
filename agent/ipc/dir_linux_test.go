package ipc_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitkey/jitkey/agent/ipc"
)

// TestSocketDirMode: a directory of ours that grants less than 0700 is
// given 0700 (macOS's /var/run/jitkey is made 0700 by the agent's main
// and needs 0711 there); one that grants more is refused as unsafe.
func TestSocketDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	ln, err := ipc.Listen(t.Context(), ipc.Config{Path: filepath.Join(dir, "a.sock")})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v", fi.Mode())
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.Listen(t.Context(), ipc.Config{Path: filepath.Join(open, "a.sock")}); !errors.Is(err, ipc.ErrUnsafeDir) {
		t.Fatalf("0755 directory: %v", err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o755 {
		t.Fatal("an open directory was changed")
	}
}
