package server

import (
	"net/netip"
	"sync"
	"time"
)

// bucket is a token bucket. It is not safe for concurrent use.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) bucket {
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// available refills the bucket up to now and returns its tokens.
func (b *bucket) available(now time.Time) float64 {
	if !b.last.IsZero() {
		if d := now.Sub(b.last).Seconds(); d > 0 {
			b.tokens = min(b.burst, b.tokens+d*b.rate)
		}
	}
	b.last = now
	return b.tokens
}

// allow takes one token if there is one.
func (b *bucket) allow(now time.Time) bool {
	if b.available(now) < 1 {
		return false
	}
	b.tokens--
	return true
}

// Reasons for refusing a connection attempt before its handshake, as
// counted in jitkey_relay_connections_refused_total.
const (
	refusePerAddr     = "per_addr"     // ConnsPerAddr (RL-17)
	refuseAcceptRate  = "accept_rate"  // AcceptRate (RL-18)
	refuseMaxConns    = "max_conns"    // MaxConns (RL-23)
	refuseMaxPending  = "max_pending"  // MaxPending (RL-24)
	refuseAddrRate    = "addr_rate"    // AcceptRatePerAddr (RL-25)
	refuseAddrPending = "addr_pending" // PendingPerAddr (RL-28)
)

// Reasons for answering a connection attempt with a QUIC Retry, as
// counted in jitkey_relay_retries_total (RL-26).
const (
	retryPending    = "pending"     // RetryPending unauthenticated connections
	retryAcceptRate = "accept_rate" // accept bucket below a quarter
	retryAddrRate   = "addr_rate"   // the source's own bucket ran dry
)

// Intervals of the sweep that forgets idle sources.
const (
	sweepEvery    = 10 * time.Second // routine sweep, from admit
	sweepWhenFull = time.Second      // at most this often when the table is full
)

// admission decides whether a connection attempt may start and whether it
// must first prove its source address with a QUIC Retry (RFC 9000 8.1.2).
//
// Its unit is the source: an IPv4 address, or the IPv6 prefix of
// IPv6PrefixLen bits (a /64 by default) that contains the address, since
// one host or site is routinely given a whole /64 and can use any address
// in it. An IPv4-mapped IPv6 address is the IPv4 address.
//
// It counts every admitted connection until it ends (MaxConns, and
// ConnsPerAddr per source) and every connection not yet authenticated
// (MaxPending, and PendingPerAddr per source, so that no source can fill
// MaxPending). Each source has an accept bucket (AcceptRatePerAddr)
// besides the global one (AcceptRate).
//
// Source addresses are not validated before a Retry, so an attacker can
// spend another source's bucket by spoofing it. Once a source's bucket
// runs dry the source is therefore in retry mode until the bucket is full
// again: attempts without a validated address get a Retry (stateless, and
// they take no token), and only validated attempts take tokens. A spoofer
// can thus cost a victim source one round trip per connection, not lock
// it out.
//
// The per-source table is bounded: a source is kept only while it has
// connections or its bucket is not full (an entry with a full bucket and no
// connections says nothing an absent one does not), idle entries are swept,
// and there are never more than MaxAddrs entries. Entries are created only
// when a connection is admitted, so their number is also bounded by the
// global accept rate.
type admission struct {
	maxConns, maxPending, retryPending int
	connsPerAddr, pendingPerAddr       int
	maxAddrs                           int
	v6Bits                             int // IPv6PrefixLen
	addrRate                           float64
	addrBurst                          int
	retryAccept                        float64 // Retry below this many global tokens

	mu        sync.Mutex
	accept    bucket
	addrs     map[netip.Prefix]*addrState // by source
	conns     int                         // admitted connections not yet ended
	pending   int                         // admitted connections not yet authenticated
	lastSweep time.Time
	forgotten int64 // sources dropped from a full table while not idle
}

// addrState is the admission state of one source.
type addrState struct {
	conns   int    // admitted connections from this source not yet ended
	pending int    // of which not yet authenticated
	bucket  bucket // AcceptRatePerAddr
	retry   bool   // retry mode: the bucket ran dry and is not full again
}

// slot is one admitted connection. Its fields are guarded by admission.mu.
type slot struct {
	src      netip.Prefix
	pending  bool // not yet authenticated
	released bool
}

func newAdmission(l Limits) *admission {
	return &admission{
		maxConns:       l.MaxConns,
		maxPending:     l.MaxPending,
		retryPending:   l.RetryPending,
		connsPerAddr:   l.ConnsPerAddr,
		pendingPerAddr: l.PendingPerAddr,
		maxAddrs:       l.MaxAddrs,
		v6Bits:         l.IPv6PrefixLen,
		addrRate:       l.AcceptRatePerAddr,
		addrBurst:      l.AcceptBurstPerAddr,
		retryAccept:    float64(l.AcceptBurst) / 4,
		accept:         newBucket(l.AcceptRate, l.AcceptBurst),
		addrs:          make(map[netip.Prefix]*addrState),
	}
}

