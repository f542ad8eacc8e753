//go:build linux

package dcagent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

func addrOf(k *keys.Keys) protocol.PeerAddr {
	return protocol.PeerAddr{Mailbox: protocol.MailboxFor(k.IdentityPublic().Public()), Relay: agenttest.Relay}
}

// TestFlowDomain runs FlowDomain (KK) between a workstation agent and the
// DC agent over an in-memory relay: the workstation obtains the password,
// which binds until its DomainEnd; a device the DC agent does not list as
// a domain workstation gets no session at all.
func TestFlowDomain(t *testing.T) {
	w := newWorld(t, "flow", nil)
	ctx := t.Context()
	if n, err := w.svc.SetWorkstations(ctx, []protocol.Signed{w.wsCert}); err != nil || n != 1 {
		t.Fatalf("workstations: %d %v", n, err)
	}
	net := channeltest.NewNetwork()
	dcPeer := net.Join(addrOf(w.dc.Keys))
	dcMux := channel.New(channel.Config{Relay: dcPeer, Static: w.dc.Keys.Noise,
		Accept: func(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
			if h.Flow != protocol.FlowDomain {
				return nil, protocol.NoiseKey{}, errors.New("flow not accepted")
			}
			return w.svc.Accept(ctx, h)
		},
		Handle: func(ctx context.Context, c *channel.Conn) { w.svc.Serve(ctx, c) }})
	agenttest.Pump(t, dcMux, dcPeer.Recv)
	wsPeer := net.Join(addrOf(w.wsKeys))
	wsMux := channel.New(channel.Config{Relay: wsPeer, Static: w.wsKeys.Noise, HandshakeTimeout: 2 * time.Second})
	agenttest.Pump(t, wsMux, wsPeer.Recv)
	dial := func(mux *channel.Mux) (*channel.Conn, error) {
		return mux.Dial(ctx, channel.DialConfig{To: addrOf(w.dc.Keys), Flow: protocol.FlowDomain, PeerStatic: w.dc.Keys.NoisePublic()})
	}
	c, err := dial(wsMux)
	if err != nil {
		t.Fatal(err)
	}
	r := w.request(t, false, nil)
	res, err := Ask(ctx, c, r)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := bind(res.Account, res.Password); err != nil {
		t.Fatalf("bind: %v", err)
	}
	// The same request again over a new session: a replay.
	c, err = dial(wsMux)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Ask(ctx, c, r)
	c.Close()
	var pe *protocol.PeerError
	if !errors.As(err, &pe) || pe.Code != protocol.CodeExpired {
		t.Fatalf("replay: %v", err)
	}
	c, err = dial(wsMux)
	if err != nil {
		t.Fatal(err)
	}
	if err := Finish(ctx, c, &protocol.DomainEnd{Session: r.Session, Account: res.Account}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	wantRefusedBind(t, bind(res.Account, res.Password))

	// A device not listed: the DC agent does not answer the handshake.
	strangerKeys, _, _ := w.device(t, "WS-STRANGER")
	sp := net.Join(addrOf(strangerKeys))
	sMux := channel.New(channel.Config{Relay: sp, Static: strangerKeys.Noise, HandshakeTimeout: 500 * time.Millisecond})
	agenttest.Pump(t, sMux, sp.Recv)
	if c, err := dial(sMux); err == nil {
		c.Close()
		t.Fatal("unlisted workstation got a FlowDomain session")
	}
}
