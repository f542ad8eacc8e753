//go:build !race

package daemon_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// BenchmarkPushRoundTrip measures push logins end to end on loopback:
// real QUIC relay, SQLite store, fake account backend. Per login, from
// the surface's Push: until the phone shows the request ("shows"), and
// until the Credential reached the surface after the phone approved with
// the screen's number ("credential"). The agent shows the number after
// its production answer delay (push.DefaultAnswerDelay, 1 s, the same
// for every email: no enumeration), so "credential" includes it; a person
// reads the number and taps it on top. Run with -benchtime 20x.
func BenchmarkPushRoundTrip(b *testing.B) {
	w := newWorld(b, server.Limits{SendRate: 1e6, SendBurst: 1e6})
	ctx := context.Background()
	p := w.msp.NewPhone(b, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	p.Cert.Relay = w.relayAddr
	w.msp.Resign(b, p)
	pol := w.msp.Policy(2)
	pol.PushLogin, pol.PushPerHour = true, protocol.MaxPushPerHour
	pol.Roster = []protocol.RosterEntry{p.RosterEntry(protocol.RoleAdmin)}
	signed := w.console.SetPolicy(b, pol)
	eventually(b, "policy 2 at the agent", func() bool {
		ack, err := w.console.PushPolicy(ctx, w.info.Addr, signed)
		return err == nil && len(ack.Versions) == 1 && ack.Versions[0].Version == 2
	})
	k, err := keys.Load(w.state)
	if err != nil {
		b.Fatal(err)
	}
	rl := relayClient(b, p.Identity, w.relayAddr, w.pin)
	shown := make(chan time.Time, 1)
	numbers := make(chan uint8, 1)
	done := p.ServePushOn(b, rl, rl.Recv, k.NoisePublic(), nil, func(protocol.PushRequest) agenttest.PushReply {
		shown <- time.Now()
		return agenttest.PushReply{Pick: uint16(<-numbers)}
	})
	var shows, creds []time.Duration
	for i := 0; i < b.N+1; i++ { // the first warms up the relay connections
		start := time.Now()
		c, n := w.pushLogin(b, ctx, "nik@msp.example")
		numbers <- n
		cred := credential(b, ctx, c)
		took := time.Since(start)
		s := <-shown
		if d := <-done; d.Err != nil || !d.Result.OK {
			b.Fatalf("phone: %+v", d)
		}
		if err := c.End(ctx, cred.Session); err != nil {
			b.Fatal(err)
		}
		c.Close()
		if i > 0 {
			shows, creds = append(shows, s.Sub(start)), append(creds, took)
		}
	}
	slices.Sort(shows)
	slices.Sort(creds)
	b.ReportMetric(float64(shows[len(shows)/2].Milliseconds()), "shows-p50-ms")
	b.ReportMetric(float64(shows[len(shows)*99/100].Milliseconds()), "shows-p99-ms")
	b.ReportMetric(float64(creds[len(creds)/2].Milliseconds()), "credential-p50-ms")
	b.ReportMetric(float64(creds[len(creds)*99/100].Milliseconds()), "credential-p99-ms")
}
