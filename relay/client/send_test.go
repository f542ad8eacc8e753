package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/server"
)

const queueFullDrops = `jitkey_relay_drops_total{reason="queue-full"}`

// queueLimits make a recipient's relay queue fill after two frames, and
// keep a recipient that does not read connected (no slow-reader close).
var queueLimits = server.Limits{QueueFrames: 2, SendRate: 1e6, SendBurst: 1e6, WriteTimeout: time.Minute}

// TestQueueFullSendRetried: the recipient reads only once the relay has
// refused a Send for its full queue. The refused Send is retried, not
// lost: every Send succeeds, and the recipient gets every payload once, in
// order.
func TestQueueFullSendRetried(t *testing.T) {
	t.Cleanup(func() { checkNoClientGoroutines(t) })
	r := startRelay(t, queueLimits, "127.0.0.1:0")
	home := "127.0.0.1:" + r.port
	pins := [][32]byte{r.Pin()}
	a, _ := runClient(t, home, pins, nil)
	b, _ := runClient(t, home, pins, func(c *client.Config) { c.RecvQueue = 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// More than QUIC's largest receive window (6 MiB in quic-go), so that
	// the relay's queue for b fills while b does not read.
	const n = 120
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, protocol.MaxRelayPayload) }
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			if err := a.Send(ctx, b.Addr(), payload(i)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for r.metric(t, queueFullDrops) == 0 {
		select {
		case err := <-sent:
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			t.Fatal("every send was taken at once: the test does not fill the queue")
		case <-ctx.Done():
			t.Fatal("the relay never refused a send for a full queue")
		case <-time.After(10 * time.Millisecond):
		}
	}
	for i := range n {
		m, err := b.Recv(ctx)
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if !bytes.Equal(m.Payload, payload(i)) {
			t.Fatalf("message %d: got %d bytes of %d", i, len(m.Payload), m.Payload[0])
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
}

// TestQueueFullSendGivesUp: the recipient never reads. The Send refused
// for its full queue is retried until its context ends, and then fails
// with an error that names the reason and the context's.
func TestQueueFullSendGivesUp(t *testing.T) {
	t.Cleanup(func() { checkNoClientGoroutines(t) })
	r := startRelay(t, queueLimits, "127.0.0.1:0")
	home := "127.0.0.1:" + r.port
	pins := [][32]byte{r.Pin()}
	a, _ := runClient(t, home, pins, nil)
	b, _ := runClient(t, home, pins, func(c *client.Config) { c.RecvQueue = 1 })

	var err error
	var took time.Duration
	for i := 0; i < 400 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err = a.Send(ctx, b.Addr(), make([]byte, protocol.MaxRelayPayload))
		took = time.Since(start)
		cancel()
	}
	var ne *client.NackError
	if !errors.As(err, &ne) || ne.Reason != protocol.NackQueueFull || !errors.Is(err, client.ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a queue-full Nack and DeadlineExceeded", err)
	}
	if took < 250*time.Millisecond {
		t.Errorf("the refused send returned after %v, before its context ended", took)
	}
	if got := r.metric(t, queueFullDrops); got < 2 {
		t.Errorf("relay refused %d sends for a full queue, want the first and at least one retry", got)
	}
}

// TestNackNotRetried: a Send to a recipient that is not connected fails at
// once, even without a deadline, so that the caller can wake it or report
// it offline; so does one too large for the relay.
func TestNackNotRetried(t *testing.T) {
	t.Cleanup(func() { checkNoClientGoroutines(t) })
	r := startRelay(t, server.Limits{MaxPayload: 1000}, "127.0.0.1:0")
	home := "127.0.0.1:" + r.port
	a, _ := runClient(t, home, [][32]byte{r.Pin()}, nil)
	tests := []struct {
		name    string
		to      protocol.PeerAddr
		payload []byte
		want    error
	}{
		{"not connected", protocol.PeerAddr{Relay: home, Mailbox: protocol.MailboxID{1}}, []byte("x"), client.ErrNotConnected},
		{"too large", a.Addr(), make([]byte, 1001), client.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := a.Send(context.Background(), tt.to, tt.payload)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
	if got := r.metric(t, `jitkey_relay_drops_total{reason="not-connected"}`); got != 1 {
		t.Errorf("relay refused %d sends as not connected, want 1 (no retry)", got)
	}
}
