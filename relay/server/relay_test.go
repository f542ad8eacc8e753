package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/push"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

func TestRouting(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	a, _ := startClient(t, r, nil)
	b, _ := startClient(t, r, nil)
	ctx := ctxT(t)
	if err := a.Send(ctx, b.Addr(), []byte("ping")); err != nil {
		t.Fatal(err)
	}
	m := relaytest.Recv(t, b)
	if string(m.Payload) != "ping" || m.From != a.Addr() {
		t.Fatalf("got %q from %v, want ping from %v", m.Payload, m.From, a.Addr())
	}
	// The recipient replies to From.
	if err := b.Send(ctx, m.From, []byte("pong")); err != nil {
		t.Fatal(err)
	}
	if m := relaytest.Recv(t, a); string(m.Payload) != "pong" || m.From != b.Addr() {
		t.Fatalf("reply: got %q from %v", m.Payload, m.From)
	}
	// Empty and maximum payloads, and a send to oneself.
	if err := a.Send(ctx, a.Addr(), nil); err != nil {
		t.Fatal(err)
	}
	if m := relaytest.Recv(t, a); len(m.Payload) != 0 || m.From != a.Addr() {
		t.Fatalf("self: %v", m)
	}
	big := bytes.Repeat([]byte{0x5a}, protocol.MaxRelayPayload)
	if err := a.Send(ctx, b.Addr(), big); err != nil {
		t.Fatal(err)
	}
	if m := relaytest.Recv(t, b); !bytes.Equal(m.Payload, big) {
		t.Fatal("max payload corrupted")
	}
	// Order is kept per sender.
	for i := range 50 {
		if err := a.Send(ctx, b.Addr(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if m := relaytest.Recv(t, b); m.Payload[0] != byte(i) {
			t.Fatalf("order: got %d want %d", m.Payload[0], i)
		}
	}
	if got := r.metric(t, "jitkey_relay_frames_forwarded_total"); got != 54 {
		t.Errorf("frames forwarded %d, want 54", got)
	}
	if got := r.metric(t, "jitkey_relay_peers"); got != 2 {
		t.Errorf("peers gauge %d, want 2", got)
	}
}

func TestNackNotConnected(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	a, _ := startClient(t, r, nil)
	to := protocol.PeerAddr{Relay: r.addr, Mailbox: protocol.MailboxID{1, 2, 3}}
	err := a.Send(ctxT(t), to, []byte("x"))
	var ne *client.NackError
	if !errors.As(err, &ne) || ne.Reason != protocol.NackNotConnected || !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("got %v, want NackNotConnected", err)
	}
	if !strings.Contains(r.metricsText(t), `jitkey_relay_drops_total{reason="not-connected"} 1`) {
		t.Error("drop not counted")
	}
}

func TestNackTooLarge(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{MaxPayload: 1000}}, "")
	a, _ := startClient(t, r, nil)
	ctx := ctxT(t)
	t.Run("client refuses over protocol max", func(t *testing.T) {
		err := a.Send(ctx, a.Addr(), make([]byte, protocol.MaxRelayPayload+1))
		if !errors.Is(err, client.ErrTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("client refuses over relay max", func(t *testing.T) {
		if err := a.Send(ctx, a.Addr(), make([]byte, 1001)); !errors.Is(err, client.ErrTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	p := rawDial(t, r, "")
	w := p.auth(t)
	if w.MaxPayload != 1000 {
		t.Fatalf("welcome max payload %d", w.MaxPayload)
	}
	t.Run("relay refuses over its max", func(t *testing.T) {
		p.write(t, &protocol.RelaySend{Seq: 5, To: p.mailbox(), Payload: make([]byte, 1001)})
		if f, ok := p.read(t).(*protocol.RelayNack); !ok || f.Seq != 5 || f.Reason != protocol.NackTooLarge {
			t.Fatalf("got %#v", f)
		}
	})
	t.Run("relay skips over-long frame", func(t *testing.T) {
		// Declared body beyond MaxRelaySendBody: the relay skips it, says
		// TooLarge and keeps the connection.
		n := protocol.MaxRelaySendBody + 100
		b := []byte{byte(protocol.FrameSend), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 0, 0, 6}
		p.writeBytes(t, append(b, make([]byte, n-4)...))
		if f, ok := p.read(t).(*protocol.RelayNack); !ok || f.Seq != 6 || f.Reason != protocol.NackTooLarge {
			t.Fatalf("got %#v", f)
		}
		p.write(t, &protocol.RelaySend{Seq: 7, To: p.mailbox(), Payload: []byte("ok")})
		if f, ok := p.read(t).(*protocol.RelayDeliver); !ok || string(f.Payload) != "ok" {
			t.Fatalf("connection unusable after skip: %#v", f)
		}
		if f, ok := p.read(t).(*protocol.RelayAck); !ok || f.Seq != 7 {
			t.Fatalf("got %#v", f)
		}
	})
}

func TestNackRateLimited(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{SendRate: 0.01, SendBurst: 3}}, "")
	a, _ := startClient(t, r, nil)
	b, _ := startClient(t, r, nil)
	ctx := ctxT(t)
	for i := range 3 {
		if err := a.Send(ctx, b.Addr(), []byte{byte(i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	// The relay refuses the fourth; the client retries it until its
	// context ends and then reports both.
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := a.Send(sctx, b.Addr(), []byte("x"))
	cancel()
	if !errors.Is(err, client.ErrRateLimited) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrRateLimited and DeadlineExceeded", err)
	}
	if got := r.metric(t, `jitkey_relay_drops_total{reason="rate-limited"}`); got < 2 {
		t.Errorf("relay refused %d rate-limited sends, want the first and at least one retry", got)
	}
	// The limit is per sender: b is unaffected.
	if err := b.Send(ctx, a.Addr(), []byte("y")); err != nil {
		t.Fatal(err)
	}
}

// TestRateLimitedSendRetried: a burst above the sender's rate is slowed
// down by the client, not lost: every Send succeeds and the recipient gets
// every payload once, in order.
func TestRateLimitedSendRetried(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{SendRate: 100, SendBurst: 5}}, "")
	a, _ := startClient(t, r, nil)
	b, _ := startClient(t, r, nil)
	ctx := ctxT(t)
	const n = 40
	for i := range n {
		if err := a.Send(ctx, b.Addr(), []byte{byte(i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range n {
		m, err := b.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Payload) != 1 || m.Payload[0] != byte(i) {
			t.Fatalf("message %d: got %v", i, m.Payload)
		}
	}
	if got := r.metric(t, `jitkey_relay_drops_total{reason="rate-limited"}`); got == 0 {
		t.Error("the relay never refused a send: the test does not exceed the rate")
	}
}

// stalled authenticates a raw peer that never reads.
func stalled(t *testing.T, r *relay) *raw {
	p := rawDial(t, r, "")
	p.auth(t)
	return p
}

func TestNackQueueFull(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{QueueFrames: 2, SendRate: 1e6, SendBurst: 1e6}}, "")
	a, _ := startClient(t, r, nil)
	victim := stalled(t, r)
	to := protocol.PeerAddr{Relay: r.addr, Mailbox: victim.mailbox()}
	payload := make([]byte, protocol.MaxRelayPayload)
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		err = sendWithin(a, to, payload, 300*time.Millisecond)
	}
	if !errors.Is(err, client.ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
}

// sendWithin sends with a deadline: the client retries a Send refused for a
// full queue until its context ends, then fails with ErrQueueFull.
func sendWithin(c *client.Client, to protocol.PeerAddr, payload []byte, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Send(ctx, to, payload)
}

func TestLimitQueueBytes(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{QueueFrames: 1000, QueueBytes: 100 << 10, SendRate: 1e6, SendBurst: 1e6}}, "")
	a, _ := startClient(t, r, nil)
	victim := stalled(t, r)
	to := protocol.PeerAddr{Relay: r.addr, Mailbox: victim.mailbox()}
	var err error
	n := 0
	for ; n < 400 && err == nil; n++ {
		err = sendWithin(a, to, make([]byte, protocol.MaxRelayPayload), 300*time.Millisecond)
	}
	if !errors.Is(err, client.ErrQueueFull) {
		t.Fatalf("got %v after %d sends, want ErrQueueFull", err, n)
	}
}

func TestWriteTimeout(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{WriteTimeout: 300 * time.Millisecond, SendRate: 1e6, SendBurst: 1e6}}, "")
	a, _ := startClient(t, r, nil)
	victim := stalled(t, r)
	to := protocol.PeerAddr{Relay: r.addr, Mailbox: victim.mailbox()}
	ctx := ctxT(t)
	for i := 0; i < 100; i++ {
		if err := a.Send(ctx, to, make([]byte, protocol.MaxRelayPayload)); err != nil {
			break
		}
	}
	if code := victim.closedWith(t); code != protocol.RelayCloseSlowReader {
		t.Fatalf("close code %#x, want slow reader", code)
	}
	if err := a.Send(ctx, to, []byte("x")); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("after disconnect: %v", err)
	}
	// Sends acknowledged while the writer was stuck were dropped with the
	// connection: they are counted, not lost silently.
	if got := r.metric(t, `jitkey_relay_drops_total{reason="undelivered"}`); got == 0 {
		t.Error("frames queued to the closed peer were not counted as undelivered")
	}
}

