package ipcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// OfflineLogin checks offline codes (package agent/offline).
type OfflineLogin interface {
	Login(ctx context.Context, r offline.Request) (lifecycle.Grant, error)
}

// Config configures a Server.
type Config struct {
	Login     *login.Server
	Lifecycle *lifecycle.Manager
	// Offline checks codes; nil refuses them.
	Offline OfflineLogin
	// Push starts push logins; nil ignores Push messages.
	Push *push.Server
	// Status reports the current Status and a channel closed at its next
	// change; nil means always online, codes refused.
	Status func() (Status, <-chan struct{})
	Logger *slog.Logger
	// PNGScale is pixels per QR module (default 6).
	PNGScale int
	// Now is the clock of the per-user limits (default time.Now).
	Now func() time.Time
}

// Server serves login surfaces.
type Server struct {
	cfg   Config
	log   *slog.Logger
	wg    sync.WaitGroup
	users userLimiter
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.PNGScale == 0 {
		cfg.PNGScale = 6
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Listener is where Serve takes connections from: *ipc.Listener (the
// Unix socket) or winhelper/pipe's named pipe listener.
type Listener interface {
	Accept(ctx context.Context) (*ipc.Conn, error)
	Close() error
}

// Serve accepts connections on ln until ctx ends, then closes ln and
// waits for the connections it serves. ln admits only allowed peers (root,
// by ipc.Listen's default; LocalSystem and interactive users for the named
// pipe) and classifies each (ipc.Peer.Kind): a PeerSystem peer is served
// every message, a PeerUser peer only a remote desktop login (a Begin with
// a Target), within the per-user limits (SPEC.md 5.7 "Peers").
func (s *Server) Serve(ctx context.Context, ln Listener) error {
	defer s.wg.Wait()
	defer ln.Close()
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("ipcserver: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(ctx, c)
		}()
	}
}

func (s *Server) serve(ctx context.Context, c *ipc.Conn) {
	t, body, err := recv(ctx, c)
	if err != nil {
		return
	}
	if peer := c.Peer(); peer.Kind != ipc.PeerSystem {
		s.serveUser(ctx, c, peer, t, body)
		return
	}
	switch t {
	case MsgBegin:
		b, ok := decodeBegin(body)
		if !ok {
			_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "malformed request"})
			return
		}
		action := actionOf(b)
		if action == 0 {
			_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "unknown surface or action"})
			return
		}
		s.login(ctx, c, b, action, c.Peer())
	case MsgEnd:
		var e End
		if err := protocol.Unmarshal(body, &e); err != nil {
			_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "malformed request"})
			return
		}
		s.end(ctx, c, e.Session)
	default:
		_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "unexpected message"})
	}
}

func (s *Server) end(ctx context.Context, c *ipc.Conn, session protocol.SessionID) {
	err := s.cfg.Lifecycle.End(ctx, session, audit.SessionEnded)
	if errors.Is(err, lifecycle.ErrNoSession) {
		_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeExpired, Reason: "no such session"})
		return
	}
	if err != nil {
		s.log.Error("end session", "err", err)
		_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeUnavailable, Reason: "session end failed; the agent retries"})
		return
	}
	_ = s.send(ctx, c, MsgEnded, &Ended{OK: true})
}

