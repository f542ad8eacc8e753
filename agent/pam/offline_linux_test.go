//go:build linux

package pam_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

// waitOffline waits until the agent tells login surfaces that it is
// offline and takes codes.
func (w *world) waitOffline(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := ipcserver.Dial(ctx, w.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Begin(ctx, "logon", 0); err != nil {
		t.Fatal(err)
	}
	for c.Status() != (ipcserver.Status{Online: false, OTP: true}) {
		if _, err := c.Next(ctx); err != nil {
			t.Fatalf("waiting for the agent to go offline: %v", err)
		}
	}
}

// TestPAMOfflineCode (SPEC.md 11.6): the first online login gives the
// phone its offline key; with the agent cut off the relay, pamtester is
// asked for a username and code, the phone's code logs msp-nik in, and a
// wrong code is refused with the reason.
func TestPAMOfflineCode(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	pol := w.msp.Policy(2)
	pol.Roster = []protocol.RosterEntry{{Serial: p.Cert.Serial, TechID: p.Cert.TechID, Username: "nik", Role: protocol.RoleAdmin}}
	w.push(t, pol)
	w.service(t, "jitkey-test", stack)
	_, res, err := w.login(t, "jitkey-test", "msp-nik", p, mux, agenttest.Scan{}, "authenticate", "acct_mgmt", "open_session", "close_session")
	if err != nil || !res.OK || len(res.OfflineSecret) != otpcode.KeySize {
		t.Fatalf("online login: %s %v", result(res), err)
	}
	w.stopRelay()
	w.waitOffline(t)

	// A wrong code first.
	s := w.pamtester(t, "jitkey-test", "msp-nik", "authenticate")
	s.expect(t, `\(this computer is offline\)`)
	s.expect(t, "or type your jitkey username for an offline code: ")
	s.send(t, "nik\n")
	s.expect(t, "Offline code: ")
	s.send(t, "000000\n")
	if err := s.wait(t); err == nil {
		t.Fatal("a wrong offline code logged in")
	}
	if out := s.output(); !strings.Contains(out, "jitkey: login refused: wrong username or code") {
		t.Fatalf("output:\n%s", out)
	}

	code, err := otpcode.Code(res.OfflineSecret, otpcode.Step(time.Now(), pol.Offline.Period), pol.Offline)
	if err != nil {
		t.Fatal(err)
	}
	if code == "000000" {
		t.Skip("the phone's code happens to be the wrong one tried above")
	}
	s = w.pamtester(t, "jitkey-test", "msp-nik", "authenticate", "acct_mgmt", "open_session")
	s.expect(t, "or type your jitkey username for an offline code: ")
	s.send(t, "nik\n")
	s.expect(t, "Offline code: ")
	s.send(t, code+"\n")
	if err := s.wait(t); err != nil {
		t.Fatalf("offline login: %v\n%s", err, s.output())
	}
	if strings.Contains(s.output(), code) {
		t.Fatal("the code was echoed")
	}
	if !w.enabled(t, "msp-nik") {
		t.Fatal("msp-nik not enabled by the offline code")
	}
}
