package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
)

// peer is one authenticated connection. Its reader runs in servePeer.
// Frames to it are written inline, by the goroutine that produced them,
// when nothing is queued ahead of them and QUIC takes them without
// blocking (tryInline); otherwise they are queued for its writer, a
// goroutine that exists only while frames are queued. So an idle peer
// costs one goroutine of ours, and a frame forwarded to a peer that keeps
// up costs no goroutine hand-off, no timer and no allocation.
type peer struct {
	s       *Server
	conn    *quic.Conn
	str     *quic.Stream
	mailbox protocol.MailboxID

	mu         sync.Mutex
	q          []qframe
	qData      int // data (Deliver) frames in q
	qBytes     int // bytes of data frames in q
	writing    bool
	closed     bool
	closeAfter protocol.RelayCloseCode // close once q is flushed, if set
	flushClose bool
	// inline counts the bytes written inline since the writer last
	// returned from a blocking stream write, which hands QUIC's buffered
	// stream data to packets. It bounds what inline writes can leave in
	// QUIC's send buffer for a peer that does not read (maxInline).
	inline int
}

// qframe is one queued frame; buf, if set, is the pooled buffer holding
// it, returned to the pool once the frame is written.
type qframe struct {
	b   []byte
	buf *[]byte
}

// writeChunk bounds how many queued bytes the writer copies into one
// stream write; larger frames are written on their own.
const writeChunk = 64 << 10

// maxInline bounds the bytes written inline to a peer between two
// blocking writes of its writer. QUIC's non-blocking write takes data as
// long as the peer grants flow-control credit, and a peer may grant much
// more than it reads; past maxInline frames go to the queue, whose
// limits apply, and the writer's next (blocking) write drains QUIC's
// buffer before inline writes resume. So a peer can make the relay hold
// at most QueueBytes queued plus maxInline (and one packet) in QUIC.
const maxInline = 64 << 10

var errAuth = errors.New("authentication failed")

// handleConn authenticates a connection and runs its reader.
func (s *Server) handleConn(conn *quic.Conn) {
	defer s.wg.Done()
	a, _ := conn.Context().Value(attemptKey{}).(*attempt)
	if a != nil {
		a.accepted.Store(true)
	}
	remote := conn.RemoteAddr().String()
	p, err := s.authenticate(conn)
	if err == nil && a != nil {
		s.adm.authenticated(a.slot) // no longer counts towards MaxPending
	}
	if err != nil {
		if errors.Is(err, errAuth) {
			s.met.authFailed.Add(1)
			s.log.Info("peer authentication failed", "remote", remote, "err", err)
			conn.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseAuthFailed), "authentication failed")
		} else {
			s.log.Debug("connection ended before authentication", "remote", remote, "err", err)
			conn.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseNormal), "")
		}
		return
	}
	if !s.register(p) {
		p.close(protocol.RelayCloseShutdown, "relay shutting down")
		return
	}
	s.log.Debug("peer connected", "mailbox", p.mailbox.String(), "remote", remote)
	// Authentication grew this goroutine's stack (TLS exporter, Ed25519);
	// the reader of an idle peer lives for hours, so it gets a fresh one.
	s.wg.Add(1)
	go s.servePeer(p)
}

// servePeer runs an authenticated peer's reader until the connection ends.
func (s *Server) servePeer(p *peer) {
	defer s.wg.Done()
	err := p.readLoop()
	s.unregister(p)
	if errors.Is(err, protocol.ErrRelayFrame) || errors.Is(err, protocol.ErrFrameTooLarge) || errors.Is(err, errUnexpected) {
		s.met.drop("malformed")
		s.log.Info("peer sent a malformed frame", "mailbox", p.mailbox.String(), "err", err)
		p.close(protocol.RelayCloseProtocol, "malformed frame")
	} else {
		p.close(protocol.RelayCloseNormal, "")
	}
	s.log.Debug("peer disconnected", "mailbox", p.mailbox.String(), "err", err)
}