// denialOf is what the surface shows for a refused QR or push login.
func denialOf(err error) *Denied {
	// The first row with an error err matches wins.
	denials := []struct {
		errs   []error
		denied Denied
	}{
		{[]error{push.ErrCoDenied}, Denied{Code: protocol.CodeDenied, Reason: "denied by the second approver"}},
		{[]error{push.ErrCoRefused, push.ErrNoCoApprover, push.ErrCoNoAnswer}, Denied{Code: protocol.CodeRefused, Reason: "no valid second approval"}},
		{[]error{login.ErrRemoved}, Denied{Code: protocol.CodeRefused, Reason: "this computer was removed from jitkey by the MSP; jitkey logins are disabled"}},
		{[]error{login.ErrRefused}, Denied{Code: protocol.CodeRefused, Reason: "not allowed on this device"}},
		{[]error{login.ErrDenied}, Denied{Code: protocol.CodeDenied, Reason: "denied by the technician"}},
		{[]error{login.ErrCancelled}, Denied{Code: protocol.CodeExpired, Reason: "cancelled"}},
		{[]error{login.ErrDomainUnavailable}, Denied{Code: protocol.CodeUnavailable, Reason: "domain controller unreachable; try again or choose a local account"}},
		{[]error{login.ErrNoTarget}, Denied{Code: protocol.CodeRefused, Reason: "no remote desktop to this target"}},
		{[]error{login.ErrDomainRefused}, Denied{Code: protocol.CodeRefused, Reason: "the domain controller refused the domain account"}},
		{[]error{login.ErrNotEnrolled}, Denied{Code: protocol.CodeUnavailable, Reason: "agent not enrolled or without policy"}},
		{[]error{push.ErrNoAnswer}, Denied{Code: protocol.CodeExpired, Reason: "no answer from the phone"}},
		{[]error{push.ErrWrongNumber}, Denied{Code: protocol.CodeRefused, Reason: "wrong number picked on the phone"}},
		{[]error{push.ErrDenied, push.ErrReported}, Denied{Code: protocol.CodeDenied, Reason: "denied by the technician"}},
		{[]error{push.ErrCancelled}, Denied{Code: protocol.CodeExpired, Reason: "cancelled"}},
	}
	for _, d := range denials {
		for _, e := range d.errs {
			if errors.Is(err, e) {
				return &d.denied
			}
		}
	}
	return &Denied{Code: protocol.CodeUnavailable, Reason: "account could not be made ready"}
}

// offlineDenial is what the surface shows for a refused code.
func offlineDenial(err error) *Denied {
	if l, ok := errors.AsType[*offline.LockedError](err); ok {
		return &Denied{Code: protocol.CodeRefused, Reason: strings.TrimPrefix(l.Error(), "offline: ")}
	}
	for _, e := range []error{offline.ErrWrongCode, offline.ErrRecoveryRefused, offline.ErrRecoveryMistyped, offline.ErrBreakGlassOff, offline.ErrRefused, offline.ErrNoKey, offline.ErrLimit,
		offline.ErrOnline, offline.ErrRemoved, offline.ErrNotEnrolled} {
		if errors.Is(err, e) {
			code := protocol.CodeRefused
			if e == offline.ErrNotEnrolled {
				code = protocol.CodeUnavailable
			}
			return &Denied{Code: code, Reason: strings.TrimPrefix(e.Error(), "offline: ")}
		}
	}
	return &Denied{Code: protocol.CodeUnavailable, Reason: "account could not be made ready"}
}

// status returns the current Status and its change channel.
func (s *Server) status() (Status, <-chan struct{}) {
	if s.cfg.Status == nil {
		return Status{Online: true}, nil
	}
	return s.cfg.Status()
}

