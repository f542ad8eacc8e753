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

// allow takes one token if there is one.
func (b *bucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		if d := now.Sub(b.last).Seconds(); d > 0 {
			b.tokens = min(b.burst, b.tokens+d*b.rate)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// admission decides whether a new connection may start: a global accept
// rate and a bound on concurrent connections per source IP.
type admission struct {
	mu      sync.Mutex
	accept  bucket
	perAddr map[netip.Addr]int
	maxAddr int
}

func newAdmission(l Limits) *admission {
	return &admission{accept: newBucket(l.AcceptRate, l.AcceptBurst), perAddr: make(map[netip.Addr]int), maxAddr: l.ConnsPerAddr}
}

// admit returns "" and counts the connection, or the refusal reason.
func (a *admission) admit(ip netip.Addr, now time.Time) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.perAddr[ip] >= a.maxAddr {
		return "per_addr"
	}
	if !a.accept.allow(now) {
		return "accept_rate"
	}
	a.perAddr[ip]++
	return ""
}

// release uncounts a connection admitted from ip.
func (a *admission) release(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.perAddr[ip]--; a.perAddr[ip] <= 0 {
		delete(a.perAddr, ip)
	}
}
