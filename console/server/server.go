// Package server is the console's online part (`jitkey-console serve`): a
// peer on the relay that enrols agents (FlowEnroll), pairs phones
// (FlowPair), collects audit (FlowAudit), answers phone syncs (FlowSync),
// signs MSP admins in to the web console (FlowConsoleLogin, through
// Config.SignIn) and pushes new tenant policies (FlowPolicy) to agents and phones until
// each has acknowledged the latest version.
//
// The command-line tool writes to the same database while serve runs:
// pending pairing codes and tokens are read at Accept time, and new policy
// versions are noticed by polling (Config.PollInterval, default 500 ms).
// A peer that could not be reached is tried again after RetryInterval,
// doubling up to MaxRetryInterval, and at once when it shows up (an audit
// batch or a sync).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/protocol"
)

// Config configures a Server.
type Config struct {
	Console          *console.Console
	Relay            channel.Relay
	Recv             channel.RecvFunc
	PollInterval     time.Duration // default 500 ms
	RetryInterval    time.Duration // default 5 s
	MaxRetryInterval time.Duration // default 5 min
	SessionTimeout   time.Duration // default 30 s, per accepted or pushed session
	Now              func() time.Time
	Logger           *slog.Logger
	// SignIn, if set, serves the web console's sign-ins
	// (FlowConsoleLogin, SPEC.md 11.12); *signin.Registry implements it.
	SignIn SignIn
}

// SignIn serves FlowConsoleLogin: PSK answers a hello for a sign-in code
// (an error drops it unanswered); Serve runs the session.
type SignIn interface {
	PSK(ctx context.Context, session protocol.SessionID) ([]byte, error)
	Serve(ctx context.Context, c *channel.Conn)
}

// Server serves the console's flows on one relay connection.
type Server struct {
	cfg Config
	con *console.Console
	log *slog.Logger
	mux *channel.Mux

	mu       sync.Mutex
	inflight map[string]bool
	retry    map[string]retryState
	kick     chan struct{}
	wg       sync.WaitGroup
}

type retryState struct {
	next  time.Time
	delay time.Duration
}

// New returns a Server; call Run.
func New(cfg Config) *Server {
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	if cfg.MaxRetryInterval == 0 {
		cfg.MaxRetryInterval = 5 * time.Minute
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, con: cfg.Console, log: log,
		inflight: map[string]bool{}, retry: map[string]retryState{}, kick: make(chan struct{}, 1),
	}
	s.mux = channel.New(channel.Config{
		Relay: cfg.Relay, Static: cfg.Console.Peer().Noise,
		Accept: s.accept, Handle: s.handle, Logger: log,
	})
	return s
}

// Run serves until ctx ends or the relay receive fails.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.pushLoop(ctx)
	}()
	err := s.mux.Pump(ctx, s.cfg.Recv)
	cancel()
	s.wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *Server) accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	var none protocol.NoiseKey
	switch h.Flow {
	case protocol.FlowEnroll:
		psk, err := s.con.EnrollPSK(ctx, h.Session)
		return psk, none, err
	case protocol.FlowPair:
		psk, err := s.con.PairPSK(ctx, h.Session)
		return psk, none, err
	case protocol.FlowAudit:
		d, err := s.con.DeviceByMailbox(ctx, h.From.Mailbox)
		if err != nil {
			return nil, none, err
		}
		return nil, d.NoiseKey, nil
	case protocol.FlowSync:
		row, _, err := s.con.PhoneByMailbox(ctx, h.From.Mailbox)
		if err != nil {
			return nil, none, err
		}
		return nil, row.NoiseKey, nil
	case protocol.FlowConsoleLogin:
		if s.cfg.SignIn != nil {
			psk, err := s.cfg.SignIn.PSK(ctx, h.Session)
			return psk, none, err
		}
	}
	return nil, none, fmt.Errorf("console/server: flow %s not served", h.Flow.Name())
}

func (s *Server) handle(ctx context.Context, c *channel.Conn) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout)
	defer cancel()
	pi := console.PeerInfo{Session: c.ID, From: c.Peer, NoiseKey: c.Session.PeerStatic(), HandshakeHash: c.Session.HandshakeHash()}
	switch c.Flow {
	case protocol.FlowEnroll:
		s.handleEnroll(ctx, c, pi)
	case protocol.FlowPair:
		s.handlePair(ctx, c, pi)
	case protocol.FlowAudit:
		s.handleAudit(ctx, c)
	case protocol.FlowSync:
		s.handleSync(ctx, c)
	case protocol.FlowConsoleLogin:
		if s.cfg.SignIn != nil {
			s.cfg.SignIn.Serve(ctx, c)
		}
	}
}

