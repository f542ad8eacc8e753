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

// testLimits are Limits with defaults for the fields a test leaves zero.
func testLimits(l Limits) Limits { return l.withDefaults() }

func TestAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAdmission(testLimits(Limits{AcceptRate: 1, AcceptBurst: 3, ConnsPerAddr: 2}))
		ip1, ip2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
		var s1 *slot
		for i := range 2 {
			s, got := a.admit(ip1, false, time.Now())
			if got != "" {
				t.Fatalf("connection %d refused: %q", i, got)
			}
			s1 = s
		}
		if _, got := a.admit(ip1, true, time.Now()); got != refusePerAddr {
			t.Fatalf("third from one address: %q", got)
		}
		if _, got := a.admit(ip2, false, time.Now()); got != "" {
			t.Fatalf("other address refused: %q", got)
		}
		if _, got := a.admit(netip.MustParseAddr("127.0.0.3"), false, time.Now()); got != refuseAcceptRate {
			t.Fatalf("beyond accept burst: %q", got)
		}
		a.release(s1, time.Now())
		a.release(s1, time.Now()) // idempotent
		time.Sleep(time.Second)
		if _, got := a.admit(ip1, true, time.Now()); got != "" {
			t.Fatalf("released slot not reusable: %q", got)
		}
		if st := a.stats(); st.conns != 3 || st.pending != 3 || st.addrs != 2 {
			t.Fatalf("stats %+v, want 3 connections, 3 pending, 2 addresses", st)
		}
	})
}

// TestAdmissionCaps checks MaxConns (RL-23) and MaxPending (RL-24).
func TestAdmissionCaps(t *testing.T) {
	now := time.Unix(1e9, 0)
	a := newAdmission(testLimits(Limits{MaxConns: 3, MaxPending: 2}))
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
	s1, _ := a.admit(addr(1), false, now)
	s2, _ := a.admit(addr(2), false, now)
	if _, got := a.admit(addr(3), false, now); got != refuseMaxPending {
		t.Fatalf("third unauthenticated connection: %q, want %q", got, refuseMaxPending)
	}
	a.authenticated(s1)
	a.authenticated(s1) // idempotent
	s3, got := a.admit(addr(3), false, now)
	if got != "" {
		t.Fatalf("pending slot freed by authentication not reusable: %q", got)
	}
	a.authenticated(s2)
	a.authenticated(s3)
	if _, got := a.admit(addr(4), false, now); got != refuseMaxConns {
		t.Fatalf("fourth connection: %q, want %q", got, refuseMaxConns)
	}
	a.release(s2, now)
	if _, got := a.admit(addr(4), false, now); got != "" {
		t.Fatalf("connection after one ended: %q", got)
	}
	// A connection that ends unauthenticated frees its pending slot too.
	a.release(s1, now)
	a.release(s3, now)
	if st := a.stats(); st.conns != 1 || st.pending != 1 {
		t.Fatalf("stats %+v, want 1 connection, 1 pending", st)
	}
}

// TestAdmissionRetry checks when a Retry is required (RL-26) and that a
// source in retry mode cannot be locked out by spoofed attempts (RL-25).
func TestAdmissionRetry(t *testing.T) {
	now := time.Unix(1e9, 0)
	a := newAdmission(testLimits(Limits{AcceptRate: 1, AcceptBurst: 8, MaxPending: 100, RetryPending: 4, AcceptRatePerAddr: 1, AcceptBurstPerAddr: 2}))
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }
	victim := addr(1)
	if r := a.verify(victim, now); r != "" {
		t.Fatalf("Retry without pressure: %q", r)
	}
	// Two attempts spend victim's bucket; it is then in retry mode.
	var slots []*slot
	for range 2 {
		s, got := a.admit(victim, false, now)
		if got != "" {
			t.Fatal(got)
		}
		slots = append(slots, s)
	}
	if _, got := a.admit(victim, false, now); got != refuseAddrRate {
		t.Fatalf("beyond the address's burst: %q", got)
	}
	// Spoofed attempts from victim are answered with Retry and take no
	// token, however many there are.
	for range 1000 {
		if r := a.verify(victim, now); r != retryAddrRate {
			t.Fatalf("address in retry mode: %q", r)
		}
	}
	if r := a.verify(addr(2), now); r != "" {
		t.Fatalf("other address must not need a Retry: %q", r)
	}
	now = now.Add(time.Second) // one token
	if _, got := a.admit(victim, false, now); got != refuseAddrRate {
		t.Fatalf("unvalidated attempt in retry mode: %q", got)
	}
	s, got := a.admit(victim, true, now)
	if got != "" {
		t.Fatalf("validated attempt with a token refused: %q", got)
	}
	slots = append(slots, s)
	if _, got := a.admit(victim, true, now); got != refuseAddrRate {
		t.Fatalf("validated attempt without a token: %q", got)
	}
	// Retry mode ends when the bucket is full again.
	now = now.Add(2 * time.Second)
	if r := a.verify(victim, now); r != "" {
		t.Fatalf("retry mode after the bucket refilled: %q", r)
	}
	// Pressure: RetryPending unauthenticated connections.
	s, _ = a.admit(addr(2), false, now)
	slots = append(slots, s)
	if r := a.verify(addr(3), now); r != retryPending {
		t.Fatalf("with %d pending: %q, want %q", a.stats().pending, r, retryPending)
	}
	for _, s := range slots {
		a.authenticated(s)
	}
	if r := a.verify(addr(3), now); r != "" {
		t.Fatalf("below RetryPending: %q", r)
	}
	// Pressure: accept bucket below a quarter (2 of 8 tokens); 7 are left.
	for i := range 6 {
		s, got := a.admit(addr(10+i), false, now)
		if got != "" {
			t.Fatal(got)
		}
		a.authenticated(s)
	}
	if r := a.verify(addr(3), now); r != retryAcceptRate {
		t.Fatalf("accept bucket low: %q", r)
	}
}

