// Package channeltest is an in-memory stand-in for relays, for tests of
// code built on package channel. It delivers payloads between registered
// peers in order and answers "not connected" for unknown mailboxes, as a
// relay does. Tests of the real relay live in package relay.
package channeltest

import (
	"context"
	"errors"
	"sync"

	"github.com/jitkey/jitkey/protocol"
)

// ErrNotConnected mirrors the relay's negative answer.
var ErrNotConnected = errors.New("channeltest: recipient not connected")

type msg struct {
	from    protocol.PeerAddr
	payload []byte
}

// Network connects peers by mailbox.
type Network struct {
	mu    sync.Mutex
	peers map[protocol.MailboxID]*Peer
	// Tap, if set, sees (and may replace or drop, by returning nil) every
	// payload in flight: tests use it to tamper with or replay frames.
	Tap func(from, to protocol.PeerAddr, payload []byte) []byte
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{peers: make(map[protocol.MailboxID]*Peer)} }

// Peer is one connected peer.
type Peer struct {
	net  *Network
	addr protocol.PeerAddr
	in   chan msg
}

// Join connects a peer with the given address.
func (n *Network) Join(addr protocol.PeerAddr) *Peer {
	p := &Peer{net: n, addr: addr, in: make(chan msg, 256)}
	n.mu.Lock()
	n.peers[addr.Mailbox] = p
	n.mu.Unlock()
	return p
}

// Leave disconnects a peer.
func (n *Network) Leave(addr protocol.PeerAddr) {
	n.mu.Lock()
	delete(n.peers, addr.Mailbox)
	n.mu.Unlock()
}

// Addr returns the peer's address.
func (p *Peer) Addr() protocol.PeerAddr { return p.addr }

// Send delivers payload to the peer with to's mailbox.
func (p *Peer) Send(ctx context.Context, to protocol.PeerAddr, payload []byte) error {
	p.net.mu.Lock()
	dst := p.net.peers[to.Mailbox]
	tap := p.net.Tap
	p.net.mu.Unlock()
	if dst == nil {
		return ErrNotConnected
	}
	payload = append([]byte(nil), payload...)
	if tap != nil {
		if payload = tap(p.addr, to, payload); payload == nil {
			return nil
		}
	}
	select {
	case dst.in <- msg{from: p.addr, payload: payload}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Inject delivers a payload to p as if from `from`, bypassing Tap.
func (p *Peer) Inject(from protocol.PeerAddr, payload []byte) {
	p.in <- msg{from: from, payload: payload}
}

// Recv returns the next payload for p.
func (p *Peer) Recv(ctx context.Context) (protocol.PeerAddr, []byte, error) {
	select {
	case m := <-p.in:
		return m.from, m.payload, nil
	case <-ctx.Done():
		return protocol.PeerAddr{}, nil, ctx.Err()
	}
}
