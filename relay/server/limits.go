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
	refusePerAddr    = "per_addr"    // ConnsPerAddr (RL-17)
	refuseAcceptRate = "accept_rate" // AcceptRate (RL-18)
	refuseMaxConns   = "max_conns"   // MaxConns (RL-23)
	refuseMaxPending = "max_pending" // MaxPending (RL-24)
	refuseAddrRate   = "addr_rate"   // AcceptRatePerAddr (RL-25)
)

// Reasons for answering a connection attempt with a QUIC Retry, as
// counted in jitkey_relay_retries_total (RL-26).
const (
	retryPending    = "pending"     // RetryPending unauthenticated connections
	retryAcceptRate = "accept_rate" // accept bucket below a quarter
	retryAddrRate   = "addr_rate"   // the source's own bucket ran dry
)

// Intervals of the sweep that forgets idle source addresses.
const (
	sweepEvery    = 10 * time.Second // routine sweep, from admit
	sweepWhenFull = time.Second      // at most this often when the table is full
)

// admission decides whether a connection attempt may start and whether it
// must first prove its source address with a QUIC Retry (RFC 9000 8.1.2).
//
// It counts every admitted connection until it ends (MaxConns, and
// ConnsPerAddr per source IP) and every connection not yet authenticated
// (MaxPending). Each source IP has an accept bucket (AcceptRatePerAddr)
// besides the global one (AcceptRate).
//
// Source addresses are not validated before a Retry, so an attacker can
// spend another address's bucket by spoofing it. Once an address's bucket
// runs dry the address is therefore in retry mode until the bucket is full
// again: attempts without a validated address get a Retry (stateless, and
// they take no token), and only validated attempts take tokens. A spoofer
// can thus cost a victim address one round trip per connection, not lock
// it out.
//
// The per-address table is bounded: an address is kept only while it has
// connections or its bucket is not full (an entry with a full bucket and no
// connections says nothing an absent one does not), idle entries are swept,
// and there are never more than MaxAddrs entries. Entries are created only
// when a connection is admitted, so their number is also bounded by the
// global accept rate.
type admission struct {
	maxConns, maxPending, retryPending int
	connsPerAddr, maxAddrs             int
	addrRate                           float64
	addrBurst                          int
	retryAccept                        float64 // Retry below this many global tokens

	mu        sync.Mutex
	accept    bucket
	addrs     map[netip.Addr]*addrState
	conns     int // admitted connections not yet ended
	pending   int // admitted connections not yet authenticated
	lastSweep time.Time
	forgotten int64 // addresses dropped from a full table while not idle
}

// addrState is the admission state of one source IP.
type addrState struct {
	conns  int    // admitted connections from this address not yet ended
	bucket bucket // AcceptRatePerAddr
	retry  bool   // retry mode: the bucket ran dry and is not full again
}

// slot is one admitted connection. Its fields are guarded by admission.mu.
type slot struct {
	ip       netip.Addr
	pending  bool // not yet authenticated
	released bool
}

func newAdmission(l Limits) *admission {
	return &admission{
		maxConns:     l.MaxConns,
		maxPending:   l.MaxPending,
		retryPending: l.RetryPending,
		connsPerAddr: l.ConnsPerAddr,
		maxAddrs:     l.MaxAddrs,
		addrRate:     l.AcceptRatePerAddr,
		addrBurst:    l.AcceptBurstPerAddr,
		retryAccept:  float64(l.AcceptBurst) / 4,
		accept:       newBucket(l.AcceptRate, l.AcceptBurst),
		addrs:        make(map[netip.Addr]*addrState),
	}
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
	if e := a.addrs[ip]; e != nil && e.inRetryMode(now) {
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
	e := a.addrs[ip]
	if e != nil {
		if e.conns >= a.connsPerAddr {
			return nil, refusePerAddr
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
		a.addrs[ip] = e
	}
	e.bucket.allow(now) // checked above, or a fresh bucket
	e.conns++
	a.conns++
	a.pending++
	return &slot{ip: ip, pending: true}, ""
}

// authenticated uncounts s from the pending connections.
func (a *admission) authenticated(s *slot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.pending {
		s.pending = false
		a.pending--
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
	if s.pending {
		s.pending = false
		a.pending--
	}
	// An address with connections is never dropped from the table.
	e := a.addrs[s.ip]
	if e.conns--; e.idle(now) {
		delete(a.addrs, s.ip)
	}
}

// sweep forgets idle addresses.
func (a *admission) sweep(now time.Time) {
	a.lastSweep = now
	for ip, e := range a.addrs {
		if e.idle(now) {
			delete(a.addrs, ip)
		}
	}
}

// makeRoom frees an entry of a full table: it sweeps (at most once per
// sweepWhenFull, since a sweep walks the whole table) and, if no entry
// was idle, forgets one address without connections. That address may
// then burst again; at the default limits the table cannot fill, because
// entries are created only at the global accept rate and become idle
// within AcceptBurstPerAddr/AcceptRatePerAddr. One address without
// connections always exists: at most conns < MaxConns ≤ MaxAddrs entries
// have connections.
func (a *admission) makeRoom(now time.Time) {
	if now.Sub(a.lastSweep) >= sweepWhenFull {
		a.sweep(now)
	}
	if len(a.addrs) < a.maxAddrs {
		return
	}
	for ip, e := range a.addrs {
		if e.conns == 0 {
			delete(a.addrs, ip)
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
