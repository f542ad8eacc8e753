package pipe_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWine cross-compiles this package's tests for Windows and runs them
// under Wine 8 (make deps installs wine64 and mingw-w64): the real
// CreateNamedPipe with DefaultSDDL, ImpersonateNamedPipeClient, the token
// user and groups, and CreateFile with ClientAccess, classified by
// Classify (pipe_windows_test.go). Wine does not enforce a pipe's DACL,
// so the descriptor itself is checked by TestSDDL, not here.
func TestWine(t *testing.T) {
	const wine = "/usr/lib/wine/wine64"
	if _, err := os.Stat(wine); err != nil {
		t.Fatalf("%s missing (make deps installs wine64): %v", wine, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	exe := filepath.Join(dir, "pipe.test.exe")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	prefix := filepath.Join(dir, "prefix")
	env := append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
	// Go's runtime needs bcryptprimitives.dll's ProcessPrng, which Wine 8
	// lacks: the test shim of the credential provider's Wine harness.
	boot := exec.CommandContext(ctx, wine, "wineboot", "--init")
	boot.Env = env
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot: %v\n%s", err, out)
	}
	shim := exec.CommandContext(ctx, "x86_64-w64-mingw32-gcc", "-O2", "-shared", "-o",
		filepath.Join(prefix, "drive_c/windows/system32/bcryptprimitives.dll"),
		"../credprov/harness/bcryptprimitives.c", "../credprov/harness/bcryptprimitives.def", "-ladvapi32")
	if out, err := shim.CombinedOutput(); err != nil {
		t.Fatalf("bcryptprimitives shim: %v\n%s", err, out)
	}
	run := exec.CommandContext(ctx, wine, exe, "-test.v", "-test.count=1", "-test.run", "^(TestUserPeerOverPipe|TestSystemOnlyRefusesUser)$")
	run.Env = env
	out, err := run.CombinedOutput()
	t.Logf("under Wine:\n%s", out)
	if err != nil {
		t.Fatalf("pipe.test.exe: %v", err)
	}
	for _, want := range []string{"--- PASS: TestUserPeerOverPipe/default", "--- PASS: TestUserPeerOverPipe/listed", "--- PASS: TestSystemOnlyRefusesUser", "\nPASS"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
