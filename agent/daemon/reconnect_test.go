package daemon

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
)

// fakeOnline is a relay's Online: a state and a channel closed at each
// change.
type fakeOnline struct {
	mu      sync.Mutex
	on      bool
	changed chan struct{}
}

func (f *fakeOnline) Online() (bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on, f.changed
}

func (f *fakeOnline) set(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = on
	close(f.changed)
	f.changed = make(chan struct{})
}

// TestShipOnReconnect: the shipper is poked when the relay connection
// comes up, at the first connection and after each outage, and not when
// it goes down or while it stays up.
func TestShipOnReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOnline{changed: make(chan struct{})}
		pokes := 0
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			shipOnReconnect(ctx, f.Online, func() { pokes++ })
			close(done)
		}()
		step := func(on bool, want int) {
			t.Helper()
			f.set(on)
			synctest.Wait()
			if pokes != want {
				t.Fatalf("after online=%v: %d pokes, want %d", on, pokes, want)
			}
		}
		synctest.Wait()
		if pokes != 0 {
			t.Fatalf("poked while offline: %d", pokes)
		}
		step(true, 1)  // first connection
		step(true, 1)  // another change, still up (a new connection noticed at once)
		step(false, 1) // outage
		step(false, 1)
		step(true, 2) // back: the offline journal goes now
		cancel()
		<-done
	})
}

// TestShipOnReconnectAlwaysUp: a relay without Online (always up) gives
// one poke and the watcher returns.
func TestShipOnReconnectAlwaysUp(t *testing.T) {
	pokes := 0
	shipOnReconnect(t.Context(), func() (bool, <-chan struct{}) { return true, nil }, func() { pokes++ })
	if pokes != 1 {
		t.Fatalf("%d pokes, want 1", pokes)
	}
}