// TestAddrTableBounded checks that the per-address state stays bounded
// however many addresses connect, and that idle addresses are forgotten.
func TestAddrTableBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	const maxAddrs = 64
	a := newAdmission(testLimits(Limits{AcceptRate: 1e9, AcceptBurst: 1e9, MaxConns: 16, MaxAddrs: maxAddrs, AcceptRatePerAddr: 1, AcceptBurstPerAddr: 4}))
	// Addresses that keep a connection are never forgotten.
	keep := netip.MustParseAddr("192.0.2.1")
	var kept []*slot
	for range 4 {
		s, got := a.admit(keep, false, now)
		if got != "" {
			t.Fatal(got)
		}
		kept = append(kept, s)
	}
	// 100,000 distinct addresses each connect and leave at once; their
	// buckets are not full, so they are not idle yet.
	for i := range 100_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s, got := a.admit(ip, false, now)
		if got != "" {
			t.Fatalf("address %d refused: %q", i, got)
		}
		a.release(s, now)
		if n := a.stats().addrs; n > maxAddrs {
			t.Fatalf("after %d addresses the table has %d entries, bound %d", i+1, n, maxAddrs)
		}
		if i%1000 == 0 {
			now = now.Add(time.Millisecond)
		}
	}
	st := a.stats()
	if st.forgotten == 0 || st.addrs != maxAddrs {
		t.Fatalf("stats %+v: want a full table and forgotten addresses", st)
	}
	// The kept address still counts its connections.
	if _, got := a.admit(keep, false, now); got != refuseAddrRate {
		t.Fatalf("kept address lost its bucket: %q", got)
	}
	// Once their buckets refill, idle addresses are swept at the next
	// admission; the address with connections stays.
	now = now.Add(sweepEvery + 4*time.Second)
	s, _ := a.admit(netip.MustParseAddr("192.0.2.2"), false, now)
	if st := a.stats(); st.addrs != 2 {
		t.Fatalf("after the sweep %d addresses, want 2", st.addrs)
	}
	// An address is forgotten when its last connection ends if its bucket
	// is full, else at a sweep once it is.
	a.release(s, now)
	for _, s := range kept {
		a.release(s, now)
	}
	if st := a.stats(); st.addrs != 1 || st.conns != 0 {
		t.Fatalf("after every connection ended: %+v, want only the recent address", st)
	}
	a.sweep(now.Add(time.Second))
	if st := a.stats(); st.addrs != 0 {
		t.Fatalf("after the last sweep: %+v", st)
	}
}