func TestMailboxTakeover(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	key := newKey(t)
	old, oldRun := startClient(t, r, func(c *client.Config) { c.Identity = key })
	peer, _ := startClient(t, r, nil)
	newer, _ := startClient(t, r, func(c *client.Config) { c.Identity = key })
	select {
	case err := <-oldRun:
		if !errors.Is(err, client.ErrReplaced) {
			t.Fatalf("old Run returned %v, want ErrReplaced", err)
		}
		oldRun <- err
	case <-time.After(5 * time.Second):
		t.Fatal("old connection not replaced")
	}
	if err := peer.Send(ctxT(t), newer.Addr(), []byte("to newest")); err != nil {
		t.Fatal(err)
	}
	if m := relaytest.Recv(t, newer); string(m.Payload) != "to newest" {
		t.Fatalf("got %q", m.Payload)
	}
	if old.Addr() != newer.Addr() {
		t.Fatal("same key, different address")
	}
	if got := r.metric(t, "jitkey_relay_mailbox_replaced_total"); got != 1 {
		t.Errorf("replaced metric %d", got)
	}
}

func TestAuthFailures(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{HandshakeTimeout: 500 * time.Millisecond}}, "")
	tests := []struct {
		name string
		do   func(t *testing.T, p *raw)
	}{
		{"wrong key", func(t *testing.T, p *raw) {
			p.write(t, hello(p.key, newKey(t), p.exporter(t)))
		}},
		{"exporter of another connection", func(t *testing.T, p *raw) {
			other := rawDial(t, r, "")
			p.write(t, hello(p.key, p.key, other.exporter(t)))
		}},
		{"wrong exporter label", func(t *testing.T, p *raw) {
			st := p.conn.ConnectionState().TLS
			e, _ := st.ExportKeyingMaterial("EXPORTER-other", nil, 32)
			p.write(t, hello(p.key, p.key, e))
		}},
		{"first frame not hello", func(t *testing.T, p *raw) {
			p.write(t, &protocol.RelaySend{Seq: 1, Payload: []byte("x")})
		}},
		{"malformed hello", func(t *testing.T, p *raw) {
			b, _ := protocol.EncodeRelayFrame(hello(p.key, p.key, p.exporter(t)))
			b[5] = 9 // version
			p.writeBytes(t, b)
		}},
		{"no hello in time", func(t *testing.T, p *raw) {
			p.writeBytes(t, []byte{byte(protocol.FrameHello)}) // opens the stream, never completes
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.metric(t, "jitkey_relay_auth_failures_total")
			p := rawDial(t, r, "")
			tt.do(t, p)
			if code := p.closedWith(t); code != protocol.RelayCloseAuthFailed {
				t.Fatalf("close code %#x, want auth failed", code)
			}
			if got := r.metric(t, "jitkey_relay_auth_failures_total"); got <= before {
				t.Fatalf("auth failure not counted (%d)", got)
			}
		})
	}
	if got := r.metric(t, "jitkey_relay_peers"); got != 0 {
		t.Fatalf("%d peers registered after failed auth", got)
	}
}

