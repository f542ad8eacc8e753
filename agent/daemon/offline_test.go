package daemon_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// status waits for the surface's next Status.
func status(t *testing.T, ctx context.Context, c *ipcserver.Client, want ipcserver.Status) {
	t.Helper()
	if c.Status() == want {
		return
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for status %+v: %v", want, err)
		}
		if st, ok := m.(*ipcserver.Status); ok && *st == want {
			return
		}
	}
}

// TestOfflineLogin (SPEC.md 11.6, named mode): the first online login
// gives the phone its offline key for this computer; with the relay down
// the login surface is told to ask for a code, the phone's code makes the
// account ready, the same code is refused again; back online, the
// journal reaches the console and the key used offline is retired.
func TestOfflineLogin(t *testing.T) {
	w := newWorld(t, server.Limits{})
	p, mux := w.phone(t, "nik")
	pol, key := w.offlineKey(t, p, mux)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	w.stopRelay()
	s := logon(t, ctx, w.sock)
	code, cred := offlineCode(t, ctx, s, pol, key)
	w.useCredential(t, ctx, s, cred, "offline")

	// The same code again: refused.
	again := logon(t, ctx, w.sock)
	status(t, ctx, again, ipcserver.Status{Online: false, OTP: true})
	if err := again.Code(ctx, "nik", code); err != nil {
		t.Fatal(err)
	}
	if d := denied(t, again); d.Reason != "wrong username or code" {
		t.Fatalf("replayed code: %+v", d)
	}

	// Back online: the journal arrives and the key is retired.
	w.relay, w.relayAddr, w.pin, w.stopRelay = startRelay(t, w.relayAddr, 1, server.Limits{})
	// The agent's relay client retries with a doubling back-off of at
	// most 30 s (relay/client MaxBackoff), so after a long outage (a
	// loaded machine) its next attempt may come that much later: wait
	// for one full back-off plus the shipping, not a fixed 15 s ("timed
	// out waiting for the offline journal" once in CI). A shipping
	// attempt caught by the outage may also wait out its own
	// audit.AttemptTimeout (1 min) first, as in TestBreakGlassOffline:
	// 45 s was shorter than that (failed once more, at load ~20).
	eventuallyWithin(t, "the offline journal at the console", audit.AttemptTimeout+30*time.Second, func() bool {
		ev := agenttest.Events(w.console.Records(w.info.Addr.Mailbox))
		return slices.Contains(ev, "offline.key.replaced")
	})
	var approvedOffline bool
	for _, r := range w.console.Records(w.info.Addr.Mailbox) {
		if r.Event == "login.approved" && r.Method == protocol.MethodOTP && !r.Online && r.TechID == p.Cert.TechID {
			approvedOffline = true
		}
	}
	if !approvedOffline {
		t.Fatal("no offline login.approved record at the console")
	}
}

// offlineKey gives Nik's phone p the agent's offline key for it (named
// mode, SPEC.md 11.6): a roster policy, then one online QR login, whose
// session is ended. It returns the policy and the key.
func (w *world) offlineKey(t *testing.T, p *agenttest.Phone, mux *channel.Mux) (protocol.Policy, []byte) {
	t.Helper()
	pol := w.msp.Policy(2)
	pol.Roster = []protocol.RosterEntry{{Serial: p.Cert.Serial, TechID: p.Cert.TechID, Username: "nik", Role: protocol.RoleAdmin}}
	signed := w.console.SetPolicy(t, pol)
	eventually(t, "the roster policy applied", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		ack, err := w.console.PushPolicy(ctx, w.info.Addr, signed)
		return err == nil && len(ack.Versions) == 1 && ack.Versions[0].Version == 2
	})
	c, err := ipcserver.Dial(t.Context(), w.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	qr := firstQR(t, ctx, c)
	var res protocol.LoginResult
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		res, err = p.Login(actx, mux, qr.Text, agenttest.Scan{})
		acancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		qr = firstQR(t, ctx, c)
	}
	if err != nil || !res.OK || len(res.OfflineSecret) != otpcode.KeySize {
		t.Fatalf("online login: %+v %v", res, err)
	}
	key := res.OfflineSecret
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cred, ok := m.(*ipcserver.Credential); ok {
			if err := c.End(ctx, cred.Session); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	c.Close()
	return pol, key
}

// offlineCode waits until surface s is told the agent is offline, sends
// Nik's current code from key and returns it with the credential.
func offlineCode(t *testing.T, ctx context.Context, s *ipcserver.Client, pol protocol.Policy, key []byte) (string, *ipcserver.Credential) {
	t.Helper()
	status(t, ctx, s, ipcserver.Status{Online: false, OTP: true})
	code, err := otpcode.Code(key, otpcode.Step(time.Now(), pol.Offline.Period), pol.Offline)
	if err != nil {
		t.Fatal(err)
	}
	return code, codeCredential(t, ctx, s, "nik", code)
}

// useCredential logs in with cred through the backend (what names it
// in the failure) and ends its session on surface s.
func (w *world) useCredential(t *testing.T, ctx context.Context, s *ipcserver.Client, cred *ipcserver.Credential, what string) {
	t.Helper()
	if err := w.backend.Login(ctx, cred.Username, password.FromBytes(cred.Password)); err != nil {
		t.Fatalf("%s credential does not log in: %v", what, err)
	}
	if err := s.End(ctx, cred.Session); err != nil {
		t.Fatal(err)
	}
}

// logon opens a login surface on the agent's socket sock (closed when
// the test ends) and begins a logon.
func logon(t *testing.T, ctx context.Context, sock string) *ipcserver.Client {
	t.Helper()
	s, err := ipcserver.Dial(t.Context(), sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Begin(ctx, "logon", 0); err != nil {
		t.Fatal(err)
	}
	return s
}

// codeCredential sends username's offline or recovery code on surface s and
// returns the credential it gets; a denial fails the test.
func codeCredential(t *testing.T, ctx context.Context, s *ipcserver.Client, username, code string) *ipcserver.Credential {
	t.Helper()
	if err := s.Code(ctx, username, code); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *ipcserver.Credential:
			return m
		case *ipcserver.Denied:
			t.Fatalf("%s's code denied: %+v", username, m)
		}
	}
}
