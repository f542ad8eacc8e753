package ipcserver

import (
	"testing"
	"time"
)

// TestUserLimiterOpen: at most UserMaxOpen logins of one user at a time;
// release frees one (once, however often it is called) and forgets an
// idle user after its window.
func TestUserLimiterOpen(t *testing.T) {
	var l userLimiter
	now := time.Unix(1_800_000_000, 0)
	var rel []func()
	for range UserMaxOpen {
		r, ok := l.take("a", now)
		if !ok {
			t.Fatal("refused under the limit")
		}
		rel = append(rel, r)
	}
	if _, ok := l.take("a", now); ok {
		t.Fatal("admitted over UserMaxOpen")
	}
	if _, ok := l.take("b", now); !ok {
		t.Fatal("another user refused")
	}
	rel[0]()
	rel[0]() // idempotent: frees one slot, not two
	r, ok := l.take("a", now)
	if !ok {
		t.Fatal("refused after a release")
	}
	if _, ok := l.take("a", now); ok {
		t.Fatal("a double release freed two slots")
	}
	r()
	rel[1]()
	if _, ok := l.take("c", now.Add(UserWindow)); !ok {
		t.Fatal("c refused")
	}
	// "a" has nothing open; its begins are pruned at its next take.
	if r, ok := l.take("a", now.Add(UserWindow)); !ok {
		t.Fatal("a refused after the window")
	} else {
		r()
	}
	if u := l.users["a"]; u == nil || len(u.begun) != 1 || u.open != 0 {
		t.Fatalf("a's entry: %+v", u)
	}
}
