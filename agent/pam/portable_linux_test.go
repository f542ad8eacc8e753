package pam

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestOpenPAMBranchCompiles compiles the module's macOS (OpenPAM) branch on
// Linux, with openpam_check.h declaring the few macOS functions glibc
// lacks: the branch a Mac builds (macos/plugin/Makefile) cannot rot here
// unseen. It checks that the code compiles, not that it runs on a Mac.
func TestOpenPAMBranchCompiles(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	cmd := exec.Command("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-fsyntax-only",
		"-DJK_OPENPAM_CHECK", "-include", filepath.Join(dir, "c", "openpam_check.h"),
		"-I", filepath.Join(dir, "..", "..", "internal", "ipcc"), filepath.Join(dir, "c", "pam_jitkey.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the OpenPAM branch does not compile: %v\n%s", err, out)
	}
}
