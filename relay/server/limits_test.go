package server

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

func TestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket(2, 3) // 2 per second, burst 3
		for i := range 3 {
			if !b.allow(time.Now()) {
				t.Fatalf("burst token %d refused", i)
			}
		}
		if b.allow(time.Now()) {
			t.Fatal("allowed beyond burst")
		}
		time.Sleep(500 * time.Millisecond)
		if !b.allow(time.Now()) {
			t.Fatal("token not refilled after 1/rate")
		}
		if b.allow(time.Now()) {
			t.Fatal("refilled too much")
		}
		time.Sleep(time.Hour)
		n := 0
		for b.allow(time.Now()) {
			n++
		}
		if n != 3 {
			t.Fatalf("refill capped at %d, want burst 3", n)
		}
	})
}

func TestAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAdmission(Limits{AcceptRate: 1, AcceptBurst: 3, ConnsPerAddr: 2})
		ip1, ip2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
		for i := range 2 {
			if got := a.admit(ip1, time.Now()); got != "" {
				t.Fatalf("connection %d refused: %q", i, got)
			}
		}
		if got := a.admit(ip1, time.Now()); got != "per_addr" {
			t.Fatalf("third from one address: %q", got)
		}
		if a.admit(ip2, time.Now()) != "" {
			t.Fatal("other address refused")
		}
		if got := a.admit(netip.MustParseAddr("127.0.0.3"), time.Now()); got != "accept_rate" {
			t.Fatalf("beyond accept burst: %q", got)
		}
		a.release(ip1)
		time.Sleep(time.Second)
		if a.admit(ip1, time.Now()) != "" {
			t.Fatal("released slot not reusable")
		}
		if len(a.perAddr) != 2 {
			t.Fatalf("perAddr has %d entries", len(a.perAddr))
		}
	})
}

func TestLimitDefaults(t *testing.T) {
	l := Limits{MaxPayload: 1 << 30}.withDefaults()
	if l.MaxPayload != 65536 || l.QueueFrames <= 0 || l.WriteTimeout <= 0 || l.HandshakeTimeout <= 0 || l.IdleTimeout <= 0 || l.SendRate <= 0 || l.AcceptRate <= 0 || l.ConnsPerAddr <= 0 {
		t.Fatalf("defaults incomplete: %+v", l)
	}
}
