package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// Reasons for refusing a wake-up before the gateway call, as counted in
// jitkey_relay_push_refused_total.
const (
	pushRefuseSenderRate = "sender_rate" // WakeRatePerSender (RL-30)
	pushRefuseTokenRate  = "token_rate"  // WakeRatePerToken (RL-30)
	pushRefuseBadTicket  = "bad_ticket"  // ticket does not open or is not valid (RL-20)
	pushRefuseCapacity   = "capacity"    // MaxPushInFlight gateway calls running
)

// wakeLimits bounds push wake-ups per sender mailbox and per gateway token
// (RL-30), so that one peer cannot make the relay call the gateway at will,
// nor anyone holding a ticket wake its device over and over.
//
// Tokens are keyed by HMAC-SHA256 under a key drawn at start, so the table
// holds no token, and nothing that can be checked against a guessed one
// once the process is gone.
type wakeLimits struct {
	tokenKey []byte

	mu      sync.Mutex
	senders keyedBuckets
	tokens  keyedBuckets
}

func newWakeLimits(l Limits, tokenKey []byte) *wakeLimits {
	return &wakeLimits{
		tokenKey: tokenKey,
		senders:  newKeyedBuckets(l.WakeRatePerSender, l.WakeBurstPerSender, l.MaxWakeKeys),
		tokens:   newKeyedBuckets(l.WakeRatePerToken, l.WakeBurstPerToken, l.MaxWakeKeys),
	}
}

// senderAllowed reports whether from has a wake-up left. It takes nothing:
// take does, once the ticket is known to be good.
func (w *wakeLimits) senderAllowed(from protocol.MailboxID, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.senders.available([32]byte(from), now) >= 1
}

// spend takes one of from's wake-ups without waking: a bad ticket costs
// its sender as a wake-up would.
func (w *wakeLimits) spend(from protocol.MailboxID, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.senders.allow([32]byte(from), now)
}

// take takes a wake-up from token's bucket and then from from's, and
// returns the refusal reason, or "" if both had one. A refusal for the
// token costs the sender nothing, so that a sender retrying a wake-up of a
// device just woken does not lose its wake-ups for other devices.
func (w *wakeLimits) take(from protocol.MailboxID, token []byte, now time.Time) string {
	mac := hmac.New(sha256.New, w.tokenKey)
	mac.Write(token)
	key := [32]byte(mac.Sum(nil))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.senders.available([32]byte(from), now) < 1 {
		return pushRefuseSenderRate // spent since senderAllowed
	}
	if !w.tokens.allow(key, now) {
		return pushRefuseTokenRate
	}
	w.senders.allow([32]byte(from), now)
	return ""
}

// wakeStats are the wake limit gauges for the metrics.
type wakeStats struct {
	keys      int
	forgotten int64
}

func (w *wakeLimits) stats() wakeStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return wakeStats{keys: len(w.senders.m) + len(w.tokens.m), forgotten: w.senders.forgotten + w.tokens.forgotten}
}

// keyedBuckets is a bounded table of token buckets by key. An entry whose
// bucket is full says nothing an absent one does not, so such entries are
// swept; when the table is still full, an arbitrary entry is forgotten
// (its key may then burst again), as the admission table does. It is not
// safe for concurrent use.
type keyedBuckets struct {
	rate      float64
	burst     int
	max       int
	m         map[[32]byte]*bucket
	lastSweep time.Time
	forgotten int64
}

func newKeyedBuckets(rate float64, burst, max int) keyedBuckets {
	return keyedBuckets{rate: rate, burst: burst, max: max, m: make(map[[32]byte]*bucket)}
}

// available returns the tokens of key's bucket (a full one if key has none).
func (k *keyedBuckets) available(key [32]byte, now time.Time) float64 {
	if b := k.m[key]; b != nil {
		return b.available(now)
	}
	return float64(k.burst)
}

// allow takes a token from key's bucket if there is one.
func (k *keyedBuckets) allow(key [32]byte, now time.Time) bool {
	if now.Sub(k.lastSweep) >= sweepEvery {
		k.sweep(now)
	}
	b := k.m[key]
	if b == nil {
		if len(k.m) >= k.max {
			k.makeRoom(now)
		}
		nb := newBucket(k.rate, k.burst)
		b = &nb
		k.m[key] = b
	}
	return b.allow(now)
}

// sweep forgets entries whose bucket is full.
func (k *keyedBuckets) sweep(now time.Time) {
	k.lastSweep = now
	for key, b := range k.m {
		if b.available(now) >= b.burst {
			delete(k.m, key)
		}
	}
}

// makeRoom frees an entry of a full table: it sweeps, at most once per
// sweepWhenFull, and if no entry was full, forgets one.
func (k *keyedBuckets) makeRoom(now time.Time) {
	if now.Sub(k.lastSweep) >= sweepWhenFull {
		k.sweep(now)
	}
	for key := range k.m {
		if len(k.m) < k.max {
			return
		}
		delete(k.m, key)
		k.forgotten++
	}
}
