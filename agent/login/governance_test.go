package login_test

import (
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/protocol"
)

// TestReasonAndTicket (SPEC.md 6.3, 6.4, R-61): under a policy that
// requires a reason and a ticket matching its pattern, the agent refuses
// an approval without them, audits the refusal and enables nothing; an
// approval with both logs in and its audit record carries them.
func TestReasonAndTicket(t *testing.T) {
	governed := func(p *protocol.Policy, _ protocol.DeviceID) {
		p.RequireReason, p.TicketPattern = true, `INC-[0-9]{1,6}`
	}
	justify := func(reason, ticket string) agenttest.Scan {
		return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.Reason, a.Ticket = reason, ticket }}
	}
	for _, tc := range []struct {
		name         string
		policy       func(p *protocol.Policy, _ protocol.DeviceID)
		scan         agenttest.Scan
		ok           bool
		reason, tick string // expected in the login.approved record
	}{
		{name: "reason and ticket", policy: governed, scan: justify("printer queue stuck", "INC-4711"), ok: true,
			reason: "printer queue stuck", tick: "INC-4711"},
		{name: "reason missing", policy: governed, scan: justify("", "INC-4711")},
		{name: "reason blank", policy: governed, scan: justify("  ", "INC-4711")},
		{name: "ticket missing", policy: governed, scan: justify("printer queue stuck", "")},
		{name: "ticket not matching", policy: governed, scan: justify("printer queue stuck", "INC-4711; rm")},
		{name: "reason control characters", scan: justify("ok\x1b[2J", "")},
		{name: "not required, given anyway", scan: justify("routine check", "CHG-9"), ok: true,
			reason: "routine check", tick: "CHG-9"},
		{name: "not required, none", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.policy)
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			req, q := e.begin(t, protocol.ActionLogon, "logon")
			defer req.Cancel(t.Context())
			res, err := p.Login(t.Context(), e.phoneMux(t, p), q.Text, tc.scan)
			if err != nil {
				t.Fatalf("phone: %v", err)
			}
			recs := e.agent.Records(t)
			if tc.ok {
				if !res.OK {
					t.Fatalf("result %+v, want a login", res)
				}
				var approved *protocol.AuditRecord
				for i := range recs {
					if recs[i].Event == "login.approved" {
						approved = &recs[i]
					}
				}
				if approved == nil || approved.Justification != tc.reason || approved.Ticket != tc.tick {
					t.Fatalf("login.approved record %+v, want reason %q ticket %q", approved, tc.reason, tc.tick)
				}
				return
			}
			if res.OK || res.Code != protocol.CodeRefused {
				t.Fatalf("result %+v, want a refusal", res)
			}
			last := recs[len(recs)-1]
			if last.Event != "login.denied" || !strings.Contains(last.Reason, protocol.ErrJustification.Error()) {
				t.Fatalf("last audit %s %q, want login.denied for the justification", last.Event, last.Reason)
			}
			for _, r := range recs {
				if r.Event == "login.approved" || r.Event == "account.enabled" {
					t.Fatalf("audit %v after a refusal", agenttest.Events(recs))
				}
			}
			for _, n := range e.backend.Names() {
				if i, _ := e.backend.Lookup(t.Context(), n); i.Enabled {
					t.Fatalf("%s enabled after a refusal", n)
				}
			}
		})
	}
}
