// Package channel runs end-to-end Noise sessions between jitkey peers over
// their relay connections. One Mux per peer multiplexes any number of
// sessions on one relay client: it dials sessions (initiator), accepts them
// (responder, after the caller's Accept hook has chosen the keys), and
// routes each relay payload to its session by (peer mailbox, session id).
//
// The relay sees only protocol.E2EFrame headers and Noise ciphertext.
package channel

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/protocol"
)

// Relay is the part of a relay client the mux sends with.
type Relay interface {
	Send(ctx context.Context, to protocol.PeerAddr, payload []byte) error
	Addr() protocol.PeerAddr
}

// RecvFunc returns the next payload delivered by the relay and its sender.
type RecvFunc func(ctx context.Context) (from protocol.PeerAddr, payload []byte, err error)

// Hello describes an incoming session before its handshake.
type Hello struct {
	From           protocol.PeerAddr // as delivered by the relay
	Session        protocol.SessionID
	Flow           protocol.Flow
	InitiatorRelay string // the initiator's claimed home relay (bound into the prologue)
}

// Config configures a Mux.
type Config struct {
	Relay  Relay
	Static noise.DHKey // own Noise static key pair
	// Accept decides whether to answer an incoming session and with which
	// keys: it returns the PSK (first-contact flows) or the expected peer
	// static key (KK). Returning an error drops the session silently.
	Accept func(ctx context.Context, h Hello) (psk []byte, peer protocol.NoiseKey, err error)
	// Handle serves an accepted session; it runs in its own goroutine and
	// the session is closed when it returns.
	Handle func(ctx context.Context, c *Conn)

	HandshakeTimeout time.Duration // default 10 s
	MaxSessions      int           // default 1024
	QueueLen         int           // frames buffered per session, default 16
	Logger           *slog.Logger
	Rand             io.Reader
}

// Errors of the mux.
var (
	ErrClosed   = errors.New("channel: session closed")
	ErrAborted  = errors.New("channel: peer aborted the session")
	ErrTooMany  = errors.New("channel: too many sessions")
	ErrDupe     = errors.New("channel: session id in use")
	ErrOverflow = errors.New("channel: session receive queue overflow")
)

// errSend marks an error of the relay's Send, as opposed to one of the
// peer or of the handshake.
var errSend = errors.New("channel: send")

type key struct {
	peer    protocol.MailboxID
	session protocol.SessionID
}

// Mux multiplexes sessions over one relay client.
type Mux struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[key]*Conn
	wg       sync.WaitGroup
}

// New returns a Mux. Call Pump to start receiving.
func New(cfg Config) *Mux {
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 1024
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 16
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mux{cfg: cfg, log: log, sessions: make(map[key]*Conn)}
}

// Pump reads relay payloads with recv and routes them until ctx ends or
// recv fails. Accepted sessions are served in their own goroutines; Pump
// waits for them before returning.
func (m *Mux) Pump(ctx context.Context, recv RecvFunc) error {
	defer m.wg.Wait()
	for {
		from, payload, err := recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("channel: receive: %w", err)
		}
		m.route(ctx, from, payload)
	}
}

func (m *Mux) route(ctx context.Context, from protocol.PeerAddr, payload []byte) {
	f, err := protocol.ParseE2EFrame(payload)
	if err != nil {
		m.log.Debug("drop malformed e2e frame", "from", from.Mailbox.String(), "err", err)
		return
	}
	k := key{peer: from.Mailbox, session: f.Session}
	m.mu.Lock()
	c := m.sessions[k]
	m.mu.Unlock()
	if f.Kind == protocol.E2EHello {
		if c != nil {
			m.log.Debug("drop hello for a session in use", "from", from.Mailbox.String())
			return
		}
		m.accept(ctx, from, f)
		return
	}
	if c == nil {
		return
	}
	c.deliver(f)
}

func (m *Mux) register(c *Conn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[c.key]; ok {
		return ErrDupe
	}
	if len(m.sessions) >= m.cfg.MaxSessions {
		return ErrTooMany
	}
	m.sessions[c.key] = c
	return nil
}

func (m *Mux) unregister(c *Conn) {
	m.mu.Lock()
	if m.sessions[c.key] == c {
		delete(m.sessions, c.key)
	}
	m.mu.Unlock()
}

