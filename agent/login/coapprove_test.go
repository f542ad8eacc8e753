package login_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/protocol"
)

// TestQRLoginSecondApprover (SPEC.md 11.14): on a device whose own list
// names cara as second approver, nik's QR login waits for cara's phone
// (a FlowPush session from the agent): her approval enables the account
// and login.approved names both; her deny, or nik approving his own
// login as second approver, refuses it with nothing enabled.
func TestQRLoginSecondApprover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		approver string // who the device's list names
		reply    agenttest.PushReply
		ok       bool
		reason   string
		err      error  // the surface's error when refused
		text     string // the phone's fixed LoginResult text when refused
	}{
		{name: "approved", approver: "cara", ok: true},
		{name: "denied", approver: "cara", reply: agenttest.PushReply{Deny: true}, reason: "denied by the second approver cara", err: push.ErrCoDenied,
			text: "denied by the second approver"},
		{name: "only the technician named", approver: "nik", reason: push.ErrNoCoApprover.Error(), err: push.ErrNoCoApprover,
			text: "second approval refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nik, cara *agenttest.Phone
			e := newEnv(t, func(p *protocol.Policy, dev protocol.DeviceID) {
				p.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: dev, Entries: []string{tc.approver}}}
			})
			nik = e.msp.NewPhone(t, "nik", admin("acme"))
			cara = e.msp.NewPhone(t, "cara", admin("acme"))
			p := e.policy
			p.Version = 2
			p.Roster = []protocol.RosterEntry{cara.RosterEntry(protocol.RoleAdmin), nik.RosterEntry(protocol.RoleAdmin)}
			if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &p), time.Now()); err != nil {
				t.Fatal(err)
			}
			coDone := cara.ServePush(t, e.net, e.agent.Keys.NoisePublic(), nil, func(protocol.PushRequest) agenttest.PushReply { return tc.reply })
			req, q := e.begin(t, protocol.ActionLogon, "logon")
			defer req.Cancel(t.Context())
			res, err := nik.Login(t.Context(), e.phoneMux(t, nik), q.Text, agenttest.Scan{
				Tamper: func(a *protocol.Approval) { a.Reason = "disk full on the file server" }})
			if err != nil {
				t.Fatalf("phone: %v", err)
			}
			recs := e.agent.Records(t)
			last := recs[len(recs)-1]
			acc, lookErr := e.backend.Lookup(t.Context(), "msp-nik")
			if !tc.ok {
				if res.OK || last.Event != "login.denied" || !strings.Contains(last.Reason, tc.reason) {
					t.Fatalf("result %+v, last audit %s %q, want a refusal for %q", res, last.Event, last.Reason, tc.reason)
				}
				if lookErr == nil && acc.Enabled {
					t.Fatal("account enabled")
				}
				// The phone gets a fixed line, the audit the full reason.
				if res.Text != tc.text {
					t.Fatalf("phone text %q, want %q (audited: %q)", res.Text, tc.text, last.Reason)
				}
				// The surface learns it was the second approval.
				if _, rerr := req.Result(); !errors.Is(rerr, tc.err) {
					t.Fatalf("surface error %v, want %v", rerr, tc.err)
				}
				return
			}
			if !res.OK || lookErr != nil || !acc.Enabled {
				t.Fatalf("result %+v, account %+v %v", res, acc, lookErr)
			}
			var d agenttest.PushDone
			select {
			case d = <-coDone:
			case <-time.After(10 * time.Second):
				t.Fatal("cara's phone got no result")
			}
			if d.CoRequest == nil || d.CoRequest.Method != protocol.MethodQR || d.CoRequest.Reason != "disk full on the file server" || !d.Result.OK {
				t.Fatalf("cara's phone: %+v", d)
			}
			for _, r := range recs {
				if r.Event == "login.approved" {
					if r.Username != "nik" || r.Detail != "second approver cara ("+cara.Cert.TechID+")" {
						t.Fatalf("login.approved %+v", r)
					}
					return
				}
			}
			t.Fatalf("no login.approved in %v", agenttest.Events(recs))
		})
	}
}
