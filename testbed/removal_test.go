//go:build linux

package testbed

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

var surfaceRemoved = regexp.MustCompile(`^denied: this computer was removed from jitkey by the MSP`)

// TestDeviceRemoval (SPEC.md 11.10, R-46): CONTOSO-WS1 is stolen. While
// Nik is logged in on it and its login screen shows a QR code, the MSP
// admin removes it in the console. The agent applies the removal policy:
// Nik's account is disabled, the login screen says the computer was
// removed, a new login screen is refused, also after the agent restarts.
// The phones sync: the computer is no longer listed and the QR code it
// showed is refused with a clear message, without contacting it. No audit
// record is lost: the lockdown's records reach the console, marked as
// received from a removed device. FABRIKAM-SRV1 is unaffected.
func TestDeviceRemoval(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	s1, acct, err := w.Login(ctx, w.Contoso, w.Nik)
	if err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	s2 := showLoginQR(t, ctx, w.Contoso)
	// Keep the code the thief's screen shows (the surface stops showing it).
	shown := &harness.Surface{QRPNG: filepath.Join(t.TempDir(), "shown.png")}
	png, err := os.ReadFile(s2.QRPNG)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shown.QRPNG, png, 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	out, err := w.Console.Must(ctx, "devices", "remove", harness.DeviceContoso)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "device "+harness.DeviceContoso+" removed from tenant "+harness.TenantContoso) {
		t.Fatalf("devices remove printed %q", out)
	}

	// The agent locks itself down.
	waitDisabled(t, ctx, w.ContosoAcc, acct, start, "the removal")
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := s2.WaitFor(wctx, 0, surfaceRemoved); err != nil {
		t.Fatalf("the pending login screen does not say the computer was removed: %v", err)
	}
	mustNoneEnabled(t, ctx, w)

	// The phones learn it at their next sync.
	for _, p := range []*harness.Phone{w.Nik, w.Sam} {
		var u struct{ Removed []string }
		if err := p.Run(ctx, "--json", "sync").JSON(&u); err != nil {
			t.Fatal(err)
		}
		if len(u.Removed) != 1 || u.Removed[0] != harness.DeviceContoso {
			t.Errorf("phone %s sync reports removed %v", p.Name, u.Removed)
		}
		var d struct{ Devices []struct{ Name string } }
		if err := p.Run(ctx, "--json", "devices").JSON(&d); err != nil {
			t.Fatal(err)
		}
		if len(d.Devices) != 1 || d.Devices[0].Name != harness.DeviceFabrikam {
			t.Errorf("phone %s lists %+v", p.Name, d.Devices)
		}
		sc := w.ScanQR(ctx, p, shown, true)
		if sc.OK() || sc.Kind != "device-removed" || sc.Code != 3 ||
			!strings.Contains(sc.Error, harness.DeviceContoso+" (tenant "+harness.TenantContoso+"); this phone no longer logs in to it") {
			t.Errorf("phone %s scanning the removed computer's code: %s", p.Name, sc.Result)
		}
	}
	t.Logf("phones synced and refused the code %v after the removal", time.Since(start).Round(time.Millisecond))

	// A new login screen is refused at once, also after a restart.
	refused := func(when string) {
		t.Helper()
		s, err := w.Contoso.StartSurface("logon", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := s.WaitFor(wctx, 0, surfaceRemoved); err != nil {
			t.Fatalf("%s: the login screen is not refused: %v", when, err)
		}
		if err := s.Wait(wctx); err == nil {
			t.Errorf("%s: the refused login screen exited 0", when)
		}
	}
	refused("after the removal")
	_ = s1.Stop(5 * time.Second) // Nik's screen: its session is over
	mark := w.Contoso.Proc.Mark()
	if err := w.Contoso.Proc.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := w.Contoso.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Contoso.Proc.WaitFor(ctx, mark, regexp.MustCompile(`removed from jitkey by the MSP`)); err != nil {
		t.Errorf("the restarted agent does not say it was removed: %v", err)
	}
	refused("after a restart")
	mustNoneEnabled(t, ctx, w)

	// No audit record lost; the lockdown's records arrived, marked.
	log := mustAudit(t, ctx, w, "device.removed", "session.ended="+acct, "account.disabled="+acct)
	for _, r := range log.Records(harness.DeviceContoso) {
		if r.Event == "device.removed" && !r.FromRemoved {
			t.Errorf("device.removed (#%d) not marked as received from a removed device", r.Seq)
		}
		if r.Event == "account.disabled" && r.Account == acct && r.Reason == "device removed by the MSP" && !r.FromRemoved {
			t.Errorf("account.disabled (#%d) not marked", r.Seq)
		}
	}
	t.Logf("lockdown records at the console %v after the removal", time.Since(start).Round(time.Millisecond))

	// The console lists it only with --all.
	if out, err := w.Console.Must(ctx, "devices"); err != nil || strings.Contains(out, harness.DeviceContoso) {
		t.Errorf("devices lists the removed computer (%v):\n%s", err, out)
	}
	if out, err := w.Console.Must(ctx, "devices", "--all"); err != nil || !regexp.MustCompile(harness.DeviceContoso+` .* removed `).MatchString(out) {
		t.Errorf("devices --all (%v):\n%s", err, out)
	}

	// The other computer is unaffected.
	loginAgain(t, ctx, w, w.Fabrikam, w.Nik)
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w)
}
