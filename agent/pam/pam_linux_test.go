//go:build linux

package pam_test

import (
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
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
		t.Fatalf("phone: %+v", res)
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
		t.Fatalf("phone: %+v", res)
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
