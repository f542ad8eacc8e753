package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/server"
)

// fakeWaker records wake-ups; while hold is set, each call blocks until
// the test closes hold.
type fakeWaker struct {
	mu      sync.Mutex
	tokens  []string
	started chan struct{} // gets a value when a call starts, if set
	hold    chan struct{}
}

func (w *fakeWaker) Wake(ctx context.Context, token []byte) error {
	w.mu.Lock()
	w.tokens = append(w.tokens, string(token))
	started, hold := w.started, w.hold
	w.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (w *fakeWaker) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.tokens)
}

// offlinePhone connects a phone, seals a ticket for each token, and
// disconnects it; others is the number of peers that stay connected.
func offlinePhone(t *testing.T, r *relay, others int64, now time.Time, tokens ...string) (*client.Client, [][]byte) {
	t.Helper()
	phone, _ := startClient(t, r, nil)
	var tickets [][]byte
	for _, tok := range tokens {
		tk, err := phone.SealPushTicket([]byte(tok), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	waitGone(t, r, others+1) // the relay counts the phone (waitGone waits for a value)
	phone.Close()
	waitGone(t, r, others)
	return phone, tickets
}

// TestPushTicketBeforeCapacity checks that a ticket is opened before a
// gateway slot is taken (RL-20): a garbage ticket is refused as such even
// while every slot is busy, and never holds one.
func TestPushTicketBeforeCapacity(t *testing.T) {
	now := time.Now()
	w := &fakeWaker{started: make(chan struct{}, 1), hold: make(chan struct{})}
	r := startRelay(t, server.Config{Waker: w, Now: func() time.Time { return now }, Limits: server.Limits{MaxPushInFlight: 1}}, "")
	a, _ := startClient(t, r, nil)
	phone, tickets := offlinePhone(t, r, 1, now, "token-1")
	first := make(chan error, 1)
	go func() { first <- a.SendWake(ctxT(t), phone.Addr(), tickets[0], []byte("x")) }()
	<-w.started // the only gateway slot is taken
	err := a.SendWake(ctxT(t), phone.Addr(), []byte("garbage ticket"), []byte("x"))
	if !errors.Is(err, client.ErrPushFailed) {
		t.Fatalf("garbage ticket: %v, want ErrPushFailed", err)
	}
	if strings.Contains(r.logs.String(), "push capacity exhausted") {
		t.Fatal("garbage ticket was refused for want of a gateway slot, so it had been going to take one")
	}
	if got := r.metricSum(t, "jitkey_relay_push_refused_total", `reason="bad_ticket"`); got != 1 {
		t.Fatalf("bad_ticket refusals %d, want 1:\n%s", got, r.metricsText(t))
	}
	if got := r.metricSum(t, "jitkey_relay_push_refused_total", `reason="capacity"`); got != 0 {
		t.Fatalf("capacity refusals %d, want 0", got)
	}
	close(w.hold)
	if err := <-first; !errors.Is(err, client.ErrWakeSent) {
		t.Fatalf("held wake-up: %v, want ErrWakeSent", err)
	}
	if got := w.calls(); got != 1 {
		t.Fatalf("gateway calls %d, want 1", got)
	}
}

// TestPushWakeRateLimits checks the wake-up limits per sender and per
// gateway token (RL-30): beyond them the Send is answered rate-limited,
// without a gateway call. The clock stands still, so no bucket refills.
func TestPushWakeRateLimits(t *testing.T) {
	now := time.Now()
	w := &fakeWaker{}
	r := startRelay(t, server.Config{Waker: w, Now: func() time.Time { return now }, Limits: server.Limits{WakeBurstPerSender: 2, WakeBurstPerToken: 3}}, "")
	a, _ := startClient(t, r, nil)
	b, _ := startClient(t, r, nil)
	c, _ := startClient(t, r, nil)
	phone, tk := offlinePhone(t, r, 3, now, "A", "B", "C")
	to := phone.Addr()
	// A refused wake-up is retried until the context ends: give the
	// ones expected to be refused a short one, the others a long one.
	wake := func(s *client.Client, ticket []byte, refused bool) error {
		d := 10 * time.Second
		if refused {
			d = 300 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return s.SendWake(ctx, to, ticket, []byte("x"))
	}
	for i, step := range []struct {
		name   string
		from   *client.Client
		ticket []byte
		want   error
	}{
		{"a wakes A", a, tk[0], client.ErrWakeSent},
		{"a wakes B", a, tk[1], client.ErrWakeSent},
		{"a beyond its sender burst", a, tk[2], client.ErrRateLimited},
		{"b wakes A", b, tk[0], client.ErrWakeSent},
		{"c wakes A", c, tk[0], client.ErrWakeSent},
		{"b beyond A's token burst", b, tk[0], client.ErrRateLimited},
		{"b still has a wake for C", b, tk[2], client.ErrWakeSent},
	} {
		if err := wake(step.from, step.ticket, step.want == client.ErrRateLimited); !errors.Is(err, step.want) {
			t.Fatalf("step %d, %s: %v, want %v", i, step.name, err, step.want)
		}
	}
	if got := w.calls(); got != 5 {
		t.Fatalf("gateway calls %d, want 5", got)
	}
	for _, reason := range []string{"sender_rate", "token_rate"} {
		if got := r.metricSum(t, "jitkey_relay_push_refused_total", `reason="`+reason+`"`); got < 1 {
			t.Fatalf("%s refusals %d:\n%s", reason, got, r.metricsText(t))
		}
	}
}
