//go:build linux

package testbed

import (
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// TestSecondApprover (issue 20; SPEC.md 11.14) with the real console,
// relay, agent, PAM surface and two phones: the MSP makes Contoso's
// logins need a second approval by Sam. Sam's phone (listen --deny)
// denies Nik's QR login: refused, nothing enabled, audited. Then Sam's
// phone (listen --approve) approves the next one: Nik logs in through
// PAM, and the console's audit names both technicians.
func TestSecondApprover(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--second-approvers", harness.TechSam); err != nil {
		t.Fatal(err)
	}
	answer := func(flag string) *harness.Proc {
		l, err := w.ListenSecond(ctx, w.Sam, flag)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	l := answer("--deny")
	s := showLoginQR(t, ctx, w.Contoso)
	if sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "reboot the file server"); sc.OK() || sc.Status == "approved" {
		t.Fatalf("login without the second approval let in: %s", sc.Result)
	}
	if st, err := harness.SecondResult(ctx, l); err != nil || st != "denied" {
		t.Fatalf("Sam's phone: %q %v", st, err)
	}
	// Nothing was enabled: the account does not exist yet, or is disabled.
	if on, err := harness.IsEnabled(ctx, w.ContosoAcc, harness.NamedAccountNik); on {
		t.Fatalf("%s enabled after Sam's deny (%v)", harness.NamedAccountNik, err)
	}

	l = answer("--approve")
	s = showLoginQR(t, ctx, w.Contoso)
	if sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "reboot the file server"); !sc.OK() {
		t.Fatalf("login with the second approval: %s", sc.Result)
	}
	acct, err := s.WaitLoggedIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if st, err := harness.SecondResult(ctx, l); err != nil || st != "approved" {
		t.Fatalf("Sam's phone: %q %v", st, err)
	}

	log := mustAudit(t, ctx, w, "login.denied", "login.approved="+acct)
	var denied, both bool
	for _, r := range log.Records(harness.DeviceContoso) {
		switch {
		case r.Event == "login.denied" && strings.Contains(r.Reason, "second approval: push: denied by the second approver sam"):
			denied = true
		case r.Event == "login.approved" && strings.HasPrefix(r.Text, "nik ") && strings.Contains(r.Text, "second approver sam"):
			both = true
		}
	}
	if !denied || !both {
		t.Fatalf("denied %v, both approvers %v:\n%s", denied, both, log.Summary())
	}
}
