//go:build linux

package testbed

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// TestGovernance (issue 20; SPEC.md 6.3, 6.4, 6.6, 11.13) with the real
// console, relay, agent and phone processes: the MSP requires a reason
// and a ticket matching INC-[0-9]+ and caps sessions at one minute with
// a warning 30 s before. An approval without them is refused and
// audited; one with them logs in and the console shows both. At the cap
// the agent kills a process the account left running, disables the
// account, takes it out of the sudo group, and the console shows the
// signed end receipt stating all of it.
func TestGovernance(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	w := newWorld(t, ctx)
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso,
		"--require-reason", "--ticket-pattern", "INC-[0-9]+", "--max-session", "1m", "--warn-before", "30s"); err != nil {
		t.Fatal(err)
	}
	s := showLoginQR(t, ctx, w.Contoso)
	if sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "printer queue stuck"); sc.OK() || sc.Status == "approved" {
		t.Fatalf("approval without the ticket let in: %s", sc.Result)
	}
	sc := w.ScanQR(ctx, w.Nik, s, true, "--reason", "printer queue stuck", "--ticket", "INC-4711")
	if !sc.OK() {
		t.Fatalf("approval with reason and ticket: %s", sc.Result)
	}
	acct, err := s.WaitLoggedIn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loggedIn := time.Now()
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	info, err := w.ContosoAcc.Lookup(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := strconv.Atoi(info.ID)
	if err != nil || uid == 0 {
		t.Fatalf("%s has uid %q: not a JIT account's", acct, info.ID) // never run the program as root
	}
	left := exec.Command("sleep", "600") // what the technician left running
	left.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = left.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- left.Wait() }()

	select {
	case <-exited:
		took := time.Since(loggedIn)
		if took < 50*time.Second {
			t.Fatalf("the process ended %v after the login, before the cap", took)
		}
		ws, _ := left.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("process ended by %v, want SIGKILL at the cap", left.ProcessState)
		}
		t.Logf("process killed %v after the login (cap 1m)", took.Round(time.Millisecond))
	case <-time.After(90 * time.Second):
		t.Fatal("the process outlived the cap by 30 s")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)
	if info, err := w.ContosoAcc.Lookup(ctx, acct); err != nil || info.Admin {
		t.Fatalf("after the cap: %+v %v, want out of the administrators group", info, err)
	}

	log := mustAudit(t, ctx, w, "login.denied", "login.approved="+acct, "session.warned="+acct, "session.expired="+acct, "account.disabled="+acct)
	var denied, justified, receipt bool
	for _, r := range log.Records(harness.DeviceContoso) {
		switch {
		case r.Event == "login.denied" && strings.Contains(r.Reason, "lacks the reason or ticket"):
			denied = true
		case r.Event == "login.approved" && strings.Contains(r.Text, `ticket INC-4711, reason "printer queue stuck"`):
			justified = true
		case r.Event == "account.disabled" && r.Account == acct &&
			strings.Contains(r.Text, "end receipt: disabled, password rotated, processes ended, administrator rights removed"):
			receipt = true
		}
	}
	if !denied || !justified || !receipt {
		t.Fatalf("denied %v, justified %v, receipt %v:\n%s", denied, justified, receipt, log.Summary())
	}
	if a := log.Alarms(); len(a) != 0 {
		t.Fatalf("alarms: %+v", a)
	}
}
