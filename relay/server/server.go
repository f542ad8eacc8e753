// Package server is the jitkey relay: a QUIC server that authenticates
// peers by their Ed25519 identity key, bound to the TLS exporter, and
// forwards bounded opaque frames between the mailboxes of connected peers.
// It writes nothing to disk and keeps no state but its connection table.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/push"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server is one relay.
type Server struct {
	cfg     Config
	lim     Limits
	log     *slog.Logger
	tlsConf *tls.Config
	pin     [32]byte
	pushKey *push.Key
	// resetKey is the QUIC stateless reset key, derived from the TLS key
	// so that a restarted relay resets its predecessor's connections.
	resetKey *quic.StatelessResetKey
	met      *metrics
	adm      *admission
	pushSem  chan struct{}
	wakes    *wakeLimits // set when push is on
	bufs     sync.Pool   // frame body buffers
	chunks   sync.Pool   // writeChunk buffers for coalesced writes

	mu       sync.RWMutex
	peers    map[protocol.MailboxID]*peer
	all      map[*peer]struct{} // every authenticated peer, replaced ones too
	draining bool
	serving  bool
	ln       *quic.Listener
	tr       *quic.Transport
	pc       net.PacketConn
	shutdown bool // Shutdown started: Serve waits for the drain
	addr     net.Addr
	ready    chan struct{}
	stopped  chan struct{} // closed when Shutdown's drain ends

	wg sync.WaitGroup // connection, writer and push goroutines
	// afterAdd, if set (tests), runs in Serve between counting an
	// accepted connection in wg and starting its goroutine.
	afterAdd func()
	ctx      context.Context
	cancel   context.CancelFunc
	closing  sync.Once
}

// New builds a server from cfg; it does not listen yet.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	cert, pin, err := loadCertificate(cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		cfg:   cfg,
		lim:   cfg.Limits,
		log:   cfg.Logger,
		pin:   pin,
		met:   newMetrics(),
		adm:   newAdmission(cfg.Limits),
		peers: make(map[protocol.MailboxID]*peer),
		all:   make(map[*peer]struct{}),
		ready: make(chan struct{}),
		tlsConf: &tls.Config{
			MinVersion:             tls.VersionTLS13,
			Certificates:           []tls.Certificate{cert},
			NextProtos:             []string{protocol.RelayALPN},
			SessionTicketsDisabled: true,
			Rand:                   cfg.Rand,
			Time:                   cfg.Now,
		},
		stopped: make(chan struct{}),
	}
	s.met.admission = s.adm.stats
	if s.resetKey, err = statelessResetKey(cert.PrivateKey); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.Waker != nil {
		ikm := cfg.PushKey
		if ikm == nil {
			ikm = make([]byte, 32)
			if _, err := io.ReadFull(cfg.Rand, ikm); err != nil {
				return nil, fmt.Errorf("server: generate push key: %w", err)
			}
		}
		if s.pushKey, err = push.NewKey(ikm); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.pushSem = make(chan struct{}, s.lim.MaxPushInFlight)
		tokenKey := make([]byte, 32)
		if _, err := io.ReadFull(cfg.Rand, tokenKey); err != nil {
			return nil, fmt.Errorf("server: generate wake limit key: %w", err)
		}
		s.wakes = newWakeLimits(s.lim, tokenKey)
		s.met.wakes = s.wakes.stats
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Pin is SHA-256 of the certificate's SubjectPublicKeyInfo; peers pin it.
func (s *Server) Pin() [32]byte { return s.pin }

// PushKey is the HPKE public key push tickets are sealed to, or nil when
// push is off.
func (s *Server) PushKey() []byte {
	if s.pushKey == nil {
		return nil
	}
	return s.pushKey.PublicKey()
}

// Addr is the bound UDP address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.addr
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// MetricsHandler serves Prometheus text metrics; mount it on a separate
// listener.
func (s *Server) MetricsHandler() http.Handler { return s.met }

// ListenAndServe binds cfg.Listen and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	pc, err := net.ListenPacket("udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ctx, pc)
}

