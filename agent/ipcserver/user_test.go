package ipcserver_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/protocol"
)

const userSID = "S-1-5-21-1111-2222-3333-1001"

// refusals returns the login.denied records the server wrote for the
// user peer sid, by reason.
func refusals(t *testing.T, e *env, sid string) []string {
	t.Helper()
	var out []string
	for _, r := range refusalRecords(t, e, sid) {
		out = append(out, r.Reason)
	}
	return out
}

// refusalRecords returns the login.denied records the server wrote for
// the user peer sid.
func refusalRecords(t *testing.T, e *env, sid string) []protocol.AuditRecord {
	t.Helper()
	var out []protocol.AuditRecord
	for _, r := range e.agent.Records(t) {
		if r.Event == audit.LoginDenied && strings.Contains(r.Detail, "ipc peer "+sid) {
			out = append(out, r)
		}
	}
	return out
}

// TestUserPeerOnlyRemoteDesktop (SPEC.md 5.7 "Peers"): a connection the
// platform listener classifies as an interactive user's (the Remote
// Desktop client's prompt on Windows) gets only a Begin with a Target
// served. A Begin without Target, an End, a Code or a Push as first
// message is answered with Denied code 1 and audited (login.denied
// naming the user's SID); a Begin with a Target goes on to the domain
// path, which here refuses the unknown target as it would for SYSTEM. A
// SYSTEM peer on the same listener is served a QR login.
func TestUserPeerOnlyRemoteDesktop(t *testing.T) {
	e := newEnvPeer(t, "", &ipc.Peer{Kind: ipc.PeerUser, SID: userSID}, nil)
	refused := func(name string, send func(*ipcserver.Client) error) {
		t.Helper()
		c := e.dial(t)
		if err := send(c); err != nil {
			t.Fatal(err)
		}
		d := next[ipcserver.Denied](t, c)
		if d.Code != protocol.CodeRefused || d.Reason != ipcserver.DeniedUserPeer {
			t.Fatalf("%s: %+v", name, d)
		}
	}
	refused("Begin logon", func(c *ipcserver.Client) error { return c.Begin(t.Context(), "logon", 0) })
	refused("Begin elevate", func(c *ipcserver.Client) error { return c.Begin(t.Context(), "elevate", 0) })
	refused("Begin unlock, action logon", func(c *ipcserver.Client) error { return c.Begin(t.Context(), "unlock", protocol.ActionLogon) })
	refused("End", func(c *ipcserver.Client) error { return c.End(t.Context(), protocol.SessionID{1}) })
	refused("Code", func(c *ipcserver.Client) error { return c.Code(t.Context(), "nik", "123456") })
	refused("Push", func(c *ipcserver.Client) error { return c.Push(t.Context(), "nik@example.com") })
	got := refusals(t, e, userSID)
	if len(got) != 6 {
		t.Fatalf("audited refusals %q, want 6", got)
	}
	for _, r := range got[:3] {
		if !strings.Contains(r, "only for a remote desktop login") {
			t.Fatalf("audit reason %q", r)
		}
	}
	// Each refusal records the action the Begin asked for (the
	// surface's own when its Action is 0); End, Code and Push ask for
	// none.
	recs := refusalRecords(t, e, userSID)
	for i, want := range []uint8{protocol.ActionLogon, protocol.ActionElevate, protocol.ActionLogon, 0, 0, 0} {
		if recs[i].Action != want {
			t.Errorf("refusal %d (%q): audited action %d, want %d", i, recs[i].Reason, recs[i].Action, want)
		}
	}

	// With a Target: the domain path (login.BeginTarget), whose answer
	// for a computer without domain accounts is its own.
	c := e.dial(t)
	if err := c.BeginTarget(t.Context(), "WS-02"); err != nil {
		t.Fatal(err)
	}
	if d := next[ipcserver.Denied](t, c); d.Code != protocol.CodeRefused || d.Reason != "no remote desktop to this target" {
		t.Fatalf("Begin with Target: %+v", d)
	}
	if got := refusals(t, e, userSID); len(got) != 6 {
		t.Fatalf("a Begin with Target was refused as a user's: %q", got)
	}

	// The rule follows the peer's kind: SYSTEM is served a QR login.
	e.ln.SetPeer(ipc.Peer{Kind: ipc.PeerSystem})
	c = e.dial(t)
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	if qr := next[ipcserver.QR](t, c); !strings.HasPrefix(qr.Text, "JK:") {
		t.Fatalf("QR %q", qr.Text)
	}
}

// TestUserPeerLimit: one user's prompts may begin UserMaxBegun remote
// desktop logins per UserWindow; the next is refused (Denied code 3) and
// audited, another user is not affected, and after the window the first
// user is served again.
func TestUserPeerLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnvPeer(t, "", &ipc.Peer{Kind: ipc.PeerUser, SID: userSID}, clock)
	begin := func() *ipcserver.Denied {
		t.Helper()
		c := e.dial(t)
		if err := c.BeginTarget(t.Context(), "WS-02"); err != nil {
			t.Fatal(err)
		}
		return next[ipcserver.Denied](t, c)
	}
	served := func(d *ipcserver.Denied) bool { return d.Reason == "no remote desktop to this target" }
	for i := range ipcserver.UserMaxBegun {
		if d := begin(); !served(d) {
			t.Fatalf("Begin %d: %+v", i, d)
		}
	}
	d := begin()
	if d.Code != protocol.CodeUnavailable || !strings.Contains(d.Reason, "too many remote desktop logins") {
		t.Fatalf("Begin over the limit: %+v", d)
	}
	if got := refusalRecords(t, e, userSID); len(got) != 1 || got[0].Reason != "too many remote desktop logins from this user" ||
		got[0].Action != protocol.ActionLogon {
		t.Fatalf("audited %+v, want the limit's refusal of a logon (action 1)", got)
	}
	e.ln.SetPeer(ipc.Peer{Kind: ipc.PeerUser, SID: "S-1-5-21-1111-2222-3333-1002"})
	if d := begin(); !served(d) {
		t.Fatalf("another user: %+v", d)
	}
	e.ln.SetPeer(ipc.Peer{Kind: ipc.PeerUser, SID: userSID})
	mu.Lock()
	now = now.Add(ipcserver.UserWindow - time.Second)
	mu.Unlock()
	if d := begin(); served(d) {
		t.Fatal("served before the window passed")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if d := begin(); !served(d) {
		t.Fatalf("after the window: %+v", d)
	}
}