func TestWrongPin(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	other := startRelay(t, server.Config{}, "")
	a, _ := startClient(t, r, nil) // pins r only
	err := a.Send(ctxT(t), protocol.PeerAddr{Relay: other.addr, Mailbox: protocol.MailboxID{1}}, []byte("x"))
	if !errors.Is(err, client.ErrPin) {
		t.Fatalf("got %v, want ErrPin", err)
	}
	if got := other.metric(t, "jitkey_relay_peers"); got != 0 {
		t.Fatal("peer registered despite pin mismatch")
	}
}

func TestMalformedFrames(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{MaxOversizeDiscard: 200 << 10}}, "")
	send, _ := protocol.EncodeRelayFrame(&protocol.RelaySend{Seq: 1, Payload: []byte("p")})
	tests := []struct {
		name string
		b    []byte
	}{
		{"unknown type", []byte{0x7f, 0, 0, 0, 0}},
		{"relay-only frame from peer", []byte{byte(protocol.FrameAck), 0, 0, 0, 4, 0, 0, 0, 1}},
		{"second hello", func() []byte { b, _ := protocol.EncodeRelayFrame(&protocol.RelayHello{}); return b }()},
		{"ticket length overruns body", func() []byte { b := bytes.Clone(send); b[5+37] = 50; return b }()},
		{"short send", []byte{byte(protocol.FrameSend), 0, 0, 0, 3, 1, 2, 3}},
		{"ping with bad length", []byte{byte(protocol.FramePing), 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"over-long beyond discard bound", []byte{byte(protocol.FrameSend), 0, 0x10, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := rawDial(t, r, "")
			p.auth(t)
			p.writeBytes(t, tt.b)
			if code := p.closedWith(t); code != protocol.RelayCloseProtocol {
				t.Fatalf("close code %#x, want protocol error", code)
			}
		})
	}
	if !strings.Contains(r.metricsText(t), `jitkey_relay_drops_total{reason="malformed"} 7`) {
		t.Errorf("malformed drops not counted:\n%s", r.metricsText(t))
	}
}

