//go:build linux

package testbed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// TestRevokeDuringSession (SPEC.md 7, R-47; review finding F1): Nik's
// phone is stolen while he is logged in on CONTOSO-WS1. The MSP admin
// revokes him in the console. The agent applies the new policy and ends
// his session at once: the account is disabled (the password the session
// issued is useless), the reason is audited, and a new login with the
// stolen phone is refused. Sam's session elsewhere is unaffected.
func TestRevokeDuringSession(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	_, acct, err := w.Login(ctx, w.Contoso, w.Nik)
	if err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	samScreen, samAcct, err := w.Login(ctx, w.Fabrikam, w.Sam)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	out, err := w.Console.Must(ctx, "tech", "revoke", harness.TechNik)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "technician "+harness.TechNik+" revoked") {
		t.Fatalf("tech revoke printed %q", out)
	}
	waitDisabled(t, ctx, w.ContosoAcc, acct, start, "the revocation")
	mustEnabled(t, ctx, w.FabrikamAcc, samAcct, true)

	// The stolen phone can no longer log in.
	s := showLoginQR(t, ctx, w.Contoso)
	sc := w.ScanQR(ctx, w.Nik, s, true)
	if sc.OK() || sc.Status == "approved" {
		t.Fatalf("the revoked phone was let in: %s", sc.Result)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)

	if err := samScreen.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustNoneEnabled(t, ctx, w)
	log := mustAudit(t, ctx, w, "session.ended="+acct, "account.disabled="+acct, "login.denied")
	found := false
	for _, r := range log.Records(harness.DeviceContoso) {
		if r.Event == "account.disabled" && r.Account == acct && r.Reason == "access withdrawn: technician certificate revoked" {
			found = true
		}
	}
	if !found {
		t.Errorf("no account.disabled record with the withdrawal's reason:\n%s", log.Summary())
	}
}

// waitDisabled waits up to 20 s from start until the agent has disabled
// account, and logs how long it took after what.
func waitDisabled(t *testing.T, ctx context.Context, acc *harness.Accounts, account string, start time.Time, what string) {
	t.Helper()
	for {
		on, err := harness.IsEnabled(ctx, acc, account)
		if err != nil {
			t.Fatal(err)
		}
		if !on {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s still enabled %v after %s", account, time.Since(start), what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("agent disabled %s %v after %s", account, time.Since(start).Round(time.Millisecond), what)
}
