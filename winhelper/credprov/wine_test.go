//go:build linux

package credprov_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWine runs the Wine end-to-end test (make wine-test,
// harness/wine-test.sh and harness/winetest) on the DLL and agent built
// here: under Wine 8 the Windows agent serves its named pipe offline (no
// UDP for QUIC there), harness.exe loads the DLL as LogonUI would, types
// each technician's offline code from the phone (Nik at logon, Sam at
// unlock), and GetSerialization must return a KERB_INTERACTIVE_UNLOCK_LOGON
// of the scenario's type for the tenant's shared account; with the agent stopped, the tile must say so. make deps
// installs wine64.
func TestWine(t *testing.T) {
	const wine = "/usr/lib/wine/wine64"
	if _, err := os.Stat(wine); err != nil {
		t.Fatalf("%s missing (make deps installs wine64): %v", wine, err)
	}
	bin := t.TempDir()
	for _, f := range []string{buildDLL(t), buildAgent(t)} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, filepath.Base(f)), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "./harness/wine-test.sh", bin).CombinedOutput()
	t.Logf("wine-test.sh: %v", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("wine-test.sh: %v\n%s", err, out)
	}
	for _, want := range []string{
		"\nwinetest: PASS",
		"KERB_INTERACTIVE_UNLOCK_LOGON: MessageType 2, user msp-", // logon
		"KERB_INTERACTIVE_UNLOCK_LOGON: MessageType 7, user msp-", // unlock
		"PASS: logon: GetSerialization returned a KERB_INTERACTIVE_UNLOCK_LOGON",
		"PASS: unlock: GetSerialization returned a KERB_INTERACTIVE_UNLOCK_LOGON",
		"The jitkey agent is not running: use another sign-in option",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("wine-test.sh output lacks %q:\n%s", want, out)
		}
	}
}
