package daemon_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/push"
	"github.com/jitkey/jitkey/relay/push/pushgw"
	"github.com/jitkey/jitkey/relay/server"
)

// pushLogin begins a login on the surface socket, asks for a push to
// email and returns the client and the number shown.
func (w *world) pushLogin(t testing.TB, ctx context.Context, email string) (*ipcserver.Client, uint8) {
	t.Helper()
	c, err := ipcserver.Dial(ctx, w.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Begin(ctx, "logon", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Push(ctx, email); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := m.(*ipcserver.Number); ok {
			return c, n.Number
		}
	}
}

// credential waits for the login's Credential.
func credential(t testing.TB, ctx context.Context, c *ipcserver.Client) *ipcserver.Credential {
	t.Helper()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *ipcserver.Credential:
			return m
		case *ipcserver.Denied:
			t.Fatalf("denied: %+v", m)
		}
	}
}

type pushPhone interface {
	daemon.Relay
	WaitConnected(ctx context.Context) error
	SealPushTicket(token []byte, expiry time.Time) ([]byte, error)
}

// TestPushWakesPhone: a real relay with a push gateway (the pushgw
// stand-in behind push.Webhook). The phone approves a first push while
// connected and leaves its sealed ticket with the agent; then it goes
// offline. The next push's handshake is Nacked by the relay, which wakes
// the phone through the gateway; the woken phone connects, receives the
// request and approves with the number shown: the surface gets its
// Credential.
func TestPushWakesPhone(t *testing.T) {
	woken := make(chan []byte, 4)
	gw := httptest.NewServer(&pushgw.Gateway{OnWake: func(tok []byte) { woken <- tok }})
	defer gw.Close()
	w := newWorldRelay(t, server.Limits{}, func(c *server.Config) {
		c.Waker = &push.Webhook{URL: gw.URL}
		c.PushKey = bytes.Repeat([]byte{7}, 32)
	}, func(c *daemon.Config) {
		c.Push.Retry = 200 * time.Millisecond
		c.Push.AnswerDelay = 50 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	p := w.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	p.Cert.Relay = w.relayAddr
	w.msp.Resign(t, p)
	pol := w.msp.Policy(2)
	pol.PushLogin = true
	pol.Roster = []protocol.RosterEntry{p.RosterEntry(protocol.RoleAdmin)}
	signed := w.console.SetPolicy(t, pol)
	eventually(t, "policy 2 at the agent (once it reaches the relay)", func() bool {
		ack, err := w.console.PushPolicy(ctx, w.info.Addr, signed)
		return err == nil && len(ack.Versions) == 1 && ack.Versions[0].Version == 2
	})
	k, err := keys.Load(w.state)
	if err != nil {
		t.Fatal(err)
	}
	token := []byte("nik-phone-apns-token")
	numbers := make(chan uint8, 1)
	answer := func(protocol.PushRequest) agenttest.PushReply { return agenttest.PushReply{Pick: uint16(<-numbers)} }
	connect := func() (pushPhone, func()) {
		rl, stop := relayClientStop(t, p.Identity, w.relayAddr, w.pin)
		pp := rl.(pushPhone)
		if err := pp.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		return pp, stop
	}

	// Online: the phone answers and leaves its ticket.
	rl, stop := connect()
	ticket, err := rl.SealPushTicket(token, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := p.ServePushOn(t, rl, func(context.Context) (protocol.PeerAddr, []byte, error) { return rl.Recv(rctx) },
		k.NoisePublic(), ticket, answer)
	c, n := w.pushLogin(t, ctx, "nik@msp.example")
	numbers <- n
	cred := credential(t, ctx, c)
	if d := <-done; d.Err != nil || !d.Result.OK {
		t.Fatalf("phone: %+v", d)
	}
	if err := c.End(ctx, cred.Session); err != nil {
		t.Fatal(err)
	}
	rcancel()
	stop()

	// Offline: the relay wakes the phone through the gateway.
	c, n = w.pushLogin(t, ctx, "nik@msp.example")
	var tok []byte
	select {
	case tok = <-woken:
	case <-ctx.Done():
		t.Fatal("the phone was not woken")
	}
	if !bytes.Equal(tok, token) {
		t.Fatalf("gateway token %q", tok)
	}
	// A new variable: the first phone connection's receive loop may still
	// read rl while it winds down (a data race when rl was reassigned).
	woke, _ := connect()
	done = p.ServePushOn(t, woke, func(ctx context.Context) (protocol.PeerAddr, []byte, error) { return woke.Recv(ctx) },
		k.NoisePublic(), ticket, answer)
	numbers <- n
	cred = credential(t, ctx, c)
	if cred.Username != "msp-nik" {
		t.Fatalf("credential for %s", cred.Username)
	}
	if d := <-done; d.Err != nil || !d.Result.OK {
		t.Fatalf("woken phone: %+v", d)
	}
}
