package client

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
)

// relayConn is one authenticated connection to one relay.
type relayConn struct {
	c       *Client
	addr    string   // relay address as dialed; From.Relay of its deliveries
	key     string   // relayKey(addr), its key in Client.foreign
	pin     [32]byte // the relay's
	home    bool     // the home connection
	claim   uint64   // home: event number of its claim (Client.claimPin)
	conn    *quic.Conn
	str     *quic.Stream
	welcome *protocol.RelayWelcome

	wmu sync.Mutex // serialises frame writes

	mu      sync.Mutex
	pending map[uint32]chan protocol.RelayFrame
	err     error // why the connection ended
	done    chan struct{}

	goAway   atomic.Int64 // retry-after hint in ms, 0 if none
	lastUsed atomic.Int64 // unix nanos of the last Send (foreign reaping)
	lastRecv atomic.Int64 // unix nanos (monotonic clock) of the last frame read
}

// dial connects to a relay, checks its pin and authenticates. A foreign
// dial (home false) that reaches the home relay's pin stops before its
// Hello with errHomeRelay (home.go).
func (c *Client) dial(ctx context.Context, addr string, home bool) (*relayConn, error) {
	if err := protocol.CheckRelayAddr(addr); err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("client: resolve %s: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{protocol.RelayALPN},
		ServerName:         host,
		InsecureSkipVerify: true, // the relay is authenticated by pin below
		VerifyConnection:   func(cs tls.ConnectionState) error { return c.verifyPin(addr, cs) },
		Rand:               c.cfg.Rand,
		Time:               c.cfg.Now,
	}
	hctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	qc, err := c.tr.Dial(hctx, ua, tlsConf, c.quicConfig())
	if err != nil {
		// quic-go keeps verifyPin's error in the handshake failure.
		var pe *PinError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	// verifyPin has checked that there is a certificate.
	pin := protocol.RelayPin(qc.ConnectionState().TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)
	claim, err := c.claimPin(pin, home)
	if err != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseNormal), "")
		return nil, err
	}
	end := func() {
		if !home {
			c.endForeign(pin)
		}
	}
	rc, err := c.authenticate(hctx, qc, addr)
	if err != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseNormal), "")
		end()
		return nil, fmt.Errorf("client: authenticate to %s: %w", addr, err)
	}
	rc.pin, rc.home, rc.claim = pin, home, claim
	// Close may have run while this dial was in flight: it has already
	// waited for c.wg, so the connection must not start a goroutine (a
	// WaitGroup Add racing Wait at zero) nor outlive the client.
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		qc.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseNormal), "")
		end()
		return nil, ErrClosed
	default:
	}
	c.wg.Add(2)
	c.mu.Unlock()
	go rc.readLoop()
	go rc.pingLoop()
	return rc, nil
}

// verifyPin accepts the certificate of the relay dialled at addr only if
// its SubjectPublicKeyInfo hashes to one of the pins; otherwise it returns
// a *PinError.
func (c *Client) verifyPin(addr string, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return &PinError{Relay: addr, Want: c.cfg.Pins}
	}
	pin := protocol.RelayPin(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	for _, p := range c.cfg.Pins {
		if p == pin {
			return nil
		}
	}
	return &PinError{Relay: addr, Got: pin, Want: c.cfg.Pins}
}