func (m *Mux) newConn(peer protocol.PeerAddr, id protocol.SessionID, flow protocol.Flow) *Conn {
	return &Conn{
		mux:  m,
		key:  key{peer: peer.Mailbox, session: id},
		Peer: peer,
		ID:   id,
		Flow: flow,
		in:   make(chan protocol.E2EFrame, m.cfg.QueueLen),
		done: make(chan struct{}),
	}
}

func (m *Mux) accept(ctx context.Context, from protocol.PeerAddr, f protocol.E2EFrame) {
	if m.cfg.Accept == nil || m.cfg.Handle == nil {
		return
	}
	c := m.newConn(from, f.Session, f.Flow)
	if err := m.register(c); err != nil {
		m.log.Debug("drop hello", "from", from.Mailbox.String(), "err", err)
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer c.Close()
		hctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
		h := Hello{From: from, Session: f.Session, Flow: f.Flow, InitiatorRelay: f.Relay}
		psk, peer, err := m.cfg.Accept(hctx, h)
		if err != nil {
			cancel()
			m.log.Info("session refused", "flow", f.Flow.Name(), "from", from.Mailbox.String(), "err", err)
			return
		}
		hs := protocol.HandshakeConfig{
			Flow: f.Flow, Static: m.cfg.Static, PeerStatic: peer, PSK: psk,
			InitiatorRelay: f.Relay, ResponderRelay: m.cfg.Relay.Addr().Relay, Rand: m.cfg.Rand,
		}
		s, err := protocol.RespondMessage(hctx, hs, f.Body, c)
		cancel()
		if errors.Is(err, errSend) {
			// The reply to a hello that passed Accept and the Noise
			// checks did not leave: its initiator waits in vain.
			m.log.Warn("handshake reply not sent", "flow", f.Flow.Name(), "from", from.Mailbox.String(), "err", err)
			return
		}
		if err != nil {
			m.log.Info("handshake failed", "flow", f.Flow.Name(), "from", from.Mailbox.String(), "err", err)
			return
		}
		c.Session = s
		m.cfg.Handle(ctx, c)
	}()
}

// DialConfig names the peer and keys of an outgoing session.
type DialConfig struct {
	To         protocol.PeerAddr
	Flow       protocol.Flow
	PeerStatic protocol.NoiseKey
	PSK        []byte             // first-contact flows
	Session    protocol.SessionID // zero: random (KK flows); first-contact flows derive it from the code
	// Ticket, if set, is the peer's sealed push ticket (SPEC.md 12.6): the
	// handshake's first message is sent with it when the Relay implements
	// Waker, so that the peer's relay wakes a peer not connected.
	Ticket []byte
}

// Waker is implemented by a Relay that can attach a push ticket to a
// Send (relay/client.Client.SendWake).
type Waker interface {
	SendWake(ctx context.Context, to protocol.PeerAddr, ticket []byte, payload []byte) error
}

// Dial runs the initiator handshake and returns the established session.
func (m *Mux) Dial(ctx context.Context, d DialConfig) (*Conn, error) {
	id := d.Session
	if id == (protocol.SessionID{}) {
		if _, err := io.ReadFull(m.cfg.Rand, id[:]); err != nil {
			return nil, fmt.Errorf("channel: session id: %w", err)
		}
	}
	c := m.newConn(d.To, id, d.Flow)
	c.initiator = true
	c.ticket = d.Ticket
	if err := m.register(c); err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
	defer cancel()
	hs := protocol.HandshakeConfig{
		Flow: d.Flow, Static: m.cfg.Static, PeerStatic: d.PeerStatic, PSK: d.PSK,
		InitiatorRelay: m.cfg.Relay.Addr().Relay, ResponderRelay: d.To.Relay, Rand: m.cfg.Rand,
	}
	s, err := protocol.Initiate(hctx, hs, c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("channel: dial %s: %w", d.Flow.Name(), err)
	}
	c.Session = s
	return c, nil
}

// Conn is one end-to-end session. After the handshake, Send and Recv carry
// protocol messages; a Conn is used by one goroutine at a time per
// direction.
type Conn struct {
	Session *protocol.Session
	Peer    protocol.PeerAddr // where replies go
	ID      protocol.SessionID
	Flow    protocol.Flow

	mux       *Mux
	key       key
	initiator bool
	ticket    []byte // push ticket sent with the hello (Dial)
	sent      int    // handshake messages written

	in        chan protocol.E2EFrame
	done      chan struct{}
	closeOnce sync.Once
	err       error // set before done is closed
}

