package ipcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// ErrNotRoot is returned (and the connection closed) for a peer that is
// not root.
var ErrNotRoot = errors.New("ipcserver: peer is not root")

// RootOnly admits only peers with uid 0.
func RootOnly(c net.Conn) error {
	uid, err := PeerUID(c)
	if err != nil {
		return err
	}
	if uid != 0 {
		return fmt.Errorf("%w (uid %d)", ErrNotRoot, uid)
	}
	return nil
}

// Config configures a Server.
type Config struct {
	Login     *login.Server
	Lifecycle *lifecycle.Manager
	// Authorize admits a connection; nil means RootOnly.
	Authorize func(net.Conn) error
	Logger    *slog.Logger
	// PNGScale is pixels per QR module (default 6).
	PNGScale int
}

// Server serves login surfaces.
type Server struct {
	cfg Config
	log *slog.Logger
	wg  sync.WaitGroup
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Authorize == nil {
		cfg.Authorize = RootOnly
	}
	if cfg.PNGScale == 0 {
		cfg.PNGScale = 6
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Listen creates the Unix socket at path (replacing a stale one) with mode
// 0600, so that only root can even connect.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ipcserver: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("ipcserver: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ipcserver: %w", err)
	}
	return ln, nil
}

// Serve accepts connections until ctx ends, then closes ln and waits for
// the connections it serves.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("ipcserver: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serve(ctx, c)
		}()
	}
}

func (s *Server) serve(ctx context.Context, c net.Conn) {
	if err := s.cfg.Authorize(c); err != nil {
		s.log.Warn("ipc peer refused", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	t, body, err := ReadMsg(c)
	if err != nil {
		return
	}
	switch t {
	case MsgBegin:
		var b Begin
		if err := protocol.Unmarshal(body, &b); err != nil {
			_ = WriteMsg(c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "malformed request"})
			return
		}
		s.login(ctx, c, b)
	case MsgEnd:
		var e End
		if err := protocol.Unmarshal(body, &e); err != nil {
			_ = WriteMsg(c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "malformed request"})
			return
		}
		s.end(ctx, c, e.Session)
	default:
		_ = WriteMsg(c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "unexpected message"})
	}
}

func (s *Server) end(ctx context.Context, c net.Conn, session protocol.SessionID) {
	err := s.cfg.Lifecycle.End(ctx, session, audit.SessionEnded)
	if errors.Is(err, lifecycle.ErrNoSession) {
		_ = WriteMsg(c, MsgDenied, &Denied{Code: protocol.CodeExpired, Reason: "no such session"})
		return
	}
	if err != nil {
		s.log.Error("end session", "err", err)
		_ = WriteMsg(c, MsgDenied, &Denied{Code: protocol.CodeUnavailable, Reason: "session end failed; the agent retries"})
		return
	}
	_ = WriteMsg(c, MsgEnded, &Ended{OK: true})
}

func denialOf(err error) *Denied {
	switch {
	case errors.Is(err, login.ErrRefused):
		return &Denied{Code: protocol.CodeRefused, Reason: "not allowed on this device"}
	case errors.Is(err, login.ErrDenied):
		return &Denied{Code: protocol.CodeDenied, Reason: "denied by the technician"}
	case errors.Is(err, login.ErrCancelled):
		return &Denied{Code: protocol.CodeExpired, Reason: "cancelled"}
	case errors.Is(err, login.ErrNotEnrolled):
		return &Denied{Code: protocol.CodeUnavailable, Reason: "agent not enrolled or without policy"}
	}
	return &Denied{Code: protocol.CodeUnavailable, Reason: "account could not be made ready"}
}

func (s *Server) login(ctx context.Context, c net.Conn, b Begin) {
	action := b.Action
	if action == 0 {
		action = ActionFor(b.Surface)
	}
	if protocol.ActionName(action) == "" {
		_ = WriteMsg(c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "unknown surface or action"})
		return
	}
	req, err := s.cfg.Login.Begin(ctx, action, b.Surface)
	if err != nil {
		s.log.Warn("login request refused", "err", err)
		_ = WriteMsg(c, MsgDenied, denialOf(err))
		return
	}
	defer req.Cancel()
	// The reader watches for the surface's End or its disconnection.
	ends := make(chan protocol.SessionID, 1)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			t, body, err := ReadMsg(c)
			if err != nil {
				return
			}
			var e End
			if t == MsgEnd && protocol.Unmarshal(body, &e) == nil {
				select {
				case ends <- e.Session:
				default:
				}
			}
		}
	}()
	for {
		select {
		case q := <-req.QR():
			if err := s.sendQR(c, q); err != nil {
				s.log.Info("login surface gone", "err", err)
				return
			}
			continue
		case <-gone:
			s.log.Info("login surface disconnected before the approval", "surface", b.Surface)
			return
		case <-ctx.Done():
			return
		case <-req.Done():
		}
		break
	}
	grant, err := req.Result()
	if err != nil {
		_ = WriteMsg(c, MsgDenied, denialOf(err))
		return
	}
	cred := Credential{Username: grant.Account, Password: grant.Password.Bytes(), Session: grant.Session, Deadline: grant.Deadline.Unix()}
	err = WriteMsg(c, MsgCredential, &cred)
	grant.Password.Wipe()
	if err != nil {
		s.log.Warn("credential not delivered; ending the session", "err", err)
		_ = s.cfg.Lifecycle.End(context.WithoutCancel(ctx), grant.Session, audit.SessionEnded)
		return
	}
	select {
	case session := <-ends:
		s.end(ctx, c, session)
	case <-gone:
		// The session outlives this connection; End may come on another
		// one, or the deadline ends it.
	case <-ctx.Done():
	}
}

func (s *Server) sendQR(c net.Conn, q login.QR) error {
	pic, err := qrcode.PNG(q.Text, s.cfg.PNGScale)
	if err != nil {
		return err
	}
	term, err := qrcode.Terminal(q.Text)
	if err != nil {
		return err
	}
	msg := QR{Text: q.Text, PNG: pic, Terminal: term, Expires: q.Expires.Unix()}
	if err := WriteMsg(c, MsgQR, &msg); errors.Is(err, protocol.ErrFrameTooLarge) {
		msg.Terminal = ""
		return WriteMsg(c, MsgQR, &msg)
	} else if err != nil {
		return err
	}
	return nil
}

// readTimeout bounds how long a client waits for one message.
const readTimeout = 10 * time.Minute
