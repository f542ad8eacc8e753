// Package wine finds and runs Wine for the tests that run jitkey's
// Windows pieces under Wine 8 on Linux (make deps installs wine64 and
// mingw-w64).
package wine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Path is the wine64 loader as Debian's wine64 package installs it.
const Path = "/usr/lib/wine/wine64"

// Find returns Path, failing t if it is missing: make deps installs it,
// and a test that needs Wine must not pass without it.
func Find(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("%s missing (make deps installs wine64): %v", Path, err)
	}
	return Path
}

// RunTests cross-compiles the tests of the package in the working
// directory (the one go test runs) for Windows and runs those matching
// run under Wine, in a new Wine prefix in a temporary directory of t, and
// returns their verbose output. It fails t if they cannot be built or
// run, or fail.
func RunTests(ctx context.Context, t testing.TB, run string) string {
	t.Helper()
	wine64 := Find(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "windows.test.exe")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	harness := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "winhelper/credprov/harness")
	prefix := filepath.Join(dir, "prefix")
	env := append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
	// Go's runtime needs bcryptprimitives.dll's ProcessPrng, which Wine 8
	// lacks: the test shim of the credential provider's Wine harness.
	boot := exec.CommandContext(ctx, wine64, "wineboot", "--init")
	boot.Env = env
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot: %v\n%s", err, out)
	}
	shim := exec.CommandContext(ctx, "x86_64-w64-mingw32-gcc", "-O2", "-shared", "-o",
		filepath.Join(prefix, "drive_c/windows/system32/bcryptprimitives.dll"),
		filepath.Join(harness, "bcryptprimitives.c"), filepath.Join(harness, "bcryptprimitives.def"), "-ladvapi32")
	if out, err := shim.CombinedOutput(); err != nil {
		t.Fatalf("bcryptprimitives shim: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, wine64, exe, "-test.v", "-test.count=1", "-test.run", run)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("under Wine:\n%s", out)
	if err != nil {
		t.Fatalf("%s under Wine: %v", filepath.Base(exe), err)
	}
	return string(out)
}
