//go:build linux

package testbed

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

var (
	recoveryCode = regexp.MustCompile(`\b([0-9A-Z]{4}(?:-[0-9A-Z]{4}){6})\b`)
	recoveryGen  = regexp.MustCompile(`generation (\d+) \(escrowed`)
)

// showRecovery runs `jitkey-console breakglass show DEVICE` until the
// device's code of generation gen has been escrowed, and returns it.
func showRecovery(t *testing.T, ctx context.Context, w *harness.World, device, gen string, within time.Duration) (string, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, err := w.Console.Must(ctx, "breakglass", "show", device, "--as", "testbed-admin")
		if err == nil {
			if g := recoveryGen.FindStringSubmatch(out); g != nil && g[1] == gen {
				c := recoveryCode.FindStringSubmatch(out)
				if c == nil {
					t.Fatalf("no code in:\n%s", out)
				}
				return c[1], out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery code of generation %s for %s: %v\n%s", gen, device, err, out)
		}
		time.Sleep(time.Second)
	}
}

// TestBreakGlass (SPEC.md 11.15): CONTOSO-WS1's agent escrows its
// recovery code; the console's administrator reveals it (recorded). The
// computer is then cut off (console, relay and phones out of reach): the
// code typed at the real PAM module's offline prompt, with the username
// breakglass, logs into msp-breakglass; the same code again is refused.
// Back on the network, the console raises breakglass-used and receives
// the next code, which differs.
func TestBreakGlass(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	ns, err := harness.NewNetns(ctx, "jk-testbed-agent", 8)
	t.Cleanup(func() { ns.Close() })
	if err != nil {
		t.Fatal(err)
	}
	w := harness.NewWorld(newBed(t))
	w.RelayListen = ns.HostAddr + ":0"
	w.ContosoNetns = ns
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	code, shown := showRecovery(t, ctx, w, harness.DeviceContoso, "1", 60*time.Second)
	if !strings.Contains(shown, "by testbed-admin") {
		t.Fatalf("the reveal is not listed:\n%s", shown)
	}

	if err := ns.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Contoso.WaitOffline(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := w.Contoso.StartPAMLogin(ctx, "msp-breakglass")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Typed as dictated: lower case.
	if err := l.EnterCode(wctx, "breakglass", strings.ToLower(code)); err != nil {
		t.Fatal(err)
	}
	acct, err := l.WaitSession(wctx)
	if err != nil {
		t.Fatalf("break-glass login: %v", err)
	}
	if acct != "msp-breakglass" {
		t.Fatalf("session for %s", acct)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if err := l.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)

	again, err := w.Contoso.StartPAMLogin(ctx, "msp-breakglass")
	if err != nil {
		t.Fatal(err)
	}
	if err := again.EnterCode(wctx, "breakglass", code); err != nil {
		t.Fatal(err)
	}
	why, err := again.Failure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(why, "wrong or used recovery code") {
		t.Fatalf("second use: %q", why)
	}
	mustNoneEnabled(t, ctx, w)

	// Back on the network: the alarm, then the next code.
	if err := ns.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	log := mustAuditWithin(t, ctx, w, 60*time.Second, "breakglass.used=msp-breakglass")
	alarm := false
	for _, r := range log {
		if r.Type == "alarm" && r.Kind == "breakglass-used" && r.Device == harness.DeviceContoso {
			alarm = true
		}
	}
	if !alarm {
		t.Fatalf("no breakglass-used alarm:\n%s", log.Summary())
	}
	next, _ := showRecovery(t, ctx, w, harness.DeviceContoso, "2", 60*time.Second)
	if next == code {
		t.Fatal("the next code is the used one")
	}
}
