//go:build linux

package pam_test

import (
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// stack is the PAM service the pamtester tests use: jitkey decides for
// the users it manages and nothing else lets them in; pam_unix's account
// check sees the agent's enabling and disabling.
const stack = `auth     [success=done ignore=ignore default=die] MODULE socket=SOCKET timeout=60
auth     required pam_deny.so
account  required MODULE socket=SOCKET
account  required pam_unix.so
session  required MODULE socket=SOCKET
`

// TestPAMApprove: pamtester as msp-nik shows the QR code and the prompt
// before anything is approved; the phone approves; authentication and
// account management succeed and the account is enabled. A second login
// with open and close session ends with the account disabled again.
func TestPAMApprove(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	w.service(t, "jitkey-test", stack)

	s := w.pamtester(t, "jitkey-test", "msp-nik", "authenticate", "acct_mgmt", "open_session")
	payload := s.expect(t, qrPayload)[1]
	s.expect(t, "Press Enter after approving on your phone")
	if res := scan(t, p, mux, payload, agenttest.Scan{}); !res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	s.send(t, "\n")
	if err := s.wait(t); err != nil {
		t.Fatalf("pamtester: %v", err)
	}
	out := s.output()
	for _, want := range []string{"successfully authenticated", "account management done", "successfully opened a session"} {
		if !strings.Contains(out, want) {
			t.Fatalf("pamtester output lacks %q", want)
		}
	}
	if !w.enabled(t, "msp-nik") {
		t.Fatal("msp-nik not enabled after the approved login")
	}

	s = w.pamtester(t, "jitkey-test", "msp-nik", "authenticate", "acct_mgmt", "open_session", "close_session")
	payload = s.expect(t, qrPayload)[1]
	if res := scan(t, p, mux, payload, agenttest.Scan{}); !res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	s.send(t, "\n")
	if err := s.wait(t); err != nil {
		t.Fatalf("pamtester: %v", err)
	}
	if !strings.Contains(s.output(), "session has successfully been closed") {
		t.Fatal("session not closed")
	}
	if w.enabled(t, "msp-nik") {
		t.Fatal("msp-nik still enabled after close_session")
	}
}

// login starts pamtester for user, waits for the QR and has the phone
// decide with s; it returns pamtester, the scan's result, and after Enter
// the pamtester error.
func (w *world) login(t *testing.T, service, user string, p *agenttest.Phone, mux *channel.Mux, s agenttest.Scan, ops ...string) (*proc, protocol.LoginResult, error) {
	t.Helper()
	pt := w.pamtester(t, service, user, ops...)
	payload := pt.expect(t, qrPayload)[1]
	pt.expect(t, "Press Enter after approving on your phone")
	res := scan(t, p, mux, payload, s)
	pt.send(t, "\n")
	return pt, res, pt.wait(t)
}

// TestPAMDeny: the technician denies on the phone; the login fails and
// says so; the account is not enabled.
func TestPAMDeny(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	w.service(t, "jitkey-test", stack)
	deny := agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 { return protocol.DecisionDeny }}
	pt, res, err := w.login(t, "jitkey-test", "msp-nik", p, mux, deny, "authenticate")
	if res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	if err == nil {
		t.Fatal("pamtester succeeded after a denial")
	}
	if out := pt.output(); !strings.Contains(out, "jitkey: login refused: denied by the technician") || !strings.Contains(out, "Authentication failure") {
		t.Fatalf("no clear denial in:\n%s", out)
	}
	if _, err := w.backend.Lookup(t.Context(), "msp-nik"); err == nil && w.enabled(t, "msp-nik") {
		t.Fatal("msp-nik enabled after a denial")
	}
}

// TestPAMRevokedTechnician: a technician whose certificate the policy
// revokes is refused at the scan; the login surface keeps waiting (anyone
// who saw the code could scan it, so a refused scan does not end the
// login) and fails at its timeout, saying so.
func TestPAMRevokedTechnician(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	pol := w.msp.Policy(2)
	pol.Revoked = []uint64{p.Cert.Serial}
	w.push(t, pol)
	w.service(t, "jitkey-test", strings.Replace(stack, "timeout=60", "timeout=8", 1))
	pt, res, err := w.login(t, "jitkey-test", "msp-nik", p, mux, agenttest.Scan{}, "authenticate")
	if res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	if err == nil {
		t.Fatal("pamtester succeeded for a revoked technician")
	}
	if out := pt.output(); !strings.Contains(out, "jitkey: not approved in time") {
		t.Fatalf("no clear message in:\n%s", out)
	}
	if _, err := w.backend.Lookup(t.Context(), "msp-nik"); err == nil && w.enabled(t, "msp-nik") {
		t.Fatal("msp-nik enabled for a revoked technician")
	}
}

// TestPAMWrongAccount: at a prompt for msp-nik, ann approves: the agent
// readies msp-ann, which is not the account being logged in to, so the
// module fails the login and ends ann's session at once.
func TestPAMWrongAccount(t *testing.T) {
	w := newWorld(t)
	ann, mux := w.phone(t, "ann")
	w.service(t, "jitkey-test", stack)
	pt, res, err := w.login(t, "jitkey-test", "msp-nik", ann, mux, agenttest.Scan{}, "authenticate")
	if !res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	if err == nil {
		t.Fatal("pamtester logged msp-nik in with ann's approval")
	}
	if out := pt.output(); !strings.Contains(out, "the approval is for msp-ann, not msp-nik") {
		t.Fatalf("no clear message in:\n%s", out)
	}
	if w.enabled(t, "msp-ann") {
		t.Fatal("msp-ann left enabled")
	}
}

// TestPAMAuthtok: with the authtok argument the module hands the
// account's password to the next module as PAM_AUTHTOK, and pam_unix
// (use_first_pass) accepts it against the sandbox's /etc/shadow: the
// credential is the account's real password. Without the argument
// pam_unix gets nothing (the module keeps the password to itself).
func TestPAMAuthtok(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	const chained = `auth     requisite MODULE socket=SOCKET timeout=60 ARGS
auth     required pam_unix.so use_first_pass nodelay
account  required pam_unix.so
`
	w.service(t, "jitkey-authtok", strings.Replace(chained, "ARGS", "authtok", 1))
	if _, res, err := w.login(t, "jitkey-authtok", "msp-nik", p, mux, agenttest.Scan{}, "authenticate", "acct_mgmt"); !res.OK || err != nil {
		t.Fatalf("authtok to pam_unix: %s %v", result(res), err)
	}
	w.service(t, "jitkey-authtok", strings.Replace(chained, "ARGS", "", 1))
	if _, res, err := w.login(t, "jitkey-authtok", "msp-nik", p, mux, agenttest.Scan{}, "authenticate"); !res.OK || err == nil {
		t.Fatalf("without authtok pam_unix got a password: %s %v", result(res), err)
	}
}
