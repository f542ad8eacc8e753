//go:build linux

package testbed

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

var (
	phoneListeningRe = regexp.MustCompile(`"event":"listening"`)
	coResultRe       = regexp.MustCompile(`^(\{.*"event":"co-approval-result".*)$`)
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
		l, err := w.Sam.Start("second"+flag, "--json", "listen", "--once", flag)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.WaitFor(ctx, 0, phoneListeningRe); err != nil {
			t.Fatal(err)
		}
		return l
	}

	l := answer("--deny")
	s := showLoginQR(t, ctx, w.Contoso)
	if sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "reboot the file server"); sc.OK() || sc.Status == "approved" {
		t.Fatalf("login without the second approval let in: %s", sc.Result)
	}
	if m, err := l.WaitFor(ctx, 0, coResultRe); err != nil || !strings.Contains(m[1], `"status":"denied"`) {
		t.Fatalf("Sam's phone: %v %v", m, err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, harness.NamedAccountNik, false)

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
	if m, err := l.WaitFor(ctx, 0, coResultRe); err != nil || !strings.Contains(m[1], `"status":"approved"`) {
		t.Fatalf("Sam's phone: %v %v", m, err)
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