// authenticate waits for the peer's stream and Hello and verifies the
// signature over this connection's TLS exporter. It waits HandshakeTimeout,
// or BusyHandshakeTimeout if the relay is under handshake pressure when
// the wait starts (RL-29).
func (s *Server) authenticate(conn *quic.Conn) (*peer, error) {
	wait := s.lim.HandshakeTimeout
	if s.adm.underPressure() {
		wait = s.lim.BusyHandshakeTimeout
	}
	deadline := time.Now().Add(wait)
	ctx, cancel := context.WithDeadline(conn.Context(), deadline)
	defer cancel()
	str, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: no stream: %v", errAuth, err)
	}
	str.SetReadDeadline(deadline)
	var hdr [protocol.RelayFrameHeaderLen]byte
	if _, err := io.ReadFull(str, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: read hello: %v", errAuth, err)
	}
	t, n, err := protocol.ParseRelayFrameHeader(hdr)
	if err != nil || t != protocol.FrameHello {
		return nil, fmt.Errorf("%w: first frame is not a hello", errAuth)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(str, body); err != nil {
		return nil, fmt.Errorf("%w: read hello: %v", errAuth, err)
	}
	f, err := protocol.DecodeRelayFrameBody(t, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errAuth, err)
	}
	hello := f.(*protocol.RelayHello)
	state := conn.ConnectionState().TLS
	exp, err := state.ExportKeyingMaterial(protocol.RelayExporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: exporter: %v", errAuth, err)
	}
	pub := ed25519.PublicKey(hello.Identity[:])
	if !ed25519.Verify(pub, protocol.RelayAuthMessage(exp), hello.Signature[:]) {
		return nil, fmt.Errorf("%w: bad signature", errAuth)
	}
	str.SetReadDeadline(time.Time{})
	return &peer{s: s, conn: conn, str: str, mailbox: protocol.MailboxFor(pub)}, nil
}

// register installs p as its mailbox's connection. A newer connection
// replaces an older one: the older receives Replaced and is closed.
//
// Welcome is queued before the mailbox is published, because from then on
// other peers' Delivers are queued to p and the peer must read Welcome
// first; but it is written only after, because a peer that has Welcome
// sends at once and the relay must already route to its mailbox.
func (s *Server) register(p *peer) bool {
	var pk []byte
	if s.pushKey != nil {
		pk = s.pushKey.PublicKey()
	}
	welcome := mustEncode(&protocol.RelayWelcome{Mailbox: p.mailbox, MaxPayload: uint32(s.lim.MaxPayload), PushKey: pk})
	p.mu.Lock()
	p.q = append(p.q, qframe{b: welcome}) // no writer yet: see below
	p.mu.Unlock()
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return false
	}
	old := s.peers[p.mailbox]
	s.peers[p.mailbox] = p
	s.all[p] = struct{}{}
	// Counted before Welcome is written: a peer that has its Welcome is
	// in jitkey_relay_peers (TestIdleTimeoutAndKeepAlive read 1 of 2
	// peers once, the second counted only after its Welcome).
	s.met.connsCurrent.Add(1)
	s.mu.Unlock()
	p.mu.Lock()
	if !p.closed {
		p.kick()
	}
	p.mu.Unlock()
	if old != nil {
		s.met.replaced.Add(1)
		s.log.Info("mailbox claimed by a newer connection", "mailbox", p.mailbox.String())
		old.finish(mustEncode(&protocol.RelayReplaced{}), protocol.RelayCloseReplaced)
	}
	return true
}

func (s *Server) unregister(p *peer) {
	s.mu.Lock()
	if s.peers[p.mailbox] == p {
		delete(s.peers, p.mailbox)
	}
	_, ok := s.all[p]
	delete(s.all, p)
	s.mu.Unlock()
	if ok {
		s.met.connsCurrent.Add(-1)
	}
}

var errUnexpected = errors.New("unexpected frame type")

// pingLen is the body length of Ping and Pong frames.
const pingLen = len(protocol.RelayPing{}.Data)

