package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

// TestFirstSendStress is the short-lived phone: a new client connects,
// sends once to a peer on the same relay and must get a verdict at once,
// many times over, with a fresh or a reused identity, and with the peer
// sending to the phone's mailbox while it connects. Before the relay
// queued Welcome ahead of publishing the mailbox, a Deliver could reach a
// new connection before its Welcome and the client dropped the connection
// ("unexpected answer to hello").
func TestFirstSendStress(t *testing.T) {
	iters := 150
	if testing.Short() {
		iters = 30
	}
	tests := []struct {
		name      string
		sameKey   bool
		peerSends bool
	}{
		{name: "fresh identity"},
		{name: "same identity", sameKey: true},
		{name: "peer sends at once", sameKey: true, peerSends: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRelay(t, server.Config{Limits: server.Limits{SendRate: 1e6, SendBurst: 1 << 20}}, "")
			agent, _ := startClient(t, r, nil)
			phoneKey := newKey(t)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			wg.Add(1)
			go func() { // the agent answers what it receives
				defer wg.Done()
				for {
					m, err := agent.Recv(ctx)
					if err != nil {
						return
					}
					sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
					agent.Send(sctx, m.From, []byte("reply"))
					scancel()
				}
			}()
			if tt.peerSends {
				to := protocol.PeerAddr{Relay: r.addr, Mailbox: protocol.MailboxFor(phoneKey.Public().(ed25519.PublicKey))}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
						agent.Send(sctx, to, []byte("hello phone"))
						scancel()
					}
				}()
			}
			logs := &relaytest.LogBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			start := time.Now()
			for i := range iters {
				key := phoneKey
				if !tt.sameKey {
					key = newKey(t)
				}
				if err := phoneLogin(r, key, agent, log); err != nil {
					t.Fatalf("login %d: %v", i, err)
				}
			}
			if s := logs.String(); strings.Contains(s, "unexpected answer to hello") {
				t.Errorf("a phone's connection was dropped during authentication:\n%s", s)
			}
			t.Logf("%d logins in %v", iters, time.Since(start))
		})
	}
}

// phoneLogin runs one short-lived phone: connect, send to the agent, close.
func phoneLogin(r *relay, key ed25519.PrivateKey, agent *client.Client, log *slog.Logger) error {
	c, err := client.New(client.Config{Identity: key, Home: r.addr, Pins: [][32]byte{r.pin()}, Logger: log})
	if err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()
	defer func() {
		c.Close()
		<-runErr
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		return err
	}
	go func() { // the phone reads what it is sent, as mobilesim's pump does
		for {
			if _, err := c.Recv(ctx); err != nil {
				return
			}
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	err = c.Send(sctx, agent.Addr(), []byte("login hello"))
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("send got no Ack or Nack within 2 s")
	}
	return err
}

// TestLostDatagramsRecovered is the lost handshake frame of a QR login
// under load: the relay's UDP socket overflows while its packet reader
// waits for a CPU, and the kernel drops the datagrams that carry a
// phone's first Send (or the relay's Deliver and Ack, whose ACKs are
// dropped). Here the relay's socket drops the next datagrams it receives,
// a burst per login; the Send must still be acknowledged and delivered
// once QUIC has retransmitted it, well within a login's 10 s, and nothing
// may be lost. On this machine kind under load, `ss -uamp` showed tens of
// thousands of such drops on the relay's socket (BENCHMARKS.md, Relay).
func TestLostDatagramsRecovered(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lossy := &dropConn{PacketConn: pc}
	r := startRelayOn(t, server.Config{Limits: server.Limits{SendRate: 1e6, SendBurst: 1 << 20}}, lossy)
	agent, _ := startClient(t, r, nil)
	phone, _ := startClient(t, r, nil)
	for i := range 10 {
		burst := 1 + i%5 // each drop doubles QUIC's retransmission timeout
		lossy.drop.Store(int64(burst))
		payload := []byte(fmt.Sprintf("login hello %d", i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		if err := phone.Send(ctx, agent.Addr(), payload); err != nil {
			cancel()
			t.Fatalf("login %d: send with %d datagrams dropped: %v", i, burst, err)
		}
		m, err := agent.Recv(ctx)
		cancel()
		if err != nil {
			t.Fatalf("login %d: the agent got nothing after %d datagrams were dropped: %v", i, burst, err)
		}
		if string(m.Payload) != string(payload) {
			t.Fatalf("login %d: agent got %q, want %q", i, m.Payload, payload)
		}
		if left := lossy.drop.Load(); left > 0 {
			t.Fatalf("login %d: %d of %d drops left over: the frames did not go through the relay's socket", i, left, burst)
		}
		t.Logf("login %d: %d datagrams dropped, delivered in %v", i, burst, time.Since(start).Round(time.Millisecond))
	}
}

// dropConn drops the next drop datagrams it receives, as a full socket
// receive buffer does.
type dropConn struct {
	net.PacketConn
	drop atomic.Int64
}

func (c *dropConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.drop.Add(-1) < 0 {
			c.drop.CompareAndSwap(-1, 0)
			return n, addr, err
		}
	}
}
