//go:build linux

package testbed

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// The login screen's waiting text (IPC Status SecondApproval, SPEC.md
// 5.7.7): the surface simulator's and pam_jitkey's; and the agent's log
// line written once the Status is on the surface's connection.
var (
	surfaceWaiting = regexp.MustCompile(`^Approved\. Waiting for a second approver…$`)
	pamWaiting     = regexp.MustCompile(`jitkey: Approved\. Waiting for a second approver\.\.\.`)
	agentToldWait  = regexp.MustCompile(`login surface told it waits for a second approver`)
)

// TestSecondApprover (issue 20; SPEC.md 11.14) with the real console,
// relay, agent, PAM surface and two phones: the MSP makes Contoso's
// logins need a second approval by Sam. Sam's phone (listen --deny)
// denies Nik's QR login: the surface said it waited for a second
// approver, then refused; nothing enabled, audited. Then Nik logs in
// through the real pam_jitkey (pamtester): after his approval the PAM
// conversation says "Approved. Waiting for a second approver..." (no
// QR code after it), and only then does Sam's phone start listening
// (listen --approve) and approve: Nik's session opens, and the
// console's audit names both technicians.
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
	// The surface said it waited, then got the denial.
	if _, err := s.WaitFor(ctx, 0, regexp.MustCompile(`^denied: `)); err != nil {
		t.Fatal(err)
	}
	lines := s.Lines()
	wait := slices.IndexFunc(lines, surfaceWaiting.MatchString)
	refusal := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "denied: ") })
	if wait < 0 || wait > refusal {
		t.Fatalf("surface: waiting text at line %d, denial at %d:\n%s", wait, refusal, s.Output())
	}
	// Nothing was enabled: the account does not exist yet, or is disabled.
	if on, err := harness.IsEnabled(ctx, w.ContosoAcc, harness.NamedAccountNik); on {
		t.Fatalf("%s enabled after Sam's deny (%v)", harness.NamedAccountNik, err)
	}

	// Through the real PAM module; Sam's phone is not listening yet (the
	// agent keeps trying to reach it, 11.14 step 3).
	pl, err := w.Contoso.StartPAMLogin(ctx, harness.NamedAccountNik)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := pl.WaitQR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agentMark := w.Contoso.Proc.Mark()
	scanned := make(chan harness.Scan, 1)
	go func() { scanned <- w.ScanPayload(ctx, w.Nik, payload, true, "--reason", "reboot the file server") }()
	// Once the agent has put the Status on the module's connection, Enter
	// makes the module read it (it reads while the user waits after
	// Enter, never during the prompt).
	if _, err := w.Contoso.Proc.WaitFor(ctx, agentMark, agentToldWait); err != nil {
		t.Fatal(err)
	}
	if err := pl.Enter(); err != nil {
		t.Fatal(err)
	}
	if _, err := pl.WaitFor(ctx, 0, pamWaiting); err != nil {
		t.Fatalf("no waiting text on the PAM conversation: %v\n%s", err, pl.Output())
	}
	// Only now does Sam's phone listen and approve.
	l = answer("--approve")
	if sc := <-scanned; !sc.OK() {
		t.Fatalf("login with the second approval: %s", sc.Result)
	}
	acct, err := pl.WaitSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if st, err := harness.SecondResult(ctx, l); err != nil || st != "approved" {
		t.Fatalf("Sam's phone: %q %v", st, err)
	}
	// One QR code and one prompt, both before the waiting text (the
	// prompt has no newline, so pamtester's output puts it on a later
	// line): the module asked nothing and showed no code after it.
	if out := pl.Output(); strings.Count(out, "Code: JK:") != 1 || strings.Count(out, "Press Enter") != 1 {
		t.Fatalf("QR code or prompt shown again after the waiting text:\n%s", out)
	}
	if err := pl.Logout(ctx); err != nil {
		t.Fatal(err)
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