// readLoop reads the peer's frames until the connection ends.
func (p *peer) readLoop() error {
	s := p.s
	rate := newBucket(s.lim.SendRate, s.lim.SendBurst)
	var hdr [protocol.RelayFrameHeaderLen]byte
	var send protocol.RelaySend
	for {
		if _, err := io.ReadFull(p.str, hdr[:]); err != nil {
			return err
		}
		t, n, err := protocol.ParseRelayFrameHeader(hdr)
		if t == protocol.FrameSend && errors.Is(err, protocol.ErrFrameTooLarge) && n <= uint32(s.lim.MaxOversizeDiscard) {
			// Skip the body and refuse it, keeping the connection.
			var seq [4]byte
			if _, err := io.ReadFull(p.str, seq[:]); err != nil {
				return err
			}
			if _, err := io.CopyN(io.Discard, p.str, int64(n)-4); err != nil {
				return err
			}
			p.nack(uint32(seq[0])<<24|uint32(seq[1])<<16|uint32(seq[2])<<8|uint32(seq[3]), protocol.NackTooLarge)
			continue
		}
		if err != nil {
			return err
		}
		switch t {
		case protocol.FrameSend, protocol.FramePing, protocol.FramePong:
		default:
			return fmt.Errorf("%w: 0x%02x from peer", errUnexpected, byte(t))
		}
		bp := s.getBuf(int(n))
		body := (*bp)[:n]
		if _, err := io.ReadFull(p.str, body); err != nil {
			s.putBuf(bp)
			return err
		}
		if t == protocol.FrameSend {
			// Decoded in place: no allocation per forwarded frame.
			err := protocol.DecodeRelaySendBody(body, &send)
			seq := uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
			if err == nil {
				p.handleSend(&send, &rate)
			}
			s.putBuf(bp) // send's slices alias it: not used after this
			switch {
			case err == nil:
			case errors.Is(err, protocol.ErrFrameTooLarge):
				// A payload over the bound inside a frame within the bound.
				p.nack(seq, protocol.NackTooLarge)
			default:
				return err
			}
			continue
		}
		if t == protocol.FramePing && len(body) == pingLen {
			// Answered without allocating: a Pong echoes the Ping's
			// data. Every idle peer sends one per keep-alive period.
			var pong [protocol.RelayFrameHeaderLen + pingLen]byte
			pong[0], pong[4] = byte(protocol.FramePong), byte(pingLen)
			copy(pong[protocol.RelayFrameHeaderLen:], body)
			s.putBuf(bp)
			p.enqueueControl(pong[:])
			continue
		}
		_, err = protocol.DecodeRelayFrameBody(t, body)
		s.putBuf(bp) // a Pong is checked and dropped
		if err != nil {
			return err
		}
	}
}

// handleSend forwards one Send and answers it. f's slices alias a pooled
// buffer that is reused when handleSend returns.
func (p *peer) handleSend(f *protocol.RelaySend, rate *bucket) {
	s := p.s
	switch {
	case len(f.Payload) > s.lim.MaxPayload:
		p.nack(f.Seq, protocol.NackTooLarge)
		return
	case !rate.allow(s.cfg.Now()):
		p.nack(f.Seq, protocol.NackRateLimited)
		return
	}
	s.mu.RLock()
	draining := s.draining
	to := s.peers[f.To]
	s.mu.RUnlock()
	if draining {
		p.nack(f.Seq, protocol.NackShuttingDown)
		return
	}
	if to == nil {
		if len(f.Ticket) > 0 && s.pushKey != nil {
			p.wake(f.Seq, f.To, f.Ticket)
			return
		}
		p.nack(f.Seq, protocol.NackNotConnected)
		return
	}
	// Deliver{From, Payload} (SPEC 12.2), built in place: a RelayDeliver
	// passed to AppendRelayFrame would be allocated for every frame. The
	// payload is within MaxPayload, so the body is within its bound.
	body := len(p.mailbox) + len(f.Payload)
	fb := s.getBuf(protocol.RelayFrameHeaderLen + body)
	frame := append((*fb)[:0], byte(protocol.FrameDeliver), byte(body>>24), byte(body>>16), byte(body>>8), byte(body))
	frame = append(append(frame, p.mailbox[:]...), f.Payload...)
	if !to.enqueueData(frame, fb) {
		s.putBuf(fb)
		p.nack(f.Seq, protocol.NackQueueFull)
		return
	}
	s.met.framesForwarded.Add(1)
	s.met.bytesForwarded.Add(int64(len(f.Payload)))
	ack := [...]byte{byte(protocol.FrameAck), 0, 0, 0, 4, byte(f.Seq >> 24), byte(f.Seq >> 16), byte(f.Seq >> 8), byte(f.Seq)}
	p.enqueueControl(ack[:])
}

