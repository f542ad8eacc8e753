//go:build linux

package pam_test

import (
	"os"
	"strings"
	"syscall"
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
	w.sudoSetup(t)
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

// sudoSetup installs the sudo PAM service in the sandbox, and a sudoers
// drop-in that makes sudo ask every time for msp-nik: sudo remembers a
// successful authentication for 15 minutes by default and then asks
// nobody, not even PAM (README.md, "sudo"). sudo 1.9.13 has no pattern
// for user names in Defaults, so the line names the account.
func (w *world) sudoSetup(t *testing.T) {
	t.Helper()
	w.service(t, "sudo", sudoStack)
	if err := os.WriteFile(w.sb.Path("/etc/sudoers.d/jitkey"), []byte("Defaults:msp-nik timestamp_timeout=0\n"), 0o440); err != nil {
		t.Fatal(err)
	}
}

// TestSudoSecondCommand: two sudo commands one after the other from the
// same shell (the same parent, the same /run where sudo keeps its
// timestamps): each needs its own approval on the phone. Without the
// sudoers line timestamp_timeout=0 (sudoSetup), sudo would run the second
// from its 15-minute credential cache without asking PAM.
func TestSudoSecondCommand(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	w.service(t, "jitkey-test", stack)
	if _, res, err := w.login(t, "jitkey-test", "msp-nik", p, mux, agenttest.Scan{}, "authenticate", "acct_mgmt", "open_session"); !res.OK || err != nil {
		t.Fatalf("login: %s %v", result(res), err)
	}
	w.sudoSetup(t)
	cmd := w.sb.Command(t.Context(), "/bin/sh", "-c",
		`mount -t tmpfs -o mode=755 tmpfs /run && exec setpriv --reuid="$1" --regid="$1" --init-groups -- sh -c 'sudo -S id -un && echo first-done && sudo -S id -un && echo second-done'`, "sh", "msp-nik")
	// The shell has sudo as a child: end the whole group (start's cleanup
	// kills the shell only, and a running sudo would keep its output open).
	cmd.SysProcAttr.Setpgid = true
	s := start(t, cmd)
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	payload := s.expect(t, qrPayload)[1]
	if res := scan(t, p, mux, payload, agenttest.Scan{}); !res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	s.send(t, "\n")
	s.expect(t, "root\nfirst-done\n")
	// The second command shows a new code and waits for a new approval.
	second := s.expect(t, `first-done\n(?s:.*)`+qrPayload)
	if second[1] == payload {
		t.Fatal("the second sudo showed the first code again")
	}
	if strings.Contains(s.output(), "second-done") {
		t.Fatal("the second sudo ran without an approval")
	}
	if res := scan(t, p, mux, second[1], agenttest.Scan{}); !res.OK {
		t.Fatalf("phone: %s", result(res))
	}
	s.send(t, "\n")
	if err := s.wait(t); err != nil {
		t.Fatalf("sudo: %v\n%s", err, s.output())
	}
	if !strings.Contains(s.output(), "root\nsecond-done\n") {
		t.Fatalf("sudo output:\n%s", s.output())
	}
	t.Logf("sudo transcript:\n%s", s.output())
}