// login serves the login a Begin asked for, action (1..4) its actionOf.
func (s *Server) login(ctx context.Context, c *ipc.Conn, b Begin, action uint8, peer ipc.Peer) {
	user := peer.Kind != ipc.PeerSystem
	req, err := s.cfg.Login.BeginTarget(ctx, action, b.Surface, b.Target)
	if err != nil {
		s.log.Warn("login request refused", "err", err)
		_ = s.send(ctx, c, MsgDenied, denialOf(err))
		return
	}
	// However this ends, a grant not handed to the surface is ended with
	// the request, even while the agent shuts down.
	defer func() {
		if err := req.Cancel(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("login surface gone after the approval; session end failed, retried", "err", err)
		}
	}()
	// The reader watches for the surface's End or its disconnection.
	// It stops, and is waited for, when the login ends.
	ends := make(chan protocol.SessionID, 1)
	codes := make(chan Code, 1)
	pushes := make(chan Push, 1)
	refused := make(chan string, 1) // a user peer's message it may not send; the reader stops after it
	gone := make(chan struct{})
	readCtx, stopReading := context.WithCancel(ctx)
	defer func() {
		stopReading()
		<-gone
	}()
	go func() {
		defer close(gone)
		for {
			t, body, err := recv(readCtx, c)
			if err != nil {
				return
			}
			switch t {
			case MsgEnd:
				var e End
				if protocol.Unmarshal(body, &e) == nil {
					offer(ends, e.Session)
				}
			case MsgCode, MsgPush:
				if user {
					name := "Code"
					if t == MsgPush {
						name = "Push"
					}
					offer(refused, "a user's prompt may not send "+name)
					return
				}
				if b.Target != "" {
					continue // a remote desktop logon takes the phone's domain account only
				}
				// One attempt, or one push, at a time.
				var c Code
				var p Push
				if t == MsgCode && protocol.Unmarshal(body, &c) == nil && len(c.Username) <= MaxUsername {
					offer(codes, c)
				} else if t == MsgPush && protocol.Unmarshal(body, &p) == nil && len(p.Email) <= protocol.MaxIPCEmail {
					offer(pushes, p)
				}
			}
		}
	}()
	// waiting: the technician approved (the QR code's login or the
	// Push) and the agent asks a second approver (SPEC.md 5.7.7, 11.14).
	// The surface is told so in Status; it gets no QR code after that,
	// and Code and Push are ignored, until the login ends.
	waiting := false
	qrWait := req.SecondApproval()
	var pushWait <-chan struct{}
	st, changed := s.status()
	if err := s.send(ctx, c, MsgStatus, &st); err != nil {
		return
	}
	// startWaiting tells the surface that the login waits for a second
	// approver.
	startWaiting := func() error {
		if waiting {
			return nil
		}
		waiting = true
		st = waitingStatus(st)
		if err := s.send(ctx, c, MsgStatus, &st); err != nil {
			return err
		}
		s.log.Info("login surface told it waits for a second approver", "surface", b.Surface)
		return nil
	}
	// A push login runs beside the QR code; a new Push is taken only
	// once the current one has ended.
	var pr *push.Request
	var pushNumber <-chan uint8
	var pushDone <-chan struct{}
	defer func() {
		if pr != nil {
			if err := pr.Cancel(context.WithoutCancel(ctx)); err != nil {
				s.log.Warn("push login: session end failed, retried", "err", err)
			}
		}
	}()
	// The login ends with a grant, or with err and what deny makes of it.
	var grant lifecycle.Grant
	deny := denialOf
	for {
		var pushIn <-chan Push
		if pr == nil && s.cfg.Push != nil && !waiting {
			pushIn = pushes
		}
		qrs, codesIn := req.QR(), codes
		if waiting {
			qrs, codesIn = nil, nil
		}
		// A push shows its Number before it may say that it waits.
		var pushWaitIn <-chan struct{}
		if pushNumber == nil {
			pushWaitIn = pushWait
		}
		select {
		case p := <-pushIn:
			r, err := s.cfg.Push.Begin(ctx, action, p.Email)
			if err != nil {
				s.log.Warn("push login not started", "err", err)
				continue
			}
			pr, pushNumber, pushDone, pushWait = r, r.Number(), r.Done(), r.SecondApproval()
			continue
		case <-qrWait:
			qrWait = nil
			if err := startWaiting(); err != nil {
				return
			}
			continue
		case <-pushWaitIn:
			pushWait = nil
			if err := startWaiting(); err != nil {
				return
			}
			continue
		case n := <-pushNumber:
			pushNumber = nil
			if err := s.send(ctx, c, MsgNumber, &Number{Number: n}); err != nil {
				return
			}
			continue
		case <-pushDone:
			if pushNumber != nil {
				// Answered (denied, reported) before the number was
				// shown: every Push gets its Number first (SPEC.md 5.7.10).
				select {
				case n := <-pushNumber:
					if err := s.send(ctx, c, MsgNumber, &Number{Number: n}); err != nil {
						return
					}
				case <-ctx.Done():
					return
				}
			}
			grant, err = pr.Result()
		case q := <-qrs:
			if err := s.sendQR(ctx, c, q); err != nil {
				s.log.Info("login surface gone", "err", err)
				return
			}
			continue
		case <-changed:
			st, changed = s.status()
			if waiting {
				st = waitingStatus(st)
			}
			if err := s.send(ctx, c, MsgStatus, &st); err != nil {
				return
			}
			continue
		case code := <-codesIn:
			grant, err = s.offlineLogin(ctx, action, st, code)
			deny = offlineDenial
		case <-gone:
			if s.refusedUser(ctx, c, peer, action, refused) {
				return
			}
			s.log.Info("login surface disconnected before the approval", "surface", b.Surface)
			return
		case <-ctx.Done():
			return
		case <-req.Done():
			grant, err = req.Result()
		}
		break
	}
	if err != nil {
		_ = s.send(ctx, c, MsgDenied, deny(err))
		return
	}
	cred := Credential{Username: grant.Account, Password: grant.Password.Bytes(), Session: grant.Session, Deadline: grant.Deadline.Unix()}
	err = s.send(ctx, c, MsgCredential, &cred)
	grant.Password.Wipe()
	if err != nil {
		s.log.Warn("credential not delivered; ending the session", "err", err)
		if err := s.cfg.Lifecycle.End(context.WithoutCancel(ctx), grant.Session, audit.SessionEnded); err != nil {
			s.log.Error("end session of an undelivered credential", "err", err)
		}
		return
	}
	// A user's prompt that sends what it may not after its Credential
	// is not the reference surface: refused, and its session ended as by
	// its own End (SPEC.md 5.7 "Peers").
	select {
	case session := <-ends:
		if user && session != grant.Session {
			s.refuseUser(ctx, c, peer, action, "a user's prompt may end only the session it was given")
			s.endRefused(ctx, grant.Session)
			return
		}
		s.end(ctx, c, session)
	case <-gone:
		if s.refusedUser(ctx, c, peer, action, refused) {
			s.endRefused(ctx, grant.Session)
			return
		}
		// The session outlives this connection; End may come on another
		// one, or the deadline ends it.
	case <-ctx.Done():
	}
}

