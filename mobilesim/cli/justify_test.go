package cli_test

import (
	"testing"

	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/protocol"
)

// TestJustificationPrompt (SPEC.md 6.3, 6.4): when the tenant's policy
// (the phone's copy) requires a reason and a ticket matching a pattern,
// an approval answered at the prompt asks for each one no flag gave, and
// signs what was typed; an empty reason or a ticket outside the pattern
// approves nothing. A denial asks for nothing, and an approval by flag
// (--approve) never prompts: the agent decides on what was given.
func TestJustificationPrompt(t *testing.T) {
	w := newWorld(t)
	for _, args := range [][]string{
		{"init", "--relay", "relay-a:4433", "--relay-pin", pin},
		pairQR(acmeOf, "nik", nik, 0)(w),
	} {
		if r := w.run("", args...); r.code != 0 {
			t.Fatal(r)
		}
	}
	p := w.acme.Policy("acme")
	p.Version, p.RequireReason, p.TicketPattern = 2, true, "INC-[0-9]+"
	w.acme.SetPolicy(p)
	w.w11.Configure(w.acme.Policy("acme"), nil)
	if r := w.run("", "sync"); r.code != 0 {
		t.Fatalf("sync: %+v", r)
	}
	approval := func(reason, ticket string) func(t *testing.T, w *world, r result) {
		return func(t *testing.T, w *world, r result) {
			ev := event(t, w.w11)
			if ev.Approval == nil || ev.Approval.Decision != protocol.DecisionApprove || ev.Approval.Reason != reason || ev.Approval.Ticket != ticket {
				t.Errorf("agent saw %+v, want an approval with reason %q, ticket %q", ev, reason, ticket)
			}
		}
	}
	nothingSigned := func(t *testing.T, w *world, r result) {
		if ev := event(t, w.w11); ev.Approval != nil {
			t.Errorf("agent got an approval: %+v", ev.Approval)
		}
	}
	w.script([]step{
		{name: "asks both", stdin: "y\n printer queue stuck \nINC-4711\n", args: scanOf(w11, 0),
			out:   `(?s)approve\? \[y/N\] reason \(required by the policy of acme\): ticket \(pattern INC-\[0-9\]\+\): approved: msp-nik`,
			check: approval("printer queue stuck", "INC-4711")},
		{name: "reason by flag, asks the ticket", stdin: "y\nINC-7\n", args: scanOf(w11, 0, "--reason", "disk full"),
			out:   `(?s)approve\? \[y/N\] ticket \(pattern INC-\[0-9\]\+\): approved`,
			check: approval("disk full", "INC-7")},
		{name: "empty reason", stdin: "y\n\n", args: scanOf(w11, 0), code: cli.ExitRefused,
			err: `^jitkey-phone: the policy of tenant acme requires a reason; nothing was approved \(give one at the prompt or with --reason\)\n$`, check: nothingSigned},
		{name: "ticket outside the pattern", stdin: "y\nwhy\nINC-12x\n", args: scanOf(w11, 0), code: cli.ExitRefused,
			err: `ticket "INC-12x" does not match the pattern INC-\[0-9\]\+ of tenant acme; nothing was approved`, check: nothingSigned},
		{name: "end of input", stdin: "y\n", args: scanOf(w11, 0), code: cli.ExitRefused, err: `requires a reason`, check: nothingSigned},
		{name: "deny asks nothing", stdin: "n\n", args: scanOf(w11, 0), out: `^Log in to W11-L-PASSWORD \(tenant acme\) as msp-nik — action: logon\napprove\? \[y/N\] denied\n$`,
			check: func(t *testing.T, w *world, r result) {
				if ev := event(t, w.w11); ev.Approval == nil || ev.Approval.Decision != protocol.DecisionDeny {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "approve by flag never prompts", stdin: "printer\nINC-1\n", args: scanOf(w11, 0, "--approve"),
			out: `^Log in to W11-L-PASSWORD \(tenant acme\) as msp-nik — action: logon\napproved`, check: approval("", "")},
	})
}
