package audit_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// TestShipRetry: with the console unreachable and records pending, the
// shipper retries after 1 s, doubling to 30 s, not at the next 30 s tick; a
// new record is tried at once; a success resets the delay.
func TestShipRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		msp := agenttest.NewMSP(t, "acme")
		a := agenttest.NewAgent(t, msp, nil, store.Config{})
		appendN(t, a, 1)

		start := time.Now()
		var mu sync.Mutex
		var dials []time.Duration // since start
		sh := audit.NewShipper(audit.ShipperConfig{
			Store:    a.Store,
			Interval: time.Hour, // only retries and pokes below
			Dial: func(ctx context.Context) (*channel.Conn, error) {
				mu.Lock()
				dials = append(dials, time.Since(start))
				mu.Unlock()
				return nil, errors.New("console unreachable")
			},
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { sh.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		check := func(at time.Duration, want ...time.Duration) {
			t.Helper()
			time.Sleep(time.Until(start.Add(at)))
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			for i := range want {
				want[i] *= time.Second
			}
			if !slices.Equal(dials, want) {
				t.Fatalf("at %v: dials at %v, want %v", at, dials, want)
			}
		}
		check(0, 0)
		check(999*time.Millisecond, 0)
		check(time.Second, 0, 1)
		check(61*time.Second, 0, 1, 3, 7, 15, 31, 61) // capped at 30 s
		check(90*time.Second, 0, 1, 3, 7, 15, 31, 61)

		// A new record is shipped at once, whatever the back-off.
		sh.Poke()
		check(90*time.Second, 0, 1, 3, 7, 15, 31, 61, 90)

		// The console acknowledged everything (another way): the next
		// attempt succeeds without dialling and resets the delay.
		if err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
			seq, _, err := tx.LastAudit()
			if err != nil {
				return err
			}
			return tx.AckAudit(seq)
		}); err != nil {
			t.Fatal(err)
		}
		check(125*time.Second, 0, 1, 3, 7, 15, 31, 61, 90)
		appendN(t, a, 1)
		sh.Poke()
		check(125*time.Second, 0, 1, 3, 7, 15, 31, 61, 90, 125)
		check(126*time.Second, 0, 1, 3, 7, 15, 31, 61, 90, 125, 126)
	})
}