// Serve accepts peers on pc until ctx is done (hard close) or Shutdown
// completes. It takes ownership of pc. When Serve returns, every goroutine
// the server started has ended.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	s.mu.Lock()
	if s.serving || s.draining {
		s.mu.Unlock()
		pc.Close()
		return errors.New("server: Serve called twice or after Shutdown")
	}
	s.serving = true
	s.tr = &quic.Transport{Conn: pc, StatelessResetKey: s.resetKey, VerifySourceAddress: s.verifySource, ConnContext: s.connContext}
	conf := &quic.Config{
		HandshakeIdleTimeout:           s.lim.HandshakeTimeout,
		MaxIdleTimeout:                 s.lim.IdleTimeout,
		KeepAlivePeriod:                s.lim.KeepAlive,
		MaxIncomingStreams:             1,
		MaxIncomingUniStreams:          -1,
		InitialStreamReceiveWindow:     128 << 10,
		MaxStreamReceiveWindow:         512 << 10,
		InitialConnectionReceiveWindow: 128 << 10,
		MaxConnectionReceiveWindow:     512 << 10,
	}
	normal, busy := conf.Clone(), conf.Clone()
	busy.HandshakeIdleTimeout = s.lim.BusyHandshakeTimeout
	// Connections admitted under handshake pressure get the shorter
	// handshake timeout (RL-29). quic-go calls this just before
	// connContext, for attempts that are not answered with a Retry.
	conf.GetConfigForClient = func(*quic.ClientInfo) (*quic.Config, error) {
		if s.adm.underPressure() {
			return busy, nil
		}
		return normal, nil
	}
	ln, err := s.tr.Listen(s.tlsConf, conf)
	if err != nil {
		s.mu.Unlock()
		s.tr.Close()
		return fmt.Errorf("server: quic listen: %w", err)
	}
	s.ln = ln
	s.pc = pc
	s.addr = pc.LocalAddr()
	if drops := socketDrops(pc); drops != nil {
		s.met.socketDrops.Store(&drops)
	}
	s.mu.Unlock()
	close(s.ready)
	s.log.Info("relay listening", "addr", s.addr.String(), "pin", fmt.Sprintf("%x", s.pin))

	stop := context.AfterFunc(ctx, s.closeNow)
	defer stop()
	for {
		conn, err := ln.Accept(s.ctx)
		if err != nil {
			break
		}
		s.met.connsAccepted.Add(1)
		// The connection is counted in wg under s.mu, and only while
		// the server is not draining: Shutdown and closeNow set draining
		// under s.mu before they Wait, so an Add either happens before
		// their Wait or not at all. (quic-go's Accept still returns
		// connections queued before Close; an Add from zero not ordered
		// before a Wait is a data race, seen in CI.)
		s.mu.RLock()
		if s.draining {
			s.mu.RUnlock()
			if a, _ := conn.Context().Value(attemptKey{}).(*attempt); a != nil {
				a.accepted.Store(true) // not a handshake failure
			}
			conn.CloseWithError(quic.ApplicationErrorCode(protocol.RelayCloseShutdown), "relay shutting down")
			continue
		}
		s.wg.Add(1)
		s.mu.RUnlock()
		if s.afterAdd != nil {
			s.afterAdd()
		}
		go s.handleConn(conn)
	}
	s.mu.RLock()
	graceful := s.shutdown
	s.mu.RUnlock()
	if graceful {
		select {
		case <-s.stopped:
		case <-ctx.Done():
		}
	}
	s.closeNow()
	s.wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrServerClosed
}

// attemptKey is the context key of a connection's *attempt.
type attemptKey struct{}

// attempt is one admitted connection, from before its handshake.
type attempt struct {
	slot     *slot
	accepted atomic.Bool // set once Accept returned the connection
}

// verifySource decides, before any handshake work, whether an Initial
// without an address validation token is answered with a QUIC Retry
// (RL-26). quic-go calls it on its packet-handling goroutine.
func (s *Server) verifySource(addr net.Addr) bool {
	reason := s.adm.verify(addrIP(addr), s.cfg.Now())
	if reason == "" {
		return false
	}
	s.met.retry(reason)
	return true
}

// connContext admits or refuses a connection attempt before its handshake
// (RL-17, RL-18, RL-23 .. RL-25, RL-28). A refusal is a QUIC
// CONNECTION_REFUSED.
func (s *Server) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	sl, reason := s.adm.admit(addrIP(info.RemoteAddr), info.AddrVerified, s.cfg.Now())
	if reason != "" {
		s.met.refuse(reason)
		return nil, fmt.Errorf("refused: %s", reason)
	}
	a := &attempt{slot: sl}
	context.AfterFunc(ctx, func() {
		s.adm.release(sl, s.cfg.Now())
		if !a.accepted.Load() {
			s.met.handshakeFailed.Add(1)
		}
	})
	return context.WithValue(ctx, attemptKey{}, a), nil
}

func addrIP(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(u.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// closeNow closes every connection and the transport at once.
func (s *Server) closeNow() {
	s.closing.Do(func() {
		s.mu.Lock()
		s.draining = true
		ln, tr, pc := s.ln, s.tr, s.pc
		peers := make([]*peer, 0, len(s.all))
		for p := range s.all {
			peers = append(peers, p)
		}
		s.mu.Unlock()
		s.cancel()
		if ln != nil {
			ln.Close()
		}
		for _, p := range peers {
			p.close(protocol.RelayCloseShutdown, "relay closed")
		}
		if tr != nil {
			tr.Close()
		}
		if pc != nil {
			pc.Close() // a Transport does not close a socket it was given
		}
	})
}

// Shutdown drains the relay: it stops accepting connections, refuses new
// Sends with NackShuttingDown, flushes queued frames, sends GoAway so that
// peers reconnect (to another relay or to this one restarted), waits until
// peers have left or ctx (or Limits.DrainTimeout, if ctx has no deadline)
// expires, then closes what is left. It returns when Serve's goroutines
// have ended.
func (s *Server) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.lim.DrainTimeout)
		defer cancel()
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		<-s.stopped
		s.wg.Wait()
		return nil
	}
	s.draining = true
	s.shutdown = true
	ln := s.ln
	peers := make([]*peer, 0, len(s.all))
	for p := range s.all {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	s.log.Info("relay draining", "peers", len(peers))
	goAway := mustEncode(&protocol.RelayGoAway{Reason: protocol.GoAwayShutdown, RetryAfterMs: uint32(s.lim.RetryAfter / time.Millisecond)})
	for _, p := range peers {
		p.enqueueControl(goAway)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		s.mu.RLock()
		n := len(s.all)
		s.mu.RUnlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("server: drain: %w", ctx.Err())
			break wait
		case <-tick.C:
		}
	}
	close(s.stopped)
	s.closeNow()
	s.wg.Wait()
	s.log.Info("relay stopped")
	return err
}

func mustEncode(f protocol.RelayFrame) []byte {
	b, err := protocol.EncodeRelayFrame(f)
	if err != nil {
		panic("server: encode fixed frame: " + err.Error())
	}
	return b
}