// nack answers a Send negatively and counts the drop.
func (p *peer) nack(seq uint32, r protocol.NackReason) {
	p.s.met.drop(r.String())
	p.enqueueControl(mustEncode(&protocol.RelayNack{Seq: seq, Reason: r}))
}

// wake handles a Send with a ticket to a disconnected mailbox (12.6). In
// the reader's goroutine, cheapest check first, it checks the sender's
// wake-up budget, opens the ticket, checks the token's budget and takes a
// gateway slot; only the gateway call runs in a goroutine of its own. So
// neither a bad ticket nor a wake-up beyond the limits ever holds a slot.
// ticket may alias a pooled buffer: it is not used after wake returns.
func (p *peer) wake(seq uint32, to protocol.MailboxID, ticket []byte) {
	s := p.s
	now := s.cfg.Now()
	refuse := func(reason string, r protocol.NackReason) {
		s.met.pushRefuse(reason)
		if r == protocol.NackPushFailed {
			s.met.pushFailures.Add(1)
		}
		p.nack(seq, r)
	}
	if !s.wakes.senderAllowed(p.mailbox, now) {
		refuse(pushRefuseSenderRate, protocol.NackRateLimited)
		return
	}
	t, err := s.pushKey.Open(ticket, to, now)
	if err != nil {
		s.wakes.spend(p.mailbox, now)
		s.log.Info("push ticket refused", "mailbox", to.String(), "from", p.mailbox.String())
		refuse(pushRefuseBadTicket, protocol.NackPushFailed)
		return
	}
	if reason := s.wakes.take(p.mailbox, t.Token, now); reason != "" {
		refuse(reason, protocol.NackRateLimited)
		return
	}
	select {
	case s.pushSem <- struct{}{}:
	default:
		s.log.Warn("push capacity exhausted")
		refuse(pushRefuseCapacity, protocol.NackPushFailed)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.pushSem }()
		ctx, cancel := context.WithTimeout(s.ctx, s.lim.PushTimeout)
		err := s.cfg.Waker.Wake(ctx, t.Token)
		cancel()
		if err != nil {
			s.met.pushFailures.Add(1)
			s.log.Warn("push wake-up failed", "mailbox", to.String(), "err", err)
			p.nack(seq, protocol.NackPushFailed)
			return
		}
		s.met.pushWakes.Add(1)
		p.nack(seq, protocol.NackWakeSent)
	}()
}

// enqueueData writes a Deliver frame inline or queues it, within the
// queue limits. buf, the pooled buffer holding frame, belongs to p if it
// returns true (an inline write returns it to the pool at once).
func (p *peer) enqueueData(frame []byte, buf *[]byte) bool {
	l := &p.s.lim
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.flushClose {
		return false
	}
	if p.tryInline(frame) {
		p.s.putBuf(buf)
		return true
	}
	if p.qData >= l.QueueFrames || p.qBytes+len(frame) > l.QueueBytes {
		return false
	}
	p.q = append(p.q, qframe{b: frame, buf: buf})
	p.qData++
	p.qBytes += len(frame)
	p.kick()
	return true
}

// enqueueControl writes a control frame inline or queues a copy of it; a
// peer that lets control frames pile up beyond ControlQueue is not reading
// and is closed. frame is not kept (it may be on the caller's stack).
func (p *peer) enqueueControl(frame []byte) {
	p.mu.Lock()
	if p.closed || p.flushClose || p.tryInline(frame) {
		p.mu.Unlock()
		return
	}
	if len(p.q)-p.qData >= p.s.lim.ControlQueue {
		p.mu.Unlock()
		p.s.met.drop("slow_reader")
		p.close(protocol.RelayCloseSlowReader, "not reading")
		return
	}
	p.q = append(p.q, qframe{b: append([]byte(nil), frame...)})
	p.kick()
	p.mu.Unlock()
}