// TestShipBacklog: a backlog of records too large for one batch of
// MaxBatch records (the console would refuse it as too large) ships
// completely, in batches cut by size, each within MaxBatchBytes.
func TestShipBacklog(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	const n = 1000
	if err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
		for i := range n {
			reason := fmt.Sprintf("%04d ", i) + strings.Repeat("no such account on this computer ", 8+i%64)
			if err := a.Audit.Append(tx, protocol.AuditRecord{Event: audit.LoginDenied, Username: "nik", Reason: reason}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	net := channeltest.NewNetwork()
	cid, cnk := agenttest.NewConsoleKeys(t)
	caddr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: protocol.MailboxFor(cid.Public().(ed25519.PublicKey))}
	var mu sync.Mutex
	var got []protocol.AuditRecord
	var sizes []int
	var head [32]byte
	cpeer := net.Join(caddr)
	console := channel.New(channel.Config{
		Relay: cpeer, Static: cnk,
		Accept: func(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
			return nil, a.Keys.NoisePublic(), nil
		},
		Handle: func(ctx context.Context, conn *channel.Conn) {
			for {
				var b protocol.AuditBatch
				if err := conn.Recv(ctx, protocol.MsgAuditBatch, &b); err != nil {
					return
				}
				enc, err := protocol.Marshal(&b)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sizes = append(sizes, len(enc))
				recs, err := audit.Verify(a.Keys.IdentityPublic(), uint64(len(got)), head, b.Records)
				if err != nil {
					t.Error(err)
				}
				got = append(got, recs...)
				if len(recs) > 0 {
					head, _ = b.Records[len(recs)-1].Hash()
				}
				upTo := uint64(len(got))
				mu.Unlock()
				if err := conn.Send(ctx, protocol.MsgAuditAck, &protocol.AuditAck{UpTo: upTo}); err != nil {
					return
				}
			}
		},
	})
	agenttest.Pump(t, console, cpeer.Recv)
	apeer := net.Join(protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: a.Keys.Mailbox()})
	mux := channel.New(channel.Config{Relay: apeer, Static: a.Keys.Noise})
	agenttest.Pump(t, mux, apeer.Recv)

	var cpub protocol.NoiseKey
	copy(cpub[:], cnk.Public)
	sh := audit.NewShipper(audit.ShipperConfig{
		Store: a.Store,
		Dial: func(ctx context.Context) (*channel.Conn, error) {
			return mux.Dial(ctx, channel.DialConfig{To: caddr, Flow: protocol.FlowAudit, PeerStatic: cpub})
		},
		Status: func() (uint64, string, string) { return 7, strings.Repeat("n", protocol.MaxNameLen), "linux" },
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := sh.ShipOnce(ctx); err != nil {
		t.Fatalf("ShipOnce: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n || got[n-1].Seq != n {
		t.Fatalf("console holds %d records, want %d", len(got), n)
	}
	if len(sizes) < 10 {
		t.Fatalf("%d batches %v, want records spread over more batches", len(sizes), sizes)
	}
	for i, s := range sizes {
		if s > audit.MaxBatchBytes {
			t.Errorf("batch %d: %d bytes > MaxBatchBytes %d", i, s, audit.MaxBatchBytes)
		}
		if i < len(sizes)-1 && s < audit.MaxBatchBytes-6<<10 {
			t.Errorf("batch %d: %d bytes, far below MaxBatchBytes %d", i, s, audit.MaxBatchBytes)
		}
	}
	var left int
	if err := a.Store.View(t.Context(), func(tx *store.Tx) error {
		rows, err := tx.Audit(0, n, true)
		left = len(rows)
		return err
	}); err != nil || left != 0 {
		t.Fatalf("%d records unacknowledged (%v)", left, err)
	}
}

// TestHeartbeat: with nothing to ship, a shipper with a Heartbeat sends an
// empty batch when nothing was acknowledged for that long (an idle agent
// stays in contact with the console), passes the ack to OnAck, and then
// stays quiet until the next heartbeat is due; without one it sends
// nothing.
func TestHeartbeat(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	net := channeltest.NewNetwork()
	cid, cnk := agenttest.NewConsoleKeys(t)
	caddr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: protocol.MailboxFor(cid.Public().(ed25519.PublicKey))}
	var mu sync.Mutex
	batches := 0
	cpeer := net.Join(caddr)
	console := channel.New(channel.Config{
		Relay: cpeer, Static: cnk,
		Accept: func(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
			return nil, a.Keys.NoisePublic(), nil
		},
		Handle: func(ctx context.Context, conn *channel.Conn) {
			var b protocol.AuditBatch
			if err := conn.Recv(ctx, protocol.MsgAuditBatch, &b); err != nil {
				return
			}
			mu.Lock()
			batches++
			mu.Unlock()
			ack := protocol.AuditAck{OfflineSecrets: []protocol.TenantSecret{{Tenant: "acme", Secret: make([]byte, 32), Generation: 3}}}
			_ = conn.Send(ctx, protocol.MsgAuditAck, &ack)
		},
	})
	agenttest.Pump(t, console, cpeer.Recv)
	apeer := net.Join(protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: a.Keys.Mailbox()})
	mux := channel.New(channel.Config{Relay: apeer, Static: a.Keys.Noise})
	agenttest.Pump(t, mux, apeer.Recv)
	var cpub protocol.NoiseKey
	copy(cpub[:], cnk.Public)
	clock := agenttest.NewClock(time.Now())
	acks := 0
	shipper := func(heartbeat time.Duration) *audit.Shipper {
		return audit.NewShipper(audit.ShipperConfig{
			Store: a.Store, Heartbeat: heartbeat, Now: clock.Now,
			Dial: func(ctx context.Context) (*channel.Conn, error) {
				return mux.Dial(ctx, channel.DialConfig{To: caddr, Flow: protocol.FlowAudit, PeerStatic: cpub})
			},
			OnAck: func(_ context.Context, ack *protocol.AuditAck) {
				if len(ack.OfflineSecrets) == 1 && ack.OfflineSecrets[0].Generation == 3 {
					acks++
				}
			},
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return batches }
	if err := shipper(0).ShipOnce(t.Context()); err != nil || count() != 0 {
		t.Fatalf("without a heartbeat: %v, %d batches", err, count())
	}
	sh := shipper(time.Hour)
	for i, step := range []struct {
		advance time.Duration
		want    int
	}{{0, 1}, {time.Minute, 1}, {time.Hour, 2}} {
		clock.Add(step.advance)
		if err := sh.ShipOnce(t.Context()); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if count() != step.want || acks != step.want {
			t.Fatalf("round %d: %d batches, %d acks seen, want %d", i, count(), acks, step.want)
		}
	}
}