func TestPingPong(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	p := rawDial(t, r, "")
	p.auth(t)
	// Several Pings back to back, each with its own data in every byte:
	// the Pong is built in place, and a stale or shifted copy would show.
	for i := range byte(3) {
		p.write(t, &protocol.RelayPing{Data: [8]byte{9 + i, 8, 7, 6, 5, 4, 3, 2 + i}})
	}
	// A peer's Pong is checked and dropped, not answered.
	p.write(t, &protocol.RelayPong{Data: [8]byte{1}})
	p.write(t, &protocol.RelayPing{Data: [8]byte{0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0}})
	want := [][8]byte{{9, 8, 7, 6, 5, 4, 3, 2}, {10, 8, 7, 6, 5, 4, 3, 3}, {11, 8, 7, 6, 5, 4, 3, 4}, {0xff, 0, 0xff, 0, 0xff, 0, 0xff, 0}}
	for _, w := range want {
		if f, ok := p.read(t).(*protocol.RelayPong); !ok || f.Data != w {
			t.Fatalf("got %#v, want Pong %v", f, w)
		}
	}
}

func TestLimitConnsPerAddr(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{ConnsPerAddr: 2}}, "")
	rawDial(t, r, "127.0.0.1:0")
	rawDial(t, r, "127.0.0.1:0")
	if err := tryDial(r, "127.0.0.1:0"); err == nil {
		t.Fatal("third connection from one address accepted")
	}
	if err := tryDial(r, "127.0.0.2:0"); err != nil {
		t.Fatalf("connection from another address refused: %v", err)
	}
	if !strings.Contains(r.metricsText(t), `jitkey_relay_connections_refused_total{reason="per_addr"}`) {
		t.Errorf("refusal not counted:\n%s", r.metricsText(t))
	}
}

func TestLimitAcceptRate(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{AcceptRate: 0.001, AcceptBurst: 2}}, "")
	rawDial(t, r, "")
	rawDial(t, r, "")
	if err := tryDial(r, ""); err == nil {
		t.Fatal("connection beyond the accept rate accepted")
	}
	if !strings.Contains(r.metricsText(t), `jitkey_relay_connections_refused_total{reason="accept_rate"}`) {
		t.Errorf("refusal not counted:\n%s", r.metricsText(t))
	}
}