// tryInline writes frame to the stream at once if nothing is queued or
// being written ahead of it, the inline budget has room, and QUIC queues
// it without blocking (SendStream.TryWriteAll copies it). Otherwise it
// writes nothing and returns false: the caller queues the frame, and an
// error of the stream surfaces in the writer. p.mu must be held, so that
// no writer starts meanwhile.
func (p *peer) tryInline(frame []byte) bool {
	if p.writing || len(p.q) > 0 || p.inline+len(frame) > maxInline {
		return false
	}
	if p.str.TryWriteAll(frame) != nil {
		return false
	}
	p.inline += len(frame)
	return true
}

// finish queues a last frame and closes the connection once it is written.
func (p *peer) finish(frame []byte, code protocol.RelayCloseCode) {
	p.mu.Lock()
	if p.closed || p.flushClose {
		p.mu.Unlock()
		return
	}
	p.q = append(p.q, qframe{b: frame})
	p.flushClose = true
	p.closeAfter = code
	p.kick()
	p.mu.Unlock()
}

// kick starts the writer if it is not running. p.mu must be held.
func (p *peer) kick() {
	if p.writing {
		return
	}
	p.writing = true
	p.s.wg.Add(1)
	go p.writeLoop()
}

// writeLoop writes queued frames, each batch within WriteTimeout, and
// exits when the queue is empty. Frames queued together go out in as few
// stream writes as fit writeChunk, so that an Ack and a Deliver for the
// same peer, or a burst of Delivers, share QUIC packets.
func (p *peer) writeLoop() {
	defer p.s.wg.Done()
	for {
		p.mu.Lock()
		if len(p.q) == 0 || p.closed {
			p.writing = false
			fc, code := p.flushClose, p.closeAfter
			p.mu.Unlock()
			if fc {
				p.close(code, "")
			}
			return
		}
		batch := p.q
		p.q, p.qData, p.qBytes = nil, 0, 0
		// The blocking write below returns once QUIC has taken the
		// batch into packets, and with it what was written inline before.
		p.inline = 0
		p.mu.Unlock()
		p.str.SetWriteDeadline(time.Now().Add(p.s.lim.WriteTimeout))
		if err := p.writeBatch(batch); err != nil {
			p.mu.Lock()
			p.writing = false
			p.mu.Unlock()
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				p.s.met.drop("write_timeout")
				p.s.log.Info("peer too slow, disconnecting", "mailbox", p.mailbox.String())
				p.close(protocol.RelayCloseSlowReader, "write timeout")
			} else {
				p.close(protocol.RelayCloseNormal, "")
			}
			return
		}
	}
}

// writeBatch writes batch to the stream, coalescing small frames, and
// returns the frames' pooled buffers.
func (p *peer) writeBatch(batch []qframe) error {
	s := p.s
	defer func() {
		for _, f := range batch {
			if f.buf != nil {
				s.putBuf(f.buf)
			}
		}
	}()
	if len(batch) == 1 {
		_, err := p.str.Write(batch[0].b)
		return err
	}
	wb, _ := s.chunks.Get().(*[]byte)
	if wb == nil {
		b := make([]byte, 0, writeChunk)
		wb = &b
	}
	defer s.chunks.Put(wb)
	out := (*wb)[:0]
	for _, f := range batch {
		if len(out)+len(f.b) > writeChunk && len(out) > 0 {
			if _, err := p.str.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
		if len(f.b) > writeChunk {
			if _, err := p.str.Write(f.b); err != nil {
				return err
			}
			continue
		}
		out = append(out, f.b...)
	}
	if len(out) > 0 {
		_, err := p.str.Write(out)
		return err
	}
	return nil
}

// close closes the connection once.
func (p *peer) close(code protocol.RelayCloseCode, msg string) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	lost := p.qData // acknowledged to their senders, never written
	p.q, p.qData, p.qBytes = nil, 0, 0
	p.mu.Unlock()
	if lost > 0 {
		p.s.met.dropN("undelivered", lost)
	}
	p.s.unregister(p) // no new frames are routed to a closing peer
	p.conn.CloseWithError(quic.ApplicationErrorCode(code), msg)
}

// getBuf returns a pooled buffer of at least n bytes; idle peers hold none.
func (s *Server) getBuf(n int) *[]byte {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, n)
		bp = &b
	}
	return bp
}

func (s *Server) putBuf(bp *[]byte) { s.bufs.Put(bp) }
