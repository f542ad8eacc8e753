package server

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// Waker sends a content-free wake-up to the device named by a gateway token.
// push.Webhook implements it.
type Waker interface {
	Wake(ctx context.Context, token []byte) error
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Listen is the UDP address of ListenAndServe, "host:port" (port 0: any).
	Listen string
	// CertFile and KeyFile name a PEM certificate chain and key. When both
	// are empty the server generates a self-signed Ed25519 certificate from
	// Rand; peers pin its key (see Server.Pin).
	CertFile, KeyFile string

	// Limits bound what one peer or source can make the relay do.
	Limits Limits

	// PushKey is 32 bytes of secret key material for the push-ticket HPKE
	// key. Nil: derived from Rand at start (tickets then die with the
	// process). Only used when Waker is set.
	PushKey []byte
	// Waker, if set, enables push wake-ups for Sends that carry a ticket.
	Waker Waker

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for rate limits and ticket expiry; nil: time.Now.
	Now func() time.Time
	// Rand is the source for generated keys; nil: crypto/rand.
	Rand io.Reader
}

// Limits are the relay's resource bounds. Every field has a safe default.
type Limits struct {
	// MaxPayload bounds one frame's payload. Default and maximum
	// protocol.MaxRelayPayload (64 KiB).
	MaxPayload int
	// QueueFrames bounds the frames waiting to be written to one peer.
	// Default 64.
	QueueFrames int
	// QueueBytes bounds the bytes waiting to be written to one peer.
	// Default 512 KiB.
	QueueBytes int
	// ControlQueue bounds queued Ack/Nack/control frames to one peer
	// beyond QueueFrames; a peer that lets it fill is closed. Default 1024.
	ControlQueue int
	// SendRate is the sustained Send frames per second one peer may
	// submit; SendBurst the bucket size. Defaults 100/s, burst 200.
	SendRate  float64
	SendBurst int
	// WriteTimeout bounds one write to a peer; a peer that does not read
	// is disconnected. Default 5 s.
	WriteTimeout time.Duration
	// AcceptRate is the sustained new connections per second the relay
	// accepts; AcceptBurst the bucket size. Defaults 1000/s, burst 2000.
	AcceptRate  float64
	AcceptBurst int
	// IPv6PrefixLen is the length of the IPv6 prefix that counts as one
	// source for the per-address limits (ConnsPerAddr, PendingPerAddr,
	// AcceptRatePerAddr, MaxAddrs): every address of one IPv6 /64 (the
	// default) shares them, since a single host may use any address in
	// its /64. An IPv4 address is always a source of its own, and an
	// IPv4-mapped IPv6 address counts as that IPv4 address. Default 64;
	// at most 128 (one source per IPv6 address), at least 32.
	IPv6PrefixLen int
	// ConnsPerAddr bounds concurrent connections (including handshakes)
	// from one source (see IPv6PrefixLen). Default 1024 (many peers share
	// NATs, and the hosts of one IPv6 /64 share it likewise).
	ConnsPerAddr int
	// PendingPerAddr bounds the connections from one source that are not
	// yet authenticated, so that one source cannot fill MaxPending.
	// Default MaxPending/16 (256); at most MaxPending. A peer needs its
	// slot only for a few round trips, so peers behind one NAT address
	// that reconnect at once are delayed, not refused for long: the
	// client retries with back-off.
	PendingPerAddr int
	// AcceptRatePerAddr is the sustained new connections per second one
	// source may open; AcceptBurstPerAddr the bucket size. Defaults
	// 50/s and ConnsPerAddr, so that every peer behind one NAT address
	// can reconnect at once after a relay restart. A source whose
	// bucket runs dry must validate itself with a QUIC Retry until the
	// bucket is full again, so a spoofed source cannot spend it.
	AcceptRatePerAddr  float64
	AcceptBurstPerAddr int
	// MaxAddrs bounds the sources whose admission state (connection
	// counts, accept bucket) the relay keeps. Default 2×MaxConns; never
	// below MaxConns. When it is full the relay forgets a source without
	// connections, which may then burst again.
	MaxAddrs int
	// MaxConns bounds all connections, authenticated or not. Size it to
	// memory: an idle peer costs about 70 KiB (BENCHMARKS.md). Default
	// 50,000.
	MaxConns int
	// MaxPending bounds the connections not yet authenticated: in the
	// QUIC handshake or waiting for Hello. Default 4096.
	MaxPending int
	// RetryPending is the number of unauthenticated connections from
	// which the relay asks every new connection attempt to validate its
	// source address with a QUIC Retry (one more round trip) before any
	// handshake work. The relay also does so while its accept bucket is
	// below a quarter of AcceptBurst, and never otherwise. Default
	// MaxPending/8 (512); at most MaxPending.
	RetryPending int
	// HandshakeTimeout bounds the QUIC handshake and then, again, the time
	// until a valid Hello. Default 10 s.
	HandshakeTimeout time.Duration
	// BusyHandshakeTimeout replaces HandshakeTimeout while the relay is
	// under handshake pressure (RetryPending or more unauthenticated
	// connections): for the QUIC handshake of a connection admitted then,
	// and for the wait for Hello of a connection whose handshake completes
	// then. Connections that never authenticate thus hold their slots for
	// seconds, not tens of seconds, while a peer sends its Hello one round
	// trip after the handshake. Default 2 s; at most HandshakeTimeout.
	BusyHandshakeTimeout time.Duration
	// IdleTimeout closes a connection without any packet for that long.
	// Default 60 s.
	IdleTimeout time.Duration
	// KeepAlive, if positive, makes the relay send QUIC keep-alives at
	// that period. Default 0: peers keep their connections alive (the
	// client library does every 20 s), which costs the relay nothing.
	KeepAlive time.Duration
	// DrainTimeout bounds Shutdown when its context has no deadline.
	// Default 10 s.
	DrainTimeout time.Duration
	// RetryAfter is the reconnect hint sent in GoAway. Default 1 s.
	RetryAfter time.Duration
	// MaxPushInFlight bounds concurrent gateway calls. Default 64.
	MaxPushInFlight int
	// WakeRatePerSender is the sustained push wake-ups per second one
	// sender mailbox may cause; WakeBurstPerSender the bucket size.
	// Defaults 1/s, burst 20. A Send beyond them is answered Nack
	// rate-limited without opening its ticket.
	WakeRatePerSender  float64
	WakeBurstPerSender int
	// WakeRatePerToken is the sustained wake-ups per second of one gateway
	// token (one device), whoever asks; WakeBurstPerToken the bucket size.
	// Defaults one per 10 s (0.1/s), burst 3. A Send beyond them is
	// answered Nack rate-limited: the device was just woken.
	WakeRatePerToken  float64
	WakeBurstPerToken int
	// MaxWakeKeys bounds each of the two wake-up tables (senders, tokens);
	// when one is full an entry is forgotten. Default 50,000 (a few MiB).
	MaxWakeKeys int
	// PushTimeout bounds one gateway call. Default 5 s.
	PushTimeout time.Duration
	// MaxOversizeDiscard is the largest over-long Send the relay skips
	// and answers with NackTooLarge; a longer one closes the connection.
	// Default 1 MiB.
	MaxOversizeDiscard int
}

