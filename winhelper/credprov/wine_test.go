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

	"github.com/jitkey/jitkey/winhelper/internal/wine"
)

// TestWine runs the Wine end-to-end test (make wine-test,
// harness/wine-test.sh and harness/winetest) on the DLL and agent built
// here: the relay client's winsock UDP socket (relay/client/winudp, which
// the agent takes under Wine 8, where net.ListenUDP fails) passes its
// tests under Wine; the Windows agent under Wine is online over the real
// relay; harness.exe loads the DLL as LogonUI would; the tile's QR
// picture, scanned by Nik's phone and approved, and a push to Sam's
// phone answered with the tile's number each make GetSerialization
// return a KERB_INTERACTIVE_UNLOCK_LOGON for the technician's named
// account (msp-nik, msp-sam); in CPUS_CREDUI (as UAC) Nik's approval of
// the tile's QR makes the DLL finish the CredUI step (where Wine stubs
// CredPackAuthenticationBufferW, with E_FAIL and no buffer); with the relay stopped, the offline codes
// of each technician's phone (Nik at logon, Sam at unlock) make it
// return one of the scenario's type for the shared account; with the
// agent stopped, the tile must say so. make deps installs wine64.
func TestWine(t *testing.T) {
	wine.Find(t)
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
	if strings.Contains(string(out), "BLOCKED") {
		t.Errorf("wine-test.sh reports a path it could not run:\n%s", out)
	}
	for _, want := range []string{
		"\nwinetest: PASS",
		"--- PASS: TestQUIC",   // winudp under Wine
		"--- PASS: TestListen", // the relay client's socket under Wine
		`msg="connected to home relay"`,
		"KERB_INTERACTIVE_UNLOCK_LOGON: MessageType 2, user msp-nik\n", // QR
		"KERB_INTERACTIVE_UNLOCK_LOGON: MessageType 2, user msp-sam\n", // push
		"PASS: qr login: GetSerialization returned a KERB_INTERACTIVE_UNLOCK_LOGON",
		"PASS: push login: GetSerialization returned a KERB_INTERACTIVE_UNLOCK_LOGON",
		"SetUsageScenario(credui) = S_OK", // CredUI with the agent online
		"PASS: credui: ",
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