// authenticate opens the stream, sends Hello signed over the exporter and
// waits for Welcome.
func (c *Client) authenticate(ctx context.Context, qc *quic.Conn, addr string) (*relayConn, error) {
	str, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	state := qc.ConnectionState().TLS
	exp, err := state.ExportKeyingMaterial(protocol.RelayExporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	var h protocol.RelayHello
	copy(h.Identity[:], c.cfg.Identity.Public().(ed25519.PublicKey))
	copy(h.Signature[:], ed25519.Sign(c.cfg.Identity, protocol.RelayAuthMessage(exp)))
	dl, _ := ctx.Deadline()
	str.SetDeadline(dl)
	if err := protocol.WriteRelayFrame(str, &h); err != nil {
		return nil, fmt.Errorf("write hello: %w", err)
	}
	f, err := protocol.ReadRelayFrame(str, nil)
	if err != nil {
		var ae *quic.ApplicationError
		if errors.As(err, &ae) && ae.ErrorCode == quic.ApplicationErrorCode(protocol.RelayCloseAuthFailed) {
			return nil, ErrAuth
		}
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	w, ok := f.(*protocol.RelayWelcome)
	if !ok {
		return nil, fmt.Errorf("unexpected answer to hello (%T)", f)
	}
	if w.Mailbox != c.mailbox {
		return nil, ErrWrongMailbox
	}
	str.SetDeadline(time.Time{})
	w.PushKey = append([]byte(nil), w.PushKey...)
	rc := &relayConn{c: c, addr: addr, conn: qc, str: str, welcome: w, pending: make(map[uint32]chan protocol.RelayFrame), done: make(chan struct{})}
	rc.lastUsed.Store(c.cfg.Now().UnixNano())
	rc.lastRecv.Store(c.mono())
	return rc, nil
}

// readLoop dispatches the relay's frames until the connection ends.
func (rc *relayConn) readLoop() {
	defer rc.c.wg.Done()
	err := rc.read()
	rc.shutdown(err)
}

// quicConfig is the QUIC configuration of a connection to a relay. It has
// no QUIC keep-alive: pingLoop's Ping already sends a packet after
// KeepAlive of silence, and QUIC PINGs at the same period would add a PING
// and its ACK per period and idle peer (at 20,000 idle peers 6,917
// datagrams/s with them, 4,292 without; BENCHMARKS.md, Relay).
func (c *Client) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:  c.cfg.HandshakeTimeout,
		MaxIdleTimeout:        c.cfg.IdleTimeout,
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: -1,
	}
}

// pingLoop proves the relay alive: when nothing arrived for KeepAlive it
// sends a Ping, and when nothing arrives within PingTimeout after that it
// ends the connection (the client then reconnects). A relay that was
// killed and restarted usually answers the Ping's packet with a stateless
// reset at once.
func (rc *relayConn) pingLoop() {
	defer rc.c.wg.Done()
	period, timeout := rc.c.cfg.KeepAlive, rc.c.cfg.PingTimeout
	t := time.NewTimer(period)
	defer t.Stop()
	var sent int64 // mono() of the unanswered Ping, 0 if none
	for {
		select {
		case <-rc.done:
			return
		case <-t.C:
		}
		now, last := rc.c.mono(), rc.lastRecv.Load()
		switch {
		case sent != 0 && last >= sent:
			sent = 0 // answered (or anything else arrived)
		case sent != 0 && now-sent >= int64(timeout):
			rc.c.log.Info("relay did not answer a ping", "relay", rc.addr, "timeout", timeout)
			rc.shutdown(fmt.Errorf("%w: no answer to a ping within %v", ErrConnectionLost, timeout))
			return
		}
		if sent == 0 {
			if idle := time.Duration(now - last); idle < period {
				t.Reset(period - idle)
				continue
			}
			var p protocol.RelayPing
			if _, err := io.ReadFull(rc.c.cfg.Rand, p.Data[:]); err != nil {
				rc.shutdown(fmt.Errorf("%w: ping: %v", ErrConnectionLost, err))
				return
			}
			sent = rc.c.mono()
			if err := rc.write(&p); err != nil {
				rc.shutdown(fmt.Errorf("%w: write ping: %v", ErrConnectionLost, err))
				return
			}
		}
		// Look again at the ping's deadline, or after a keep-alive period
		// if that is shorter: once the Ping is answered the next one is
		// due KeepAlive after the last frame, not after PingTimeout (the
		// Ping is the connection's only keep-alive).
		t.Reset(min(time.Duration(sent+int64(timeout)-rc.c.mono()), period))
	}
}

// mono is a monotonic clock in nanoseconds since the client started, never
// 0, for liveness only (the configured clock Now may be a wall clock that
// jumps).
func (c *Client) mono() int64 { return int64(time.Since(c.started)) + 1 }