// refuse answers a failed request with a coarse error; the local log has
// the reason.
func (s *Server) refuse(ctx context.Context, c *channel.Conn, flow string, err error, expiredText string) {
	code, text := protocol.CodeUnavailable, "try again later"
	switch {
	case errors.Is(err, console.ErrExpired):
		code, text = protocol.CodeExpired, expiredText
	case errors.Is(err, console.ErrRefused):
		code, text = protocol.CodeRefused, "refused"
	}
	s.log.Warn(flow+" refused", "from", c.Peer.Mailbox.String(), "err", err)
	_ = c.SendError(ctx, code, text)
}

func (s *Server) handleEnroll(ctx context.Context, c *channel.Conn, pi console.PeerInfo) {
	var req protocol.EnrollRequest
	if err := c.Recv(ctx, protocol.MsgEnrollRequest, &req); err != nil {
		s.log.Info("enroll: bad request", "from", c.Peer.Mailbox.String(), "err", err)
		_ = c.SendError(ctx, protocol.CodeBadRequest, "bad request")
		return
	}
	resp, _, err := s.con.Enroll(ctx, pi, &req)
	if err != nil {
		s.refuse(ctx, c, "enroll", err, "enrollment token expired or used up")
		return
	}
	if err := c.Send(ctx, protocol.MsgEnrollResponse, resp); err != nil {
		s.log.Warn("enroll: send response", "err", err)
	}
	// A new domain-joined device changes its tenant's DC agents'
	// directory (SPEC.md 8.2 PolicyPush).
	s.poke()
}

func (s *Server) handlePair(ctx context.Context, c *channel.Conn, pi console.PeerInfo) {
	var req protocol.PairRequest
	if err := c.Recv(ctx, protocol.MsgPairRequest, &req); err != nil {
		s.log.Info("pair: bad request", "from", c.Peer.Mailbox.String(), "err", err)
		_ = c.SendError(ctx, protocol.CodeBadRequest, "bad request")
		return
	}
	resp, pages, tc, err := s.con.Pair(ctx, pi, &req)
	if err != nil {
		s.refuse(ctx, c, "pair", err, "pairing code expired or already used")
		return
	}
	// The pairing is done whatever happens next: a phone that does not
	// get every page stores nothing and needs a new code.
	if err := protocol.SendTransfer(ctx, c, resp, pages); err != nil {
		s.log.Warn("pair: send the phone's view", "username", tc.Username, "pages", len(pages), "err", err)
	}
	s.poke()
}

func (s *Server) handleAudit(ctx context.Context, c *channel.Conn) {
	for {
		msg, err := c.RecvRaw(ctx)
		if err != nil {
			return
		}
		if len(msg) > 0 && protocol.MsgType(msg[0]) == protocol.MsgRecoveryEscrow {
			// The break-glass recovery code, after the records that
			// report its predecessor's use (SPEC.md 11.15).
			if !s.handleEscrow(ctx, c, msg) {
				return
			}
			continue
		}
		var b protocol.AuditBatch
		if err := protocol.DecodeMsg(msg, protocol.MsgAuditBatch, &b); err != nil {
			return
		}
		res, err := s.con.IngestAudit(ctx, c.Peer.Mailbox, &b)
		if err != nil {
			s.refuse(ctx, c, "audit", err, "")
			return
		}
		if !c.Session.PeerIs(res.Device.NoiseKey) { // Accept chose the key; belt and braces
			return
		}
		if err := c.Send(ctx, protocol.MsgAuditAck, &res.Ack); err != nil {
			return
		}
		s.seen(fmt.Sprintf("device:%x", res.Device.ID))
	}
}

// handleEscrow stores an agent's recovery code and acknowledges it; it
// reports whether the session goes on.
func (s *Server) handleEscrow(ctx context.Context, c *channel.Conn, msg []byte) bool {
	defer clear(msg) // it holds the code
	var e protocol.RecoveryEscrow
	if err := protocol.DecodeMsg(msg, protocol.MsgRecoveryEscrow, &e); err != nil {
		_ = c.SendError(ctx, protocol.CodeBadRequest, "bad request")
		return false
	}
	defer clear(e.Code[:])
	ack, d, err := s.con.EscrowRecovery(ctx, c.Peer.Mailbox, &e)
	if err != nil {
		s.refuse(ctx, c, "escrow", err, "")
		return false
	}
	if !c.Session.PeerIs(d.NoiseKey) { // Accept chose the key; belt and braces
		return false
	}
	return c.Send(ctx, protocol.MsgRecoveryAck, ack) == nil
}

