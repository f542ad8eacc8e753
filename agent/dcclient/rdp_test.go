//go:build linux

package dcclient_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/domain/sambatest"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// scan begins a login at the source workstation's surface and has the
// phone answer its QR code, its approval changed by tamper; it returns
// the surface, the login request the phone saw and the phone's result;
// the caller reads the surface's answer.
func (w *world) scan(t *testing.T, p *agenttest.Phone, mux *channel.Mux, begin func(context.Context, *ipcserver.Client) error,
	tamper func(*protocol.Approval)) (*ipcserver.Client, protocol.LoginRequest, protocol.LoginResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := ipcserver.Dial(ctx, w.ws.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := begin(ctx, c); err != nil {
		t.Fatal(err)
	}
	var req protocol.LoginRequest
	var res protocol.LoginResult
	for { // the phone's relay connection may still be coming up
		var qr *ipcserver.QR
		for qr == nil { // a fresh code for each scan
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			qr, _ = m.(*ipcserver.QR)
		}
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		res, err = p.Login(actx, mux, qr.Text, agenttest.Scan{Request: &req, Tamper: tamper})
		acancel()
		if err == nil {
			return c, req, res
		}
		if ctx.Err() != nil {
			t.Fatalf("phone: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rdpLogin is scan for a remote domain logon naming target, the phone
// approving the domain account with Target approvalTarget.
func (w *world) rdpLogin(t *testing.T, p *agenttest.Phone, mux *channel.Mux, target string, approvalTarget protocol.DeviceID) (*ipcserver.Client, protocol.LoginRequest, protocol.LoginResult) {
	t.Helper()
	return w.scan(t, p, mux, func(ctx context.Context, c *ipcserver.Client) error { return c.BeginTarget(ctx, target) },
		func(a *protocol.Approval) { a.Account, a.Target = protocol.AccountDomain, approvalTarget })
}

// answer is the surface's Credential or Denied.
func answer(t *testing.T, c *ipcserver.Client) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m.(type) {
		case *ipcserver.Credential, *ipcserver.Denied:
			return m
		}
	}
}

// TestRDPEndToEnd (SPEC.md 5.7.1, 11.7 RDP): three agents on a real relay
// against the real Samba DC: source workstation WS-01, target WS-02 and
// the DC agent. The source's RDP client names WS-02 in Begin; the source
// agent puts WS-02's certificate into the LoginRequest (the only choice
// the domain account), the phone signs an approval bound to WS-01 and
// WS-02, the source sends the DomainRequest with the target to the DC
// agent and hands the client JITKEY\msp-rdp. The password binds over
// LDAPS during the session and not after End (DomainEnd: disabled and
// rotated); a second RDP login gets another password. An approval
// naming another target is refused and enables nothing; an unknown
// target is refused before any code is shown.
func TestRDPEndToEnd(t *testing.T) {
	const acct = "msp-rdp"
	w := newWorld(t)
	target := w.enroll(t, "WS-02", true, false)
	w.start(t, target, nil)
	// The console's directories (SPEC.md 8.2): the DC agent answers both
	// workstations; the workstations list the DC and the domain-joined
	// devices (the RDP targets).
	signed := w.console.SetPolicy(t, w.policy)
	w.push(t, w.dc, signed, w.ws.enr.DeviceCert, target.enr.DeviceCert)
	for _, a := range []*agent{w.ws, target} {
		w.push(t, a, signed, w.dc.enr.DeviceCert, w.ws.enr.DeviceCert, target.enr.DeviceCert)
	}
	// Another technician than TestDomainLoginEndToEnd's: sAMAccountName
	// is unique in the domain, and each test has its own OU.
	p, mux := w.phone(t, "rdp")

	// Unknown target, and the source itself: refused at once.
	for _, name := range []string{"WS-99", "WS-01"} {
		c, err := ipcserver.Dial(t.Context(), w.ws.sock)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.BeginTarget(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		if d, ok := answer(t, c).(*ipcserver.Denied); !ok || d.Code != protocol.CodeRefused || d.Reason != "no remote desktop to this target" {
			t.Fatalf("target %s: %+v", name, d)
		}
		c.Close()
	}

	var lastPW string
	for i := range 2 {
		c, req, res := w.rdpLogin(t, p, mux, "WS-02", target.enr.DeviceID)
		var tc protocol.DeviceCert
		if err := req.Target.VerifyEd25519(protocol.DocDeviceCert, w.msp.Pub, &tc); err != nil || tc.DeviceID != target.enr.DeviceID || tc.Name != "WS-02" {
			t.Fatalf("login request target %+v %v, want WS-02", tc, err)
		}
		if !slices.Equal(req.Choices, []uint8{protocol.AccountDomain}) {
			t.Fatalf("RDP login request offers %v, want [domain]", req.Choices)
		}
		cred, ok := answer(t, c).(*ipcserver.Credential)
		if !ok || !res.OK || cred.Username != sambatest.Domain+`\`+acct {
			t.Fatalf("RDP login %d: surface %+v, phone %+v", i, cred, res)
		}
		pw := string(cred.Password)
		if pw == lastPW {
			t.Fatal("second RDP login got the same password")
		}
		if lastPW != "" {
			wantRefusedBind(t, bindErr(acct, lastPW))
		}
		lastPW = pw
		if err := bindErr(acct, pw); err != nil {
			t.Fatalf("LDAPS bind during the RDP session: %v", err)
		}
		if e, err := w.dir.Lookup(t.Context(), acct); err != nil || !e.Enabled() || !e.InGroup(sambatest.AdminGroup) {
			t.Fatalf("during the RDP session: %+v %v", e, err)
		}
		endSession(t, c, cred.Session)
		wantRefusedBind(t, bindErr(acct, pw))
		if e, err := w.dir.Lookup(t.Context(), acct); err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
			t.Fatalf("after the RDP session: %+v %v, want disabled, no membership", e, err)
		}
	}

	// An approval naming another target (the DC) is refused; nothing is
	// enabled; the login stays open for a correct scan.
	c, _, res := w.rdpLogin(t, p, mux, "WS-02", w.dc.enr.DeviceID)
	if res.OK || res.Code != protocol.CodeRefused {
		t.Fatalf("approval for another target: phone %+v, want refused", res)
	}
	if e, err := w.dir.Lookup(t.Context(), acct); err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after an approval for another target: %+v %v", e, err)
	}
	c.Close()

	// The source's audit at the console names the target; the DC agent's
	// records the account enabled and disabled twice.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var approved, ended, enabled, disabled int
		for _, r := range w.console.Records(w.ws.info.Addr.Mailbox) {
			if r.Event == "login.approved" && r.Account == sambatest.Domain+`\`+acct && strings.Contains(r.Detail, "remote desktop to WS-02") {
				approved++
			}
			if r.Event == "session.ended" && r.Account == sambatest.Domain+`\`+acct {
				ended++
			}
		}
		for _, r := range w.console.Records(w.dc.info.Addr.Mailbox) {
			switch r.Event {
			case "account.enabled":
				enabled++
			case "account.disabled":
				disabled++
			}
		}
		if approved == 2 && ended == 2 && enabled == 2 && disabled == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit at the console: workstation %v, DC %v", agenttest.Events(w.console.Records(w.ws.info.Addr.Mailbox)),
				agenttest.Events(w.console.Records(w.dc.info.Addr.Mailbox)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRDPFromUserPrompt (SPEC.md 5.7 "Peers", 11.7 RDP): the source
// workstation's surfaces are classified as an interactive user's, as the
// named pipe classifies the Remote Desktop client's CredUI prompt on
// Windows. A Begin without Target is refused; a Begin with Target goes
// the whole domain path (phone approval bound to WS-01 and WS-02, the
// real Samba DC) and the user's prompt gets DOMAIN\msp-rdpuser, which
// binds; it may End that session. During another such login, a Code or
// a Push ends it with Denied; after the Credential a Code, a Push or an
// End naming another session is refused and ends the domain session.
func TestRDPFromUserPrompt(t *testing.T) {
	const acct = "msp-rdpuser"
	w := newWorldPeer(t, &ipc.Peer{Kind: ipc.PeerUser, SID: "S-1-5-21-1111-2222-3333-1001"})
	target := w.enroll(t, "WS-02", true, false)
	w.start(t, target, nil)
	signed := w.console.SetPolicy(t, w.policy)
	w.push(t, w.dc, signed, w.ws.enr.DeviceCert, target.enr.DeviceCert)
	w.push(t, w.ws, signed, w.dc.enr.DeviceCert, w.ws.enr.DeviceCert, target.enr.DeviceCert)
	p, mux := w.phone(t, "rdpuser")

	c, err := ipcserver.Dial(t.Context(), w.ws.sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	if d, ok := answer(t, c).(*ipcserver.Denied); !ok || d.Code != protocol.CodeRefused || d.Reason != ipcserver.DeniedUserPeer {
		t.Fatalf("user's Begin without Target: %+v", d)
	}
	c.Close()

	c, _, res := w.rdpLogin(t, p, mux, "WS-02", target.enr.DeviceID)
	cred, ok := answer(t, c).(*ipcserver.Credential)
	if !ok || !res.OK || cred.Username != sambatest.Domain+`\`+acct {
		t.Fatalf("user's RDP login: surface %+v, phone %+v", cred, res)
	}
	pw := string(cred.Password)
	if err := bindErr(acct, pw); err != nil {
		t.Fatalf("LDAPS bind during the RDP session: %v", err)
	}
	endSession(t, c, cred.Session)
	wantRefusedBind(t, bindErr(acct, pw))

	for _, send := range []func(*ipcserver.Client) error{
		func(c *ipcserver.Client) error { return c.Code(t.Context(), "rdpuser", "123456") },
		func(c *ipcserver.Client) error { return c.Push(t.Context(), "rdpuser@example.com") },
	} {
		c, err := ipcserver.Dial(t.Context(), w.ws.sock)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.BeginTarget(t.Context(), "WS-02"); err != nil {
			t.Fatal(err)
		}
		if _, ok := answer2(t, c).(*ipcserver.QR); !ok {
			t.Fatal("no QR for the user's RDP login")
		}
		if err := send(c); err != nil {
			t.Fatal(err)
		}
		if d, ok := answer(t, c).(*ipcserver.Denied); !ok || d.Code != protocol.CodeRefused || d.Reason != ipcserver.DeniedUserPeer {
			t.Fatalf("Code or Push from a user's prompt: %+v", d)
		}
		c.Close()
	}

	// After its Credential, a Code, a Push or an End naming another
	// session is refused and ends the prompt's session as its own End
	// would: once the agent closes the connection the domain password no
	// longer binds and the account is disabled and out of the admin group.
	for name, send := range map[string]func(*ipcserver.Client) error{
		"Code": func(c *ipcserver.Client) error { return c.Code(t.Context(), "rdpuser", "123456") },
		"Push": func(c *ipcserver.Client) error { return c.Push(t.Context(), "rdpuser@example.com") },
		"End":  func(c *ipcserver.Client) error { return c.End(t.Context(), protocol.SessionID{1}) },
	} {
		c, _, res := w.rdpLogin(t, p, mux, "WS-02", target.enr.DeviceID)
		cred, ok := answer(t, c).(*ipcserver.Credential)
		if !ok || !res.OK {
			t.Fatalf("%s: user's RDP login: surface %+v, phone %+v", name, cred, res)
		}
		pw := string(cred.Password)
		if err := bindErr(acct, pw); err != nil {
			t.Fatalf("%s: LDAPS bind during the RDP session: %v", name, err)
		}
		if err := send(c); err != nil {
			t.Fatal(err)
		}
		if d, ok := answer(t, c).(*ipcserver.Denied); !ok || d.Code != protocol.CodeRefused || d.Reason != ipcserver.DeniedUserPeer {
			t.Fatalf("%s after the Credential: %+v", name, d)
		}
		// The agent closes the connection once the session has ended.
		if m, err := c.Next(t.Context()); err == nil {
			t.Fatalf("%s: after the refusal the prompt got %T %+v", name, m, m)
		}
		c.Close()
		wantRefusedBind(t, bindErr(acct, pw))
		if e, err := w.dir.Lookup(t.Context(), acct); err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
			t.Fatalf("%s: after the refusal: %+v %v", name, e, err)
		}
	}
}

// answer2 is the surface's first QR, Credential or Denied.
func answer2(t *testing.T, c *ipcserver.Client) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// endSession sends End for session and wants Ended.
func endSession(t *testing.T, c *ipcserver.Client, session protocol.SessionID) {
	t.Helper()
	if err := c.End(t.Context(), session); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Next(t.Context()); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*ipcserver.Ended); !ok {
		t.Fatalf("End answered with %T %+v", m, m)
	}
}