func TestIdleTimeoutAndKeepAlive(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{IdleTimeout: 400 * time.Millisecond}}, "")
	silent := rawDial(t, r, "")
	silent.auth(t)
	kept, _ := startClient(t, r, func(c *client.Config) { c.KeepAlive = 100 * time.Millisecond })
	start := time.Now()
	// An idle timeout closes silently, so watch the relay's peer table: the
	// silent peer leaves it, the kept-alive one stays.
	waitGone(t, r, 1)
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("closed before the idle timeout")
	}
	time.Sleep(600 * time.Millisecond)
	if err := kept.Send(ctxT(t), kept.Addr(), []byte("alive")); err != nil {
		t.Fatalf("kept-alive client lost its connection: %v", err)
	}
	relaytest.Recv(t, kept)
}

func TestHandshakeTimeout(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{HandshakeTimeout: 300 * time.Millisecond}}, "")
	// Connect but never open the stream.
	p := rawDialNoStream(t, r)
	select {
	case <-p.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection without hello not closed")
	}
	if got := r.metric(t, "jitkey_relay_auth_failures_total"); got != 1 {
		t.Fatalf("auth failures %d", got)
	}
}

func TestShutdownGoAway(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	a, _ := startClient(t, r, nil)
	p := rawDial(t, r, "")
	p.auth(t)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Shutdown(ctx) }()
	g, ok := p.read(t).(*protocol.RelayGoAway)
	if !ok || g.Reason != protocol.GoAwayShutdown {
		t.Fatalf("got %#v, want GoAway", g)
	}
	// A peer that ignores GoAway is refused new sends while draining...
	p.write(t, &protocol.RelaySend{Seq: 3, To: a.Addr().Mailbox, Payload: []byte("late")})
	if f, ok := p.read(t).(*protocol.RelayNack); !ok || f.Reason != protocol.NackShuttingDown {
		t.Fatalf("got %#v, want NackShuttingDown", f)
	}
	// ...and closed when the drain bound expires.
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want drain deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("drain took %v", d)
	}
	if code := p.closedWith(t); code != protocol.RelayCloseShutdown {
		t.Fatalf("close code %#x", code)
	}
}

func TestShutdownDrainsPromptly(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	for range 5 {
		startClient(t, r, nil)
	}
	start := time.Now()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown with cooperative peers: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("drain took %v", d)
	}
}