func (c *Conn) deliver(f protocol.E2EFrame) {
	select {
	case c.in <- f:
	case <-c.done:
	default:
		c.fail(ErrOverflow)
	}
}

func (c *Conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.err = err
		close(c.done)
		c.mux.unregister(c)
	})
}

// WriteMessage implements protocol.Transport for the handshake.
func (c *Conn) WriteMessage(ctx context.Context, msg []byte) error {
	f := protocol.E2EFrame{Session: c.ID, Body: msg}
	switch {
	case c.initiator && c.sent == 0:
		f.Kind, f.Flow, f.Relay = protocol.E2EHello, c.Flow, c.mux.cfg.Relay.Addr().Relay
	case !c.initiator && c.sent == 0:
		f.Kind = protocol.E2EReply
	default:
		f.Kind = protocol.E2EData
	}
	c.sent++
	if f.Kind == protocol.E2EHello && len(c.ticket) > 0 {
		if w, ok := c.mux.cfg.Relay.(Waker); ok {
			b, err := protocol.AppendE2EFrame(nil, f)
			if err != nil {
				return err
			}
			if err := w.SendWake(ctx, c.Peer, c.ticket, b); err != nil {
				return fmt.Errorf("%w: %w", errSend, err)
			}
			return nil
		}
	}
	return c.write(ctx, f)
}

func (c *Conn) write(ctx context.Context, f protocol.E2EFrame) error {
	b, err := protocol.AppendE2EFrame(nil, f)
	if err != nil {
		return err
	}
	if err := c.mux.cfg.Relay.Send(ctx, c.Peer, b); err != nil {
		return fmt.Errorf("%w: %w", errSend, err)
	}
	return nil
}

// ReadMessage implements protocol.Transport for the handshake.
func (c *Conn) ReadMessage(ctx context.Context) ([]byte, error) {
	select {
	case f := <-c.in:
		switch {
		case f.Kind == protocol.E2EAbort:
			c.fail(ErrAborted)
			return nil, ErrAborted
		case c.initiator && c.Session == nil && f.Kind != protocol.E2EReply,
			c.Session != nil && f.Kind != protocol.E2EData:
			return nil, fmt.Errorf("%w: unexpected e2e frame kind %d", protocol.ErrMalformed, f.Kind)
		}
		return f.Body, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SendRaw seals and sends one transport message.
func (c *Conn) SendRaw(ctx context.Context, msg []byte) error {
	ct, err := c.Session.Seal(msg)
	if err != nil {
		return err
	}
	return c.write(ctx, protocol.E2EFrame{Session: c.ID, Kind: protocol.E2EData, Body: ct})
}

// RecvRaw receives and opens one transport message.
func (c *Conn) RecvRaw(ctx context.Context) ([]byte, error) {
	ct, err := c.ReadMessage(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := c.Session.Open(ct)
	if err != nil {
		c.fail(err)
		return nil, err
	}
	return msg, nil
}

// Send encodes and sends one protocol message.
func (c *Conn) Send(ctx context.Context, t protocol.MsgType, body any) error {
	b, err := protocol.EncodeMsg(t, body)
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, b)
}

// Recv receives one protocol message of type want into body. A MsgError
// from the peer is returned as *protocol.PeerError.
func (c *Conn) Recv(ctx context.Context, want protocol.MsgType, body any) error {
	b, err := c.RecvRaw(ctx)
	if err != nil {
		return err
	}
	return protocol.DecodeMsg(b, want, body)
}

// SendError sends a MsgError; the caller then closes the session.
func (c *Conn) SendError(ctx context.Context, code uint8, text string) error {
	return c.Send(ctx, protocol.MsgError, &protocol.ErrorMsg{Code: code, Text: text})
}

// Close ends the session locally. It does not notify the peer.
func (c *Conn) Close() { c.fail(ErrClosed) }

// Abort ends the session and tells the peer (best effort).
func (c *Conn) Abort(ctx context.Context, reason byte) {
	_ = c.write(ctx, protocol.E2EFrame{Session: c.ID, Kind: protocol.E2EAbort, Body: []byte{reason}})
	c.Close()
}
