package lifecycle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/protocol"
)

// techCert returns a certificate of username with role in the test tenant.
func (e *env) techCert(serial uint64, username, role string) *protocol.TechCert {
	return &protocol.TechCert{
		Serial: serial, TechID: "id-" + username, Username: username,
		Grants:    []protocol.Grant{{Tenant: e.policy.Tenant, Role: role}},
		NotBefore: e.clock.Now().Add(-1e9).Unix(), NotAfter: e.clock.Now().Add(1e15).Unix(),
	}
}

// beginAs begins a session of cert's technician under policy p.
func (e *env) beginAs(t *testing.T, cert *protocol.TechCert, p *protocol.Policy) (lifecycle.Grant, password.Secret) {
	t.Helper()
	r := e.request(cert.Username)
	r.TechID, r.Cert, r.Policy = cert.TechID, cert, p
	g, err := e.mgr.Begin(t.Context(), r)
	if err != nil {
		t.Fatalf("Begin %s: %v", cert.Username, err)
	}
	return g, g.Password.Clone()
}

// ended reports whether the session's account is disabled, its issued
// password no longer logs in, and the session is over.
func (e *env) ended(t *testing.T, g lifecycle.Grant, pw password.Secret) bool {
	t.Helper()
	off := !e.info(t, g.Account).Enabled && e.backend.Login(t.Context(), g.Account, pw) != nil
	if off == e.mgr.Active(g.Session) {
		t.Fatalf("%s: account disabled %v but session active %v", g.Account, off, e.mgr.Active(g.Session))
	}
	return off
}

// withdrawnReasons returns the reasons of the account.disabled records
// that name an access withdrawal.
func (e *env) withdrawnReasons(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, r := range e.agent.Records(t) {
		if r.Event == audit.AccountDisabled && strings.HasPrefix(r.Reason, "access withdrawn: ") {
			out[r.Account] = r.Reason
		}
	}
	return out
}

// TestReauthorize (SPEC.md 4, R-47; review finding F1): a policy that
// revokes a technician, or withdraws their share-list entry, ends their
// live session at once: account disabled, password re-randomised,
// session.ended audited with the reason. Sessions the policy still admits
// go on.
func TestReauthorize(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dev := &e.agent.Device
	nikCert := e.techCert(201, "nik", protocol.RoleAdmin)
	samCert := e.techCert(202, "sam", protocol.RoleReadOnly)
	annCert := e.techCert(203, "ann", protocol.RoleAdmin)
	p1 := e.policy
	p1.Shares = []protocol.DeviceShare{{DeviceID: dev.DeviceID, Entries: []string{protocol.ShareAllAdmins, "sam"}}}
	nik, nikPW := e.beginAs(t, nikCert, &p1)
	sam, samPW := e.beginAs(t, samCert, &p1)
	ann, annPW := e.beginAs(t, annCert, &p1)

	// The same policy admits everyone: nothing ends.
	if n, err := e.mgr.Reauthorize(ctx, &p1, dev); err != nil || n != 0 {
		t.Fatalf("Reauthorize under the granting policy = %d, %v", n, err)
	}
	for _, g := range []lifecycle.Grant{nik, sam, ann} {
		if !e.mgr.Active(g.Session) || !e.info(t, g.Account).Enabled {
			t.Fatalf("%s ended by a policy that admits it", g.Account)
		}
	}

	// Version 2 revokes nik's certificate and drops sam from the share list.
	p2 := p1
	p2.Version = 2
	p2.Revoked = []uint64{nikCert.Serial}
	p2.Shares = []protocol.DeviceShare{{DeviceID: dev.DeviceID, Entries: []string{protocol.ShareAllAdmins}}}
	n, err := e.mgr.Reauthorize(ctx, &p2, dev)
	if err != nil || n != 2 {
		t.Fatalf("Reauthorize = %d, %v; want 2 sessions ended", n, err)
	}
	if !e.ended(t, nik, nikPW) || !e.ended(t, sam, samPW) {
		t.Fatal("a withdrawn technician's account still logs in")
	}
	if e.ended(t, ann, annPW) {
		t.Fatal("ann's session ended though the policy still admits her")
	}
	want := map[string]string{
		"msp-nik": "access withdrawn: technician certificate revoked",
		"msp-sam": "access withdrawn: device not shared with the technician",
	}
	got := e.withdrawnReasons(t)
	for acct, reason := range want {
		if got[acct] != reason {
			t.Errorf("%s: audited reason %q, want %q", acct, got[acct], reason)
		}
	}
	if len(got) != len(want) {
		t.Errorf("withdrawal records %v, want %v", got, want)
	}
}

// TestReauthorizeShared: in shared mode the account is the tenant's, and
// a revoked technician's session on it ends all the same.
func TestReauthorizeShared(t *testing.T) {
	e := newEnv(t)
	dev := &e.agent.Device
	p := e.policy
	p.LoginMode, p.SharedAccount = protocol.ModeShared, "msp-0001"
	bobCert := e.techCert(301, "bob", protocol.RoleAdmin)
	bob, bobPW := e.beginAs(t, bobCert, &p)
	if bob.Account != "msp-0001" {
		t.Fatalf("shared account %s", bob.Account)
	}
	p.Version++
	p.Revoked = []uint64{bobCert.Serial}
	if n, err := e.mgr.Reauthorize(t.Context(), &p, dev); err != nil || n != 1 {
		t.Fatalf("Reauthorize = %d, %v", n, err)
	}
	if !e.ended(t, bob, bobPW) {
		t.Fatal("revoked technician's shared session still enabled")
	}
}

// TestReauthorizeWithoutCert: a session without a recorded certificate
// cannot be decided again and is ended (fail closed).
func TestReauthorizeWithoutCert(t *testing.T) {
	e := newEnv(t)
	g, err := e.mgr.Begin(t.Context(), e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	pw := g.Password.Clone()
	if n, err := e.mgr.Reauthorize(t.Context(), &e.policy, &e.agent.Device); err != nil || n != 1 {
		t.Fatalf("Reauthorize = %d, %v", n, err)
	}
	if !e.ended(t, g, pw) {
		t.Fatal("session without certificate kept")
	}
	if r := e.withdrawnReasons(t)["msp-nik"]; r != "access withdrawn: the session's technician certificate is unknown" {
		t.Fatalf("reason %q", r)
	}
}

// TestEndOfSupersededSession: the technician's login session (S1) is
// superseded by their own sudo inside it (S2); when they log out, the
// surface ends S1, and that ends S2: the account is disabled.
func TestEndOfSupersededSession(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	s1, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	sudo := e.request("nik")
	sudo.Action = protocol.ActionSudo
	s2, err := e.mgr.Begin(ctx, sudo)
	if err != nil {
		t.Fatal(err)
	}
	pw := s2.Password.Clone()
	if err := e.mgr.End(ctx, s1.Session, audit.SessionEnded); err != nil {
		t.Fatalf("End of the login session: %v", err)
	}
	if !e.ended(t, s2, pw) {
		t.Fatal("the account stays enabled after the technician logged out")
	}
	if err := e.mgr.End(ctx, s1.Session, audit.SessionEnded); !errors.Is(err, lifecycle.ErrNoSession) {
		t.Fatalf("second End = %v", err)
	}
}
