package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/ipcserver"
)

// TestWriteQR: the QR files are written 0600, replace what was there, and
// a symlink planted at the old predictable temporary name is not followed.
func TestWriteQR(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	png, txt := filepath.Join(dir, "qr.png"), filepath.Join(dir, "qr.txt")
	for _, p := range []string{png, txt} {
		if err := os.Symlink(victim, filepath.Join(dir, "."+filepath.Base(p)+".tmp")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(victim, txt); err != nil { // a symlink at the target itself is replaced
		t.Fatal(err)
	}
	for _, text := range []string{"JK:first", "JK:second"} {
		q := &ipcserver.QR{Text: text, PNG: []byte("png " + text)}
		if err := writeQR(png, txt, q); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]string{png: "png " + text, txt: text + "\n"} {
			st, err := os.Lstat(p)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v %v, want a regular 0600 file", p, st.Mode(), err)
			}
			if b, _ := os.ReadFile(p); string(b) != want {
				t.Fatalf("%s holds %q, want %q", p, b, want)
			}
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me\n" {
		t.Fatalf("symlink followed: victim holds %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".tmp") && e.Type()&os.ModeSymlink == 0 {
			t.Fatalf("temporary file %s left behind", n)
		}
	}
}