// endRefused ends the session of a user's prompt refused after its
// Credential, by End's path (disabled, logged off, out of the
// administrators group, re-randomised, receipt), even while the agent
// shuts down; a failed end is left to the lifecycle manager (its retry,
// the deadline).
func (s *Server) endRefused(ctx context.Context, session protocol.SessionID) {
	if err := s.cfg.Lifecycle.End(context.WithoutCancel(ctx), session, audit.SessionEnded); err != nil {
		s.log.Error("end the session of a refused user's prompt", "err", err)
	}
}

// refusedUser answers and audits the message a user's prompt may not
// send, if the reader stopped for one (it reports it on refused before
// it stops, so the caller waits only for gone).
func (s *Server) refusedUser(ctx context.Context, c *ipc.Conn, peer ipc.Peer, action uint8, refused <-chan string) bool {
	select {
	case why := <-refused:
		s.refuseUser(ctx, c, peer, action, why)
		return true
	default:
		return false
	}
}

// waitingStatus is st while the login waits for a second approver
// (SPEC.md 5.7.7): no code is taken.
func waitingStatus(st Status) Status {
	st.OTP, st.SecondApproval = false, true
	return st
}

// decodeBegin decodes a Begin body strictly (SPEC.md 5.7.1: a Target of
// at most MaxIPCTarget bytes), for a system peer and a user peer alike.
func decodeBegin(body []byte) (Begin, bool) {
	var b Begin
	if err := protocol.Unmarshal(body, &b); err != nil || len(b.Target) > protocol.MaxIPCTarget {
		return Begin{}, false
	}
	return b, true
}

// actionOf is the action a Begin asks for: its Action, or with 0 its
// surface's own; 0 when that is not an action (1..4).
func actionOf(b Begin) uint8 {
	a := b.Action
	if a == 0 {
		a = ActionFor(b.Surface)
	}
	if protocol.ActionName(a) == "" {
		return 0
	}
	return a
}

// offer sends v on ch unless ch is full.
func offer[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// offlineLogin checks a code with the agent's current connectivity (not
// the surface's view of it).
func (s *Server) offlineLogin(ctx context.Context, action uint8, st Status, code Code) (lifecycle.Grant, error) {
	if s.cfg.Offline == nil {
		return lifecycle.Grant{}, offline.ErrOnline
	}
	st, _ = s.status()
	return s.cfg.Offline.Login(ctx, offline.Request{Username: code.Username, Code: code.Code, Action: action, Online: st.Online})
}

func (s *Server) sendQR(ctx context.Context, c *ipc.Conn, q login.QR) error {
	pic, err := qrcode.PNG(q.Text, s.cfg.PNGScale)
	if err != nil {
		return err
	}
	term, err := qrcode.Terminal(q.Text)
	if err != nil {
		return err
	}
	msg := QR{Text: q.Text, PNG: pic, Terminal: term, Expires: q.Expires.Unix()}
	if err := s.send(ctx, c, MsgQR, &msg); errors.Is(err, protocol.ErrFrameTooLarge) {
		msg.Terminal = ""
		return s.send(ctx, c, MsgQR, &msg)
	} else if err != nil {
		return err
	}
	return nil
}

// send writes one message to a surface, giving up after writeTimeout on
// one that stopped reading.
func (s *Server) send(ctx context.Context, c *ipc.Conn, t MsgType, v any) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return send(ctx, c, t, v)
}

// writeTimeout bounds one write to a login surface.
const writeTimeout = 10 * time.Second
