package push_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/protocol"
)

// coEnv is a push environment whose policy needs a second approver
// (SPEC.md 11.14): nik asks; cara, an admin of the tenant, is in the
// roster. edit changes the policy further.
func coEnv(t *testing.T, edit func(e *env, p *protocol.Policy)) (*env, *agenttest.Phone) {
	var cara *agenttest.Phone
	var ee *env
	e := newEnv(t, func(p *protocol.Policy) {
		p.SecondApprovers = []string{protocol.ShareAllAdmins}
	})
	ee = e
	cara = e.msp.NewPhone(t, "cara", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	p := e.msp.Policy(2)
	p.PushLogin = true
	p.SecondApprovers = []string{protocol.ShareAllAdmins}
	p.Roster = []protocol.RosterEntry{e.ann.RosterEntry(protocol.RoleAdmin), e.bob.RosterEntry(protocol.RoleReadOnly),
		cara.RosterEntry(protocol.RoleAdmin), e.nik.RosterEntry(protocol.RoleAdmin)}
	p.Revoked = []uint64{e.ann.Cert.Serial}
	p.Shares = []protocol.DeviceShare{{DeviceID: e.agent.Device.DeviceID, Entries: []string{protocol.ShareAllAdmins}}}
	if edit != nil {
		edit(ee, &p)
	}
	e.applyPolicy(t, p)
	return e, cara
}

// pickOwn answers nik's push with the number on the screen.
func pickOwn(numbers <-chan uint8) func(protocol.PushRequest) agenttest.PushReply {
	return func(protocol.PushRequest) agenttest.PushReply { return agenttest.PushReply{Pick: uint16(<-numbers)} }
}

// coLogin runs nik's push login with the second approver answering
// reply (nil: the approver's phone is not on the network). It returns
// the login's error and the phones' ends.
func (e *env) coLogin(t *testing.T, s *push.Server, approver *agenttest.Phone, reply func(protocol.PushRequest) agenttest.PushReply) (agenttest.PushDone, *agenttest.PushDone, error) {
	t.Helper()
	numbers := make(chan uint8, 1)
	nikDone := e.serve(t, e.nik, pickOwn(numbers))
	var coDone <-chan agenttest.PushDone
	if reply != nil {
		coDone = e.serve(t, approver, reply)
	}
	r, n := begin(t, s, "nik")
	numbers <- n
	_, err := result(t, r)
	d := <-nikDone
	if coDone == nil {
		return d, nil, err
	}
	select {
	case c := <-coDone:
		return d, &c, err
	case <-time.After(10 * time.Second):
		t.Fatal("the second approver's phone was not asked")
	}
	return d, nil, err
}

// refusedNothingEnabled checks a login refused for its second approval:
// audited login.denied with a reason containing want, no login.approved,
// the account not enabled.
func (e *env) refusedNothingEnabled(t *testing.T, want string) {
	t.Helper()
	recs := e.agent.Records(t)
	rec := e.lastRecord(t, audit.LoginDenied)
	if !strings.Contains(rec.Reason, want) || rec.Username != "nik" {
		t.Fatalf("login.denied %+v, want reason containing %q", rec, want)
	}
	for _, r := range recs {
		if r.Event == audit.LoginApproved || r.Event == "account.enabled" {
			t.Fatalf("audit %v after a refused second approval", agenttest.Events(recs))
		}
	}
	if acc, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil && acc.Enabled {
		t.Fatal("account enabled without a valid second approval")
	}
}

func approve(protocol.PushRequest) agenttest.PushReply { return agenttest.PushReply{} }

// phoneSays checks the LoginResult of nik's phone after a refused second
// approval: the code and exactly the fixed text want, while the audit
// keeps the full reason (it names the cause, here the error in cause).
func (e *env) phoneSays(t *testing.T, nik agenttest.PushDone, code uint8, want string, cause error) {
	t.Helper()
	if nik.Result.OK || nik.Result.Code != code || nik.Result.Text != want {
		t.Fatalf("nik's phone got %+v, want code %d %q", nik.Result, code, want)
	}
	if reason := e.lastRecord(t, audit.LoginDenied).Reason; !strings.Contains(reason, cause.Error()) {
		t.Fatalf("audited reason %q does not name %v", reason, cause)
	}
}

// TestCoApprovalApproved: nik approves his push, cara gives the second
// approval: the account is enabled and login.approved names both.
func TestCoApprovalApproved(t *testing.T) {
	e, cara := coEnv(t, nil)
	nik, co, err := e.coLogin(t, e.srv, cara, approve)
	if err != nil {
		t.Fatal(err)
	}
	if !nik.Result.OK || co.Err != nil || !co.Result.OK || co.CoRequest == nil {
		t.Fatalf("phones: nik %+v, cara %+v", nik, co)
	}
	q := co.CoRequest
	if q.Account != "msp-nik" || q.Action != protocol.ActionLogon || q.Method != protocol.MethodPush {
		t.Fatalf("co-approval request %+v", q)
	}
	var tech protocol.TechCert
	if err := q.TechCert.VerifyEd25519(protocol.DocTechCert, e.msp.Pub, &tech); err != nil || tech.Username != "nik" {
		t.Fatalf("technician in the request: %+v %v", tech, err)
	}
	rec := e.lastRecord(t, audit.LoginApproved)
	if rec.Username != "nik" || rec.Detail != "second approver cara ("+cara.Cert.TechID+")" {
		t.Fatalf("login.approved %+v", rec)
	}
	if acc, err := e.backend.Lookup(t.Context(), "msp-nik"); err != nil || !acc.Enabled {
		t.Fatalf("account %+v %v", acc, err)
	}
}

// TestCoApprovalOneApproverOnly: the policy names only nik himself as
// second approver: nobody can be asked, the login is refused.
func TestCoApprovalOneApproverOnly(t *testing.T) {
	e, _ := coEnv(t, func(_ *env, p *protocol.Policy) { p.SecondApprovers = []string{"nik"} })
	nik, _, err := e.coLogin(t, e.srv, nil, nil)
	if !errors.Is(err, push.ErrCoRefused) || nik.Result.OK || nik.Result.Code != protocol.CodeRefused {
		t.Fatalf("err %v, phone %+v", err, nik)
	}
	e.refusedNothingEnabled(t, push.ErrNoCoApprover.Error())
	e.phoneSays(t, nik, protocol.CodeRefused, "second approval refused", push.ErrNoCoApprover)
}

// TestCoApprovalSamePerson: a second certificate issued for nik's
// approval key under another name (nik2) is nik: refused.
func TestCoApprovalSamePerson(t *testing.T) {
	var nik2 *agenttest.Phone
	e, _ := coEnv(t, func(e *env, p *protocol.Policy) {
		nik2 = e.msp.NewPhone(t, "nik2", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
		nik2.Approval, nik2.Cert.ApprovalKey = e.nik.Approval, e.nik.Cert.ApprovalKey
		e.msp.Resign(t, nik2)
		p.SecondApprovers = []string{"nik2"}
		p.Roster = append(p.Roster, nik2.RosterEntry(protocol.RoleAdmin))
	})
	nik, co, err := e.coLogin(t, e.srv, nik2, approve)
	if !errors.Is(err, push.ErrCoRefused) || nik.Result.OK || co.Result.OK {
		t.Fatalf("err %v, phones %+v %+v", err, nik, co)
	}
	e.refusedNothingEnabled(t, protocol.ErrSelfApproval.Error())
}

// TestCoApprovalNotPermitted: the roster says cara is an admin, but her
// certificate grants read-only; the list names all-admins: her answer is
// refused.
func TestCoApprovalNotPermitted(t *testing.T) {
	var cara *agenttest.Phone
	e, _ := coEnv(t, func(e *env, p *protocol.Policy) {
		cara = e.msp.NewPhone(t, "cara", protocol.Grant{Tenant: "acme", Role: protocol.RoleReadOnly})
		for i := range p.Roster {
			if p.Roster[i].Username == "cara" {
				p.Roster[i] = cara.RosterEntry(protocol.RoleAdmin) // stale roster
			}
		}
	})
	_, co, err := e.coLogin(t, e.srv, cara, approve)
	if !errors.Is(err, push.ErrCoRefused) || co.Result.OK {
		t.Fatalf("err %v, approver %+v", err, co)
	}
	e.refusedNothingEnabled(t, protocol.ErrNotCoApprover.Error())
}

// TestCoApprovalApproverExpired: cara's certificate expired a
// minute ago; she is refused at her hello, before the request reaches her
// phone, and nothing is enabled (VerifyCoApproval would refuse her answer
// too).
func TestCoApprovalApproverExpired(t *testing.T) {
	var cara *agenttest.Phone
	e, _ := coEnv(t, func(e *env, p *protocol.Policy) {
		cara = e.msp.NewPhone(t, "cara", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
		cara.Cert.NotAfter = time.Now().Add(-time.Minute).Unix()
		e.msp.Resign(t, cara)
		for i := range p.Roster {
			if p.Roster[i].Username == "cara" {
				p.Roster[i] = cara.RosterEntry(protocol.RoleAdmin)
			}
		}
	})
	nik, co, err := e.coLogin(t, e.srv, cara, approve)
	if !errors.Is(err, push.ErrCoRefused) || nik.Result.OK || co.Result.OK || co.Result.Code != protocol.CodeRefused {
		t.Fatalf("err %v, phones %+v %+v", err, nik, co)
	}
	// Refused at its hello: the expired approver never saw who asks for
	// which account, nor the reason and ticket.
	if co.CoRequest != nil {
		t.Fatalf("an expired approver was sent the request: %+v", co.CoRequest)
	}
	e.refusedNothingEnabled(t, protocol.ErrExpired.Error())
	e.phoneSays(t, nik, protocol.CodeRefused, "second approval refused", protocol.ErrExpired)
}

// TestCoApprovalWrongBinding: a second approval for another account,
// device, approval or technician is refused.
func TestCoApprovalWrongBinding(t *testing.T) {
	for name, tamper := range map[string]func(c *protocol.CoApproval){
		"account":    func(c *protocol.CoApproval) { c.Account = "msp-cara" },
		"device":     func(c *protocol.CoApproval) { c.DeviceID[0] ^= 1 },
		"first":      func(c *protocol.CoApproval) { c.First[0] ^= 1 },
		"technician": func(c *protocol.CoApproval) { c.TechID = "tech-bob" },
		"action":     func(c *protocol.CoApproval) { c.Action = protocol.ActionSudo },
	} {
		t.Run(name, func(t *testing.T) {
			e, cara := coEnv(t, nil)
			nik, co, err := e.coLogin(t, e.srv, cara, func(protocol.PushRequest) agenttest.PushReply {
				return agenttest.PushReply{CoTamper: tamper}
			})
			if !errors.Is(err, push.ErrCoRefused) || co.Result.OK || co.Result.Code != protocol.CodeRefused {
				t.Fatalf("err %v, approver %+v", err, co)
			}
			e.refusedNothingEnabled(t, protocol.ErrApprovalMismatch.Error())
			e.phoneSays(t, nik, protocol.CodeRefused, "second approval refused", protocol.ErrApprovalMismatch)
		})
	}
}

// TestCoApprovalReplay: cara's second approval of one login, sent again
// for the next login, is refused.
func TestCoApprovalReplay(t *testing.T) {
	e, cara := coEnv(t, nil)
	_, first, err := e.coLogin(t, e.srv, cara, approve)
	if err != nil || !first.Result.OK {
		t.Fatalf("first login: %v %+v", err, first)
	}
	old := first.CoSigned
	_, co, err := e.coLogin(t, e.srv, cara, func(protocol.PushRequest) agenttest.PushReply {
		return agenttest.PushReply{CoReplay: &old}
	})
	if !errors.Is(err, push.ErrCoRefused) || co.Result.OK {
		t.Fatalf("replayed: err %v, approver %+v", err, co)
	}
	rec := e.lastRecord(t, audit.LoginDenied)
	if !strings.Contains(rec.Reason, protocol.ErrApprovalMismatch.Error()) {
		t.Fatalf("login.denied %+v", rec)
	}
}

// TestCoApprovalDenied: cara denies: refused, nothing enabled.
func TestCoApprovalDenied(t *testing.T) {
	e, cara := coEnv(t, nil)
	nik, co, err := e.coLogin(t, e.srv, cara, func(protocol.PushRequest) agenttest.PushReply { return agenttest.PushReply{Deny: true} })
	if !errors.Is(err, push.ErrCoDenied) || nik.Result.Code != protocol.CodeDenied || co.Result.OK {
		t.Fatalf("err %v, phones %+v %+v", err, nik, co)
	}
	e.refusedNothingEnabled(t, "denied by the second approver cara")
	e.phoneSays(t, nik, protocol.CodeDenied, "denied by the second approver", push.ErrCoDenied)
}

// TestCoApprovalTimeout: cara's phone is not reached before the
// second approval times out: refused, nothing enabled.
func TestCoApprovalTimeout(t *testing.T) {
	e, cara := coEnv(t, nil)
	cfg := e.cfg
	cfg.CoTimeout = 300 * time.Millisecond
	nik, _, err := e.coLogin(t, push.New(cfg), cara, nil)
	if !errors.Is(err, push.ErrCoRefused) || nik.Result.OK {
		t.Fatalf("err %v, phone %+v", err, nik)
	}
	e.refusedNothingEnabled(t, push.ErrCoNoAnswer.Error())
	e.phoneSays(t, nik, protocol.CodeRefused, "second approval timed out", push.ErrCoNoAnswer)
}

// TestCoApprovalPolicyChanged: a policy applied while cara
// decided that no longer names her refuses the login at the approval's
// use.
func TestCoApprovalPolicyChanged(t *testing.T) {
	e, cara := coEnv(t, nil)
	nik, co, err := e.coLogin(t, e.srv, cara, func(protocol.PushRequest) agenttest.PushReply {
		p := e.msp.Policy(3)
		p.PushLogin = true
		p.SecondApprovers = []string{"bob"}
		p.Roster = []protocol.RosterEntry{e.bob.RosterEntry(protocol.RoleReadOnly), cara.RosterEntry(protocol.RoleAdmin), e.nik.RosterEntry(protocol.RoleAdmin)}
		e.applyPolicy(t, p)
		return agenttest.PushReply{}
	})
	if err == nil || co.Result.OK {
		t.Fatalf("err %v, approver %+v", err, co)
	}
	e.refusedNothingEnabled(t, "second approval at approval")
	e.phoneSays(t, nik, protocol.CodeRefused, "second approval refused", push.ErrCoRequired)
}
