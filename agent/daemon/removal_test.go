package daemon_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// ownSerial reads the agent's device certificate serial from its store.
func (w *world) ownSerial(t *testing.T) uint64 {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(w.state, enroll.DBFile), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var e store.Enrollment
	if err := st.View(t.Context(), func(tx *store.Tx) error { e, err = tx.Enrollment(); return err }); err != nil {
		t.Fatal(err)
	}
	var dc protocol.DeviceCert
	if err := protocol.Unmarshal(e.DeviceCert.Body, &dc); err != nil {
		t.Fatal(err)
	}
	return dc.Serial
}

// denied waits for the surface's next message and returns the denial.
func denied(t *testing.T, c *ipcserver.Client) *ipcserver.Denied {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *ipcserver.Denied:
			return m
		case *ipcserver.QR, *ipcserver.Status:
			continue // a code shown before the removal, or a rotation
		default:
			t.Fatalf("surface got %T, want Denied", m)
		}
	}
}

const removedReason = "this computer was removed from jitkey by the MSP; jitkey logins are disabled"

// TestDeviceRemovedLockdown (SPEC.md 11.10): when the console pushes a
// policy that revokes the agent's own certificate, the agent ends the
// running session (the password stops working), ends a login screen's
// pending request, refuses new ones with a clear reason, ships the
// records of all that, and stays so after a restart.
func TestDeviceRemovedLockdown(t *testing.T) {
	w := newWorld(t, server.Limits{})
	p, mux := w.phone(t, "nik")
	_, cred := w.login(t, p, mux)
	pw := password.FromBytes(cred.Password)
	pending, err := ipcserver.Dial(t.Context(), w.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Close()
	if err := pending.Begin(t.Context(), "unlock", 0); err != nil {
		t.Fatal(err)
	}
	firstQR(t, t.Context(), pending)

	pol := w.msp.Policy(2)
	pol.RevokedDevices = []uint64{w.ownSerial(t)}
	ack, err := w.console.PushPolicy(t.Context(), w.info.Addr, w.console.SetPolicy(t, pol))
	if err != nil || len(ack.Versions) != 1 || ack.Versions[0].Version != 2 {
		t.Fatalf("push of the removal policy: %+v %v", ack, err)
	}
	if err := w.backend.Login(t.Context(), cred.Username, pw); err == nil {
		t.Fatal("the session's password still works after the removal")
	}
	if i, err := w.backend.Lookup(t.Context(), cred.Username); err != nil || i.Enabled {
		t.Fatalf("%s after the removal: %+v %v", cred.Username, i, err)
	}
	if d := denied(t, pending); d.Reason != removedReason || d.Code != protocol.CodeRefused {
		t.Fatalf("pending login screen: %+v", d)
	}
	begin := func() *ipcserver.Denied {
		t.Helper()
		c, err := ipcserver.Dial(t.Context(), w.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Begin(t.Context(), "logon", 0); err != nil {
			t.Fatal(err)
		}
		return denied(t, c)
	}
	if d := begin(); d.Reason != removedReason {
		t.Fatalf("new login screen: %+v", d)
	}
	eventually(t, "the lockdown's records at the console", func() bool {
		recs := w.console.Records(w.info.Addr.Mailbox)
		ev := agenttest.Events(recs)
		i := slices.Index(ev, "device.removed")
		return i > 0 && ev[i-1] == "policy.applied" && slices.ContainsFunc(recs[i:], func(r protocol.AuditRecord) bool {
			return r.Event == "account.disabled" && r.Account == cred.Username && r.Reason == "device removed by the MSP"
		}) && slices.Contains(ev[i:], "session.ended")
	})
	n := len(w.console.Records(w.info.Addr.Mailbox))

	// After a restart the agent is still locked down and records nothing
	// new about it.
	w.stopAgent()
	w.startAgent(t)
	if d := begin(); d.Reason != removedReason {
		t.Fatalf("login screen after a restart: %+v", d)
	}
	if i, err := w.backend.Lookup(t.Context(), cred.Username); err != nil || i.Enabled {
		t.Fatalf("%s after a restart: %+v %v", cred.Username, i, err)
	}
	time.Sleep(500 * time.Millisecond) // a few shipping rounds
	for _, r := range w.console.Records(w.info.Addr.Mailbox)[n:] {
		if !strings.HasPrefix(r.Event, "login.") {
			t.Errorf("after the restart: %s %s", r.Event, r.Detail)
		}
	}
}