func TestReconnectAfterRestart(t *testing.T) {
	cfg := func() server.Config { return server.Config{Rand: newSeeded(42)} }
	r1 := startRelay(t, cfg(), "")
	addr := r1.addr
	a, _ := startClient(t, r1, nil)
	b, _ := startClient(t, r1, nil)
	if err := r1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	r2 := startRelay(t, cfg(), addr)
	if r2.Pin() != r1.Pin() {
		t.Fatal("restarted relay has another pin")
	}
	ctx := ctxT(t)
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// WaitConnected may see the old connection until the client notices;
	// retry briefly.
	var err error
	for range 50 {
		if err = a.Send(ctx, b.Addr(), []byte("again")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if m := relaytest.Recv(t, b); string(m.Payload) != "again" {
		t.Fatalf("got %q", m.Payload)
	}
}

func TestCrossRelay(t *testing.T) {
	r1 := startRelay(t, server.Config{}, "")
	r2 := startRelay(t, server.Config{}, "")
	a, _ := startClient(t, r1, nil, r2.pin())
	b, _ := startClient(t, r2, nil, r1.pin())
	ctx := ctxT(t)
	if err := a.Send(ctx, b.Addr(), []byte("across")); err != nil {
		t.Fatal(err)
	}
	m := relaytest.Recv(t, b)
	if string(m.Payload) != "across" || m.From.Mailbox != a.Addr().Mailbox || m.From.Relay != r2.addr {
		t.Fatalf("got %q from %v", m.Payload, m.From)
	}
	if err := b.Send(ctx, m.From, []byte("back")); err != nil {
		t.Fatalf("reply via delivering relay: %v", err)
	}
	if m := relaytest.Recv(t, a); string(m.Payload) != "back" || m.From != b.Addr() {
		t.Fatalf("got %q from %v", m.Payload, m.From)
	}
	// The foreign connection is reused, not redialed.
	if err := a.Send(ctx, b.Addr(), []byte("again")); err != nil {
		t.Fatal(err)
	}
	relaytest.Recv(t, b)
	if got := r2.metric(t, "jitkey_relay_connections_accepted_total"); got != 2 {
		t.Fatalf("r2 accepted %d connections, want 2", got)
	}
}

type gateway struct {
	mu     sync.Mutex
	bodies []string
	status int
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	g.bodies = append(g.bodies, string(b))
	st := g.status
	g.mu.Unlock()
	w.WriteHeader(st)
}

func TestPushWake(t *testing.T) {
	gw := &gateway{status: 200}
	hs := httptest.NewServer(gw)
	defer hs.Close()
	now := time.Now()
	r := startRelay(t, server.Config{Waker: &push.Webhook{URL: hs.URL}, Now: func() time.Time { return now }}, "")
	a, _ := startClient(t, r, nil)
	phone, _ := startClient(t, r, nil)
	token := []byte("apns-device-token")
	ticket, err := phone.SealPushTicket(token, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := phone.SealPushTicket(token, now.Add(-time.Minute))
	otherMailbox, _ := a.SealPushTicket(token, now.Add(time.Hour))
	phoneAddr := phone.Addr()
	ctx := ctxT(t)
	// Connected: delivered normally, no wake-up.
	if err := a.SendWake(ctx, phoneAddr, ticket, []byte("secret-approval")); err != nil {
		t.Fatal(err)
	}
	relaytest.Recv(t, phone)
	phone.Close()
	waitGone(t, r, 1)
	t.Run("wake sent", func(t *testing.T) {
		err := a.SendWake(ctx, phoneAddr, ticket, []byte("secret-approval"))
		if !errors.Is(err, client.ErrWakeSent) || !errors.Is(err, client.ErrNotConnected) {
			t.Fatalf("got %v, want ErrWakeSent", err)
		}
		gw.mu.Lock()
		defer gw.mu.Unlock()
		if len(gw.bodies) != 1 || strings.Contains(gw.bodies[0], "secret") || !strings.Contains(gw.bodies[0], `"type":"wake"`) {
			t.Fatalf("gateway got %q", gw.bodies)
		}
	})
	for _, tt := range []struct {
		name   string
		ticket []byte
		status int
	}{
		{"gateway error", ticket, 500},
		{"expired ticket", expired, 200},
		{"ticket for another mailbox", otherMailbox, 200},
		{"garbage ticket", []byte("not a ticket"), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw.mu.Lock()
			gw.status = tt.status
			gw.mu.Unlock()
			if err := a.SendWake(ctx, phoneAddr, tt.ticket, []byte("x")); !errors.Is(err, client.ErrPushFailed) {
				t.Fatalf("got %v, want ErrPushFailed", err)
			}
		})
	}
	if got := r.metric(t, "jitkey_relay_push_failures_total"); got != 4 {
		t.Errorf("push failures %d, want 4", got)
	}
	if got := r.metric(t, "jitkey_relay_push_wakes_total"); got != 1 {
		t.Errorf("push wakes %d, want 1", got)
	}
	// Without a ticket it is a plain NotConnected.
	if err := a.Send(ctx, phoneAddr, []byte("x")); !errors.Is(err, client.ErrNotConnected) || errors.Is(err, client.ErrPushFailed) {
		t.Fatalf("got %v", err)
	}
}

func waitGone(t *testing.T, r *relay, want int64) {
	t.Helper()
	for range 100 {
		if r.metric(t, "jitkey_relay_peers") == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("peers did not drop to %d", want)
}

func TestNoSecretsInLogs(t *testing.T) {
	r := startRelay(t, server.Config{}, "")
	key := newKey(t)
	a, _ := startClient(t, r, func(c *client.Config) { c.Identity = key })
	b, _ := startClient(t, r, nil)
	marker := "PAYLOAD-MARKER-7f3a"
	if err := a.Send(ctxT(t), b.Addr(), []byte(marker)); err != nil {
		t.Fatal(err)
	}
	relaytest.Recv(t, b)
	p := rawDial(t, r, "")
	p.write(t, hello(p.key, key, p.exporter(t))) // a failed auth is logged
	p.closedWith(t)
	logs := r.logs.String()
	if !strings.Contains(logs, "authentication failed") {
		t.Fatalf("expected auth failure in logs:\n%s", logs)
	}
	for _, secret := range []string{marker, hex.EncodeToString(key.Seed()), hex.EncodeToString(key[32:])} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains %q", secret)
		}
	}
}