func (rc *relayConn) read() error {
	for {
		f, err := protocol.ReadRelayFrame(rc.str, nil)
		rc.lastRecv.Store(rc.c.mono())
		if err != nil {
			var ae *quic.ApplicationError
			if errors.As(err, &ae) && ae.ErrorCode == quic.ApplicationErrorCode(protocol.RelayCloseReplaced) {
				return ErrReplaced
			}
			return fmt.Errorf("%w: %v", ErrConnectionLost, err)
		}
		switch f := f.(type) {
		case *protocol.RelayDeliver:
			m := Message{From: protocol.PeerAddr{Relay: rc.addr, Mailbox: f.From}, Payload: f.Payload}
			select {
			case rc.c.recv <- m:
			case <-rc.c.closed:
				return ErrClosed
			}
		case *protocol.RelayAck:
			rc.verdict(f.Seq, f)
		case *protocol.RelayNack:
			rc.verdict(f.Seq, f)
		case *protocol.RelayGoAway:
			rc.goAway.Store(int64(max(f.RetryAfterMs, 1)))
			rc.c.log.Info("relay asked to reconnect", "relay", rc.addr, "retry_after_ms", f.RetryAfterMs)
			return fmt.Errorf("%w: relay going away", ErrConnectionLost)
		case *protocol.RelayReplaced:
			return ErrReplaced
		case *protocol.RelayPing:
			if err := rc.write(&protocol.RelayPong{Data: f.Data}); err != nil {
				return fmt.Errorf("%w: %v", ErrConnectionLost, err)
			}
		case *protocol.RelayPong:
		default:
			return fmt.Errorf("%w: unexpected frame %T", ErrConnectionLost, f)
		}
	}
}

// verdict hands an Ack or Nack to the Send waiting for seq. It sends under
// rc.mu (ch has room for one), so a verdict that arrived before the
// connection ended is always seen by send.
func (rc *relayConn) verdict(seq uint32, f protocol.RelayFrame) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if ch := rc.pending[seq]; ch != nil {
		delete(rc.pending, seq)
		ch <- f
	}
}

// lost is the error of a Send whose connection ended before its verdict:
// it wraps ErrConnectionLost and why the connection ended.
func (rc *relayConn) lost() error {
	rc.mu.Lock()
	err := rc.err
	rc.mu.Unlock()
	if err == nil || errors.Is(err, ErrConnectionLost) {
		return fmt.Errorf("relay %s: %w", rc.addr, ErrConnectionLost)
	}
	return fmt.Errorf("relay %s: %w: %w", rc.addr, ErrConnectionLost, err)
}

// shutdown ends the connection with err and fails pending sends. The
// caller must not hold rc.c.mu.
func (rc *relayConn) shutdown(err error) {
	rc.mu.Lock()
	if rc.err != nil {
		rc.mu.Unlock()
		return
	}
	rc.err = err
	close(rc.done)
	rc.pending = nil
	rc.mu.Unlock()
	rc.conn.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseNormal), "")
	if !rc.home {
		rc.c.endForeign(rc.pin)
	}
}

// alive reports whether the connection is still up.
func (rc *relayConn) alive() bool {
	select {
	case <-rc.done:
		return false
	default:
		return true
	}
}

func (rc *relayConn) write(f protocol.RelayFrame) error {
	b, err := protocol.EncodeRelayFrame(f)
	if err != nil {
		return err
	}
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	rc.str.SetWriteDeadline(time.Now().Add(rc.c.cfg.WriteTimeout))
	_, err = rc.str.Write(b)
	return err
}

// send submits one Send and waits for the relay's verdict. If the
// connection ends first it returns at once with an error wrapping
// ErrConnectionLost: the relay may or may not have forwarded the payload.
func (rc *relayConn) send(ctx context.Context, to protocol.MailboxID, ticket, payload []byte) error {
	seq := rc.c.seq.Add(1)
	ch := make(chan protocol.RelayFrame, 1)
	rc.mu.Lock()
	if rc.pending == nil {
		rc.mu.Unlock()
		return rc.lost()
	}
	rc.pending[seq] = ch
	rc.mu.Unlock()
	rc.lastUsed.Store(rc.c.cfg.Now().UnixNano())
	forget := func() {
		rc.mu.Lock()
		if rc.pending != nil {
			delete(rc.pending, seq)
		}
		rc.mu.Unlock()
	}
	if err := rc.write(&protocol.RelaySend{Seq: seq, To: to, Ticket: ticket, Payload: payload}); err != nil {
		forget()
		rc.shutdown(fmt.Errorf("%w: write: %v", ErrConnectionLost, err))
		return rc.lost()
	}
	answer := func(f protocol.RelayFrame) error {
		if n, ok := f.(*protocol.RelayNack); ok {
			return &NackError{Relay: rc.addr, Reason: n.Reason}
		}
		return nil
	}
	select {
	case f := <-ch:
		return answer(f)
	case <-rc.done:
		select {
		case f := <-ch: // the verdict came in just before the end
			return answer(f)
		default:
		}
		return rc.lost()
	case <-ctx.Done():
		forget()
		return ctx.Err()
	}
}
