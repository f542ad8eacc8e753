package audit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
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
			time.Sleep(start.Add(at).Sub(time.Now()))
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