// TestAdmissionSources checks what one source is (RL-28): an IPv4
// address, an IPv6 prefix of IPv6PrefixLen bits, an IPv4-mapped IPv6
// address as its IPv4 address; and that PendingPerAddr bounds one
// source's unauthenticated connections.
func TestAdmissionSources(t *testing.T) {
	ip := netip.MustParseAddr
	for _, tt := range []struct {
		name   string
		bits   int // IPv6PrefixLen
		a, b   netip.Addr
		shared bool
	}{
		{"one IPv6 /64", 0, ip("2001:db8::1"), ip("2001:db8::ffff:1:2:3"), true},
		{"two IPv6 /64s", 0, ip("2001:db8::1"), ip("2001:db8:0:1::1"), false},
		{"one IPv6 /56", 56, ip("2001:db8::1"), ip("2001:db8:0:ff::1"), true},
		{"IPv6 per address", 128, ip("2001:db8::1"), ip("2001:db8::2"), false},
		{"two IPv4 addresses", 0, ip("192.0.2.1"), ip("192.0.2.2"), false},
		{"IPv4-mapped is IPv4", 0, ip("::ffff:192.0.2.1"), ip("192.0.2.1"), true},
		{"zone ignored", 0, ip("fe80::1%eth0"), ip("fe80::2%eth1"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1e9, 0)
			a := newAdmission(testLimits(Limits{IPv6PrefixLen: tt.bits, MaxPending: 100, PendingPerAddr: 2}))
			sa, got := a.admit(tt.a, false, now)
			if got != "" {
				t.Fatal(got)
			}
			if _, got := a.admit(tt.a, false, now); got != "" {
				t.Fatal(got)
			}
			// The source of a has both its pending slots in use.
			_, got = a.admit(tt.b, false, now)
			if shared := got == refuseAddrPending; shared != tt.shared {
				t.Fatalf("%v after two pending from %v: %q, want shared source %v", tt.b, tt.a, got, tt.shared)
			}
			// Authentication frees the source's pending slot.
			a.authenticated(sa)
			if _, got := a.admit(tt.b, false, now); got != "" {
				t.Fatalf("after one authenticated: %q", got)
			}
		})
	}
}

func TestLimitDefaults(t *testing.T) {
	l := Limits{MaxPayload: 1 << 30}.withDefaults()
	if l.MaxPayload != 65536 || l.QueueFrames <= 0 || l.WriteTimeout <= 0 || l.HandshakeTimeout <= 0 || l.IdleTimeout <= 0 || l.SendRate <= 0 || l.AcceptRate <= 0 || l.ConnsPerAddr <= 0 {
		t.Fatalf("defaults incomplete: %+v", l)
	}
	if l.MaxConns != 50000 || l.MaxAddrs != 100000 || l.MaxPending != 4096 || l.RetryPending != 512 || l.AcceptRatePerAddr != 50 || l.AcceptBurstPerAddr != 1024 {
		t.Fatalf("admission defaults: %+v", l)
	}
	if l.IPv6PrefixLen != 64 || l.PendingPerAddr != 256 || l.BusyHandshakeTimeout != 2*time.Second {
		t.Fatalf("source defaults: %+v", l)
	}
	// MaxAddrs is never below MaxConns (makeRoom relies on it), nor
	// RetryPending or PendingPerAddr above MaxPending, nor
	// BusyHandshakeTimeout above HandshakeTimeout.
	l = Limits{MaxConns: 100, MaxAddrs: 10, MaxPending: 4, RetryPending: 9, PendingPerAddr: 9, ConnsPerAddr: 7, IPv6PrefixLen: 200, HandshakeTimeout: time.Second, BusyHandshakeTimeout: time.Minute}.withDefaults()
	if l.MaxAddrs != 100 || l.RetryPending != 4 || l.PendingPerAddr != 4 || l.AcceptBurstPerAddr != 7 || l.IPv6PrefixLen != 128 || l.BusyHandshakeTimeout != time.Second {
		t.Fatalf("admission limits not clamped: %+v", l)
	}
	if l := (Limits{IPv6PrefixLen: 8}).withDefaults(); l.IPv6PrefixLen != 32 {
		t.Fatalf("IPv6PrefixLen 8 not raised to 32: %d", l.IPv6PrefixLen)
	}
}

// TestWakeTableBounded checks that the wake-up tables stay within
// MaxWakeKeys however many tokens are woken, and that full buckets are
// swept (RL-30).
func TestWakeTableBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	const maxKeys = 16
	w := newWakeLimits(testLimits(Limits{MaxWakeKeys: maxKeys, WakeRatePerSender: 1e9, WakeBurstPerSender: 1e9, WakeRatePerToken: 1, WakeBurstPerToken: 1}), make([]byte, 32))
	var from [32]byte
	for i := range 1000 {
		if got := w.take(from, []byte{byte(i), byte(i >> 8)}, now); got != "" {
			t.Fatalf("token %d refused: %q", i, got)
		}
		if st := w.stats(); st.keys > maxKeys+1 {
			t.Fatalf("after %d tokens %d keys, bound %d per table", i+1, st.keys, maxKeys)
		}
	}
	if st := w.stats(); st.forgotten == 0 {
		t.Fatalf("stats %+v: want forgotten entries", st)
	}
	// A token just woken is refused; after its bucket refills it is not,
	// and the sweep forgets every full bucket.
	if got := w.take(from, []byte{231, 3}, now); got != pushRefuseTokenRate {
		t.Fatalf("token woken twice at once: %q", got)
	}
	now = now.Add(sweepEvery)
	if got := w.take(from, []byte{231, 3}, now); got != "" {
		t.Fatalf("token after refill: %q", got)
	}
	if st := w.stats(); st.keys != 2 {
		t.Fatalf("after the sweep %d keys, want the sender and one token", st.keys)
	}
}