func (l Limits) withDefaults() Limits {
	setI := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setD := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setF := func(p *float64, d float64) {
		if *p <= 0 {
			*p = d
		}
	}
	if l.MaxPayload <= 0 || l.MaxPayload > protocol.MaxRelayPayload {
		l.MaxPayload = protocol.MaxRelayPayload
	}
	setI(&l.QueueFrames, 64)
	setI(&l.QueueBytes, 512<<10)
	setI(&l.ControlQueue, 1024)
	setF(&l.SendRate, 100)
	setI(&l.SendBurst, 200)
	setD(&l.WriteTimeout, 5*time.Second)
	setF(&l.AcceptRate, 1000)
	setI(&l.AcceptBurst, 2000)
	setI(&l.IPv6PrefixLen, 64)
	l.IPv6PrefixLen = min(max(l.IPv6PrefixLen, 32), 128)
	setI(&l.ConnsPerAddr, 1024)
	setF(&l.AcceptRatePerAddr, 50)
	setI(&l.AcceptBurstPerAddr, l.ConnsPerAddr)
	setI(&l.MaxConns, 50000)
	setI(&l.MaxAddrs, 2*l.MaxConns)
	l.MaxAddrs = max(l.MaxAddrs, l.MaxConns)
	setI(&l.MaxPending, 4096)
	setI(&l.RetryPending, max(1, l.MaxPending/8))
	l.RetryPending = min(l.RetryPending, l.MaxPending)
	setI(&l.PendingPerAddr, max(1, l.MaxPending/16))
	l.PendingPerAddr = min(l.PendingPerAddr, l.MaxPending)
	setD(&l.HandshakeTimeout, 10*time.Second)
	setD(&l.BusyHandshakeTimeout, 2*time.Second)
	l.BusyHandshakeTimeout = min(l.BusyHandshakeTimeout, l.HandshakeTimeout)
	setD(&l.IdleTimeout, 60*time.Second)
	setD(&l.DrainTimeout, 10*time.Second)
	setD(&l.RetryAfter, time.Second)
	setI(&l.MaxPushInFlight, 64)
	setF(&l.WakeRatePerSender, 1)
	setI(&l.WakeBurstPerSender, 20)
	setF(&l.WakeRatePerToken, 0.1)
	setI(&l.WakeBurstPerToken, 3)
	setI(&l.MaxWakeKeys, 50000)
	setD(&l.PushTimeout, 5*time.Second)
	setI(&l.MaxOversizeDiscard, 1<<20)
	if l.KeepAlive < 0 {
		l.KeepAlive = 0
	}
	return l
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}
