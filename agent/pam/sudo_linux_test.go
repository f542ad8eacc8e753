//go:build linux

package pam_test

import (
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/protocol"
)

// sudoStack is /etc/pam.d/sudo in the sandbox: jitkey for msp-*
// (surface sudo, from the service name), pam_unix for everyone else.
// sudo opens its session for the target user (root), which jitkey
// ignores: pam_unix gives the session stack its result.
const sudoStack = `auth     [success=done ignore=ignore default=die] MODULE socket=SOCKET timeout=60
auth     required pam_unix.so nodelay
account  required MODULE socket=SOCKET
account  required pam_unix.so
session  optional MODULE socket=SOCKET
session  required pam_unix.so
`

// sudo runs "sudo -S true" as user in the sandbox (its /etc/sudoers
// grants the sudo group everything, as Debian's does; the agent puts
// jitkey accounts in it), with a private /run for sudo's timestamps.
func (w *world) sudo(t *testing.T, user string) *proc {
	t.Helper()
	w.service(t, "sudo", sudoStack)
	return start(t, w.sb.Command(t.Context(), "/bin/sh", "-c",
		`mount -t tmpfs -o mode=755 tmpfs /run && exec setpriv --reuid="$1" --regid="$1" --init-groups -- sudo -S true`, "sh", user))
}

// TestSudo: msp-nik, logged in through jitkey, runs sudo; the QR code
// (action sudo) and the prompt come up; the phone approves the sudo
// request and the command runs as root. A denied request fails with the
// reason.
func TestSudo(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	w.service(t, "jitkey-test", stack)
	// The technician's login session (as a console or ssh login would).
	if _, res, err := w.login(t, "jitkey-test", "msp-nik", p, mux, agenttest.Scan{}, "authenticate", "acct_mgmt", "open_session"); !res.OK || err != nil {
		t.Fatalf("login: %s %v", result(res), err)
	}

	s := w.sudo(t, "msp-nik")
	payload := s.expect(t, qrPayload)[1]
	s.expect(t, "Press Enter after approving on your phone")
	var req protocol.LoginRequest
	if res := scan(t, p, mux, payload, agenttest.Scan{Request: &req}); !res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	if req.Action != protocol.ActionSudo {
		t.Fatalf("the phone was asked for action %d, want sudo (%d)", req.Action, protocol.ActionSudo)
	}
	s.send(t, "\n")
	if err := s.wait(t); err != nil {
		t.Fatalf("sudo: %v\n%s", err, s.output())
	}
	t.Logf("sudo transcript:\n%s", s.output())
	if !w.enabled(t, "msp-nik") {
		t.Fatal("sudo's end ended the technician's session")
	}

	s = w.sudo(t, "msp-nik")
	payload = s.expect(t, qrPayload)[1]
	deny := agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 { return protocol.DecisionDeny }}
	if res := scan(t, p, mux, payload, deny); res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	s.send(t, "\n")
	// sudo asks again after a failure; the technician gives up.
	s.expect(t, "Sorry, try again")
	s.stdin.Close()
	if err := s.wait(t); err == nil {
		t.Fatal("sudo succeeded after a denial")
	}
	if !strings.Contains(s.output(), "jitkey: login refused: denied by the technician") {
		t.Fatalf("sudo output:\n%s", s.output())
	}
}