func (s *Server) handleSync(ctx context.Context, c *channel.Conn) {
	var req protocol.SyncRequest
	if err := c.Recv(ctx, protocol.MsgSyncRequest, &req); err != nil {
		return
	}
	row, tc, err := s.con.PhoneByMailbox(ctx, c.Peer.Mailbox)
	if err != nil || !c.Session.PeerIs(row.NoiseKey) {
		s.refuse(ctx, c, "sync", fmt.Errorf("%w: %v", console.ErrRefused, err), "")
		return
	}
	v, err := s.con.PhoneSync(ctx, tc)
	var pages []protocol.PolicyPush
	if err == nil {
		pages, err = v.Pages()
	}
	if err != nil {
		s.refuse(ctx, c, "sync", err, "")
		return
	}
	if err := protocol.SendTransfer(ctx, c, nil, pages); err != nil {
		s.log.Info("sync: send the phone's view", "serial", tc.Serial, "pages", len(pages), "err", err)
		return
	}
	var ack protocol.PolicyAck
	if err := c.Recv(ctx, protocol.MsgPolicyAck, &ack); err != nil {
		return
	}
	if err := s.con.RecordPhoneAck(ctx, tc, ack.Versions); err != nil {
		s.log.Warn("sync: record ack", "err", err)
	}
	s.seen(fmt.Sprintf("phone:%d", tc.Serial))
}

// seen resets a peer's retry delay: it is online now.
func (s *Server) seen(key string) {
	s.mu.Lock()
	delete(s.retry, key)
	s.mu.Unlock()
	s.poke()
}

func (s *Server) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) pushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.pushRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

func (s *Server) pushRound(ctx context.Context) {
	targets, err := s.con.PushTargets(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("policy push: list targets", "err", err)
		}
		return
	}
	now := s.cfg.Now()
	for _, t := range targets {
		s.mu.Lock()
		r := s.retry[t.Key]
		busy := s.inflight[t.Key] || now.Before(r.next)
		if !busy {
			s.inflight[t.Key] = true
		}
		s.mu.Unlock()
		if busy {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.push(ctx, t)
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.inflight, t.Key)
			if err == nil {
				delete(s.retry, t.Key)
				return
			}
			r := s.retry[t.Key]
			r.delay = min(max(2*r.delay, s.cfg.RetryInterval), s.cfg.MaxRetryInterval)
			r.next = s.cfg.Now().Add(r.delay)
			s.retry[t.Key] = r
			if ctx.Err() == nil {
				s.log.Debug("policy push failed", "peer", t.Key, "retry_in", r.delay, "err", err)
			}
		}()
	}
}

// push sends one transfer (a single PolicyPush to an agent, the pages of
// the view to a phone) and records the acknowledged versions.
func (s *Server) push(ctx context.Context, t console.PushTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout)
	defer cancel()
	c, err := s.mux.Dial(ctx, channel.DialConfig{To: t.Addr, Flow: protocol.FlowPolicy, PeerStatic: t.NoiseKey})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := protocol.SendTransfer(ctx, c, nil, t.Pages); err != nil {
		return err
	}
	var ack protocol.PolicyAck
	if err := c.Recv(ctx, protocol.MsgPolicyAck, &ack); err != nil {
		return err
	}
	if t.Device != nil {
		err = s.con.RecordDeviceAck(ctx, t.Device, ack.Versions)
	} else {
		err = s.con.RecordPhoneAck(ctx, t.Tech, ack.Versions)
	}
	if err != nil {
		return err
	}
	held := map[string]uint64{}
	for _, v := range ack.Versions {
		held[v.Tenant] = v.Version
	}
	for _, v := range t.Versions {
		if held[v.Tenant] < v.Version {
			s.log.Warn("policy push not applied", "peer", t.Key, "tenant", v.Tenant, "pushed", v.Version, "holds", held[v.Tenant])
			return fmt.Errorf("console/server: %s holds version %d of %s, pushed %d", t.Key, held[v.Tenant], v.Tenant, v.Version)
		}
	}
	s.con.DirectoryPushed(&t)
	s.log.Info("policy pushed", "peer", t.Key, "acked", ack.Versions)
	return nil
}