// source returns the source that ip belongs to: the IPv4 address itself
// (also for an IPv4-mapped IPv6 address), or its IPv6 prefix of v6Bits.
// The zone of a link-local address is ignored.
func (a *admission) source(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := ip.BitLen() // 32, 128, or 0 for the zero Addr
	if ip.Is6() {
		bits = a.v6Bits
	}
	p, _ := ip.Prefix(bits) // bits is within the address's length
	return p
}

// underPressure reports whether the relay is under handshake pressure:
// RetryPending or more connections are unauthenticated. Attempts then need
// a Retry (RL-26) and connections get BusyHandshakeTimeout (RL-29).
func (a *admission) underPressure() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending >= a.retryPending
}

// inRetryMode updates and reports e's retry mode: on when its bucket has
// less than one token, off again once it is full.
func (e *addrState) inRetryMode(now time.Time) bool {
	switch t := e.bucket.available(now); {
	case t < 1:
		e.retry = true
	case t >= e.bucket.burst:
		e.retry = false
	}
	return e.retry
}

// idle reports whether e can be forgotten without loss.
func (e *addrState) idle(now time.Time) bool {
	return e.conns == 0 && e.bucket.available(now) >= e.bucket.burst
}

// verify reports why an attempt from ip without a validated address must
// first go through a Retry, or "" if it need not: the relay is under
// handshake pressure (RetryPending unauthenticated connections, or the
// accept bucket below a quarter of its burst), or ip is in retry mode.
// It changes no counts: a Retry costs the relay nothing but one packet.
func (a *admission) verify(ip netip.Addr, now time.Time) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending >= a.retryPending {
		return retryPending
	}
	if a.accept.available(now) < a.retryAccept {
		return retryAcceptRate
	}
	if e := a.addrs[a.source(ip)]; e != nil && e.inRetryMode(now) {
		return retryAddrRate
	}
	return ""
}

// admit counts a new connection from ip and returns its slot, or returns
// the refusal reason. verified reports whether the source address was
// validated (by a Retry).
func (a *admission) admit(ip netip.Addr, verified bool, now time.Time) (*slot, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.lastSweep) >= sweepEvery {
		a.sweep(now)
	}
	src := a.source(ip)
	e := a.addrs[src]
	if e != nil {
		if e.conns >= a.connsPerAddr {
			return nil, refusePerAddr
		}
		if e.pending >= a.pendingPerAddr {
			return nil, refuseAddrPending
		}
		// In retry mode only validated attempts may take a token (an
		// unvalidated one got here only by racing the mode's start).
		if e.inRetryMode(now) && (!verified || e.bucket.tokens < 1) {
			return nil, refuseAddrRate
		}
	}
	switch {
	case a.conns >= a.maxConns:
		return nil, refuseMaxConns
	case a.pending >= a.maxPending:
		return nil, refuseMaxPending
	case !a.accept.allow(now):
		return nil, refuseAcceptRate
	}
	if e == nil {
		if len(a.addrs) >= a.maxAddrs {
			a.makeRoom(now)
		}
		e = &addrState{bucket: newBucket(a.addrRate, a.addrBurst)}
		a.addrs[src] = e
	}
	e.bucket.allow(now) // checked above, or a fresh bucket
	e.conns++
	e.pending++
	a.conns++
	a.pending++
	return &slot{src: src, pending: true}, ""
}

// authenticated uncounts s from the pending connections.
func (a *admission) authenticated(s *slot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unpend(s)
}

// unpend uncounts s from the pending connections if it still counts.
// a.mu must be held.
func (a *admission) unpend(s *slot) {
	if s.pending {
		s.pending = false
		a.pending--
		a.addrs[s.src].pending--
	}
}

// release uncounts the connection of s when it ends.
func (a *admission) release(s *slot, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	a.conns--
	a.unpend(s)
	// A source with connections is never dropped from the table.
	e := a.addrs[s.src]
	if e.conns--; e.idle(now) {
		delete(a.addrs, s.src)
	}
}

// sweep forgets idle sources.
func (a *admission) sweep(now time.Time) {
	a.lastSweep = now
	for src, e := range a.addrs {
		if e.idle(now) {
			delete(a.addrs, src)
		}
	}
}

// makeRoom frees an entry of a full table: it sweeps (at most once per
// sweepWhenFull, since a sweep walks the whole table) and, if no entry
// was idle, forgets one source without connections. That source may
// then burst again; at the default limits the table cannot fill, because
// entries are created only at the global accept rate and become idle
// within AcceptBurstPerAddr/AcceptRatePerAddr. One source without
// connections always exists: at most conns < MaxConns ≤ MaxAddrs entries
// have connections.
func (a *admission) makeRoom(now time.Time) {
	if now.Sub(a.lastSweep) >= sweepWhenFull {
		a.sweep(now)
	}
	if len(a.addrs) < a.maxAddrs {
		return
	}
	for src, e := range a.addrs {
		if e.conns == 0 {
			delete(a.addrs, src)
			a.forgotten++
			return
		}
	}
}

// admissionStats are the admission gauges for the metrics.
type admissionStats struct {
	conns, pending, addrs int
	forgotten             int64
}

func (a *admission) stats() admissionStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return admissionStats{conns: a.conns, pending: a.pending, addrs: len(a.addrs), forgotten: a.forgotten}
}
