package ipcserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/protocol"
)

// Limits on what one interactive user's prompts (ipc.PeerUser) may ask
// for (SPEC.md 5.7 "Peers"): remote desktop logins open at a time, and
// begun within UserWindow.
const (
	UserMaxOpen  = 2
	UserMaxBegun = 10
	UserWindow   = 10 * time.Minute
)

// userLimiter counts each user's remote desktop logins.
type userLimiter struct {
	mu    sync.Mutex
	users map[string]*userUse
}

type userUse struct {
	open  int
	begun []time.Time // within UserWindow, oldest first
}

// take admits one more login for user at now, or reports false. The
// returned release ends it.
func (l *userLimiter) take(user string, now time.Time) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users == nil {
		l.users = make(map[string]*userUse)
	}
	u := l.users[user]
	if u == nil {
		u = &userUse{}
		l.users[user] = u
	}
	i := 0
	for i < len(u.begun) && !now.Before(u.begun[i].Add(UserWindow)) {
		i++
	}
	u.begun = u.begun[i:]
	if u.open >= UserMaxOpen || len(u.begun) >= UserMaxBegun {
		return nil, false
	}
	u.open++
	u.begun = append(u.begun, now)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			u.open--
			l.forget(user, u)
		})
	}, true
}

// forget drops an idle user's entry once its window is empty, so the map
// holds only users with logins open or recent.
func (l *userLimiter) forget(user string, u *userUse) {
	if u.open == 0 && len(u.begun) == 0 {
		delete(l.users, user)
	}
}

// serveUser serves the first message of a PeerUser connection: only a
// Begin with a Target (a remote desktop login from the user's own RDP
// client prompt), within the user's limits. Anything else is refused
// and audited.
func (s *Server) serveUser(ctx context.Context, c *ipc.Conn, peer ipc.Peer, t MsgType, body []byte) {
	if t != MsgBegin {
		s.refuseUser(ctx, c, peer, 0, fmt.Sprintf("a user's prompt may not send message type %d", t))
		return
	}
	b, ok := decodeBegin(body)
	if !ok {
		s.refuseUser(ctx, c, peer, 0, "malformed request from a user's prompt")
		return
	}
	// The action the Begin asks for, as audited: 0 only when it names
	// none (an unknown surface with action 0, an action outside 1..4).
	action := actionOf(b)
	if b.Target == "" {
		s.refuseUser(ctx, c, peer, action, "a user's prompt may ask only for a remote desktop login (Begin with a target)")
		return
	}
	release, ok := s.users.take(peer.User(), s.cfg.Now())
	if !ok {
		s.log.Warn("remote desktop login refused: per-user limit", "peer", peer)
		s.cfg.Login.RecordRefused(ctx, action, "too many remote desktop logins from this user", peerDetail(peer, b.Surface))
		_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeUnavailable, Reason: "too many remote desktop logins from this user; try again later"})
		return
	}
	defer release()
	if action == 0 {
		_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeBadRequest, Reason: "unknown surface or action"})
		return
	}
	s.login(ctx, c, b, action, peer)
}

// refuseUser answers a PeerUser's message it may not send with Denied
// (code 1) and audits it (login.denied). The reason reaches the audit
// log; the surface gets one fixed line.
func (s *Server) refuseUser(ctx context.Context, c *ipc.Conn, peer ipc.Peer, action uint8, why string) {
	s.log.Warn("user's prompt refused", "peer", peer, "reason", why)
	s.cfg.Login.RecordRefused(ctx, action, why, peerDetail(peer, ""))
	_ = s.send(ctx, c, MsgDenied, &Denied{Code: protocol.CodeRefused, Reason: DeniedUserPeer})
}

// DeniedUserPeer is the Denied reason a user's prompt gets for anything
// but a remote desktop login.
const DeniedUserPeer = "this prompt runs as a user: the jitkey agent serves it only a remote desktop login to another computer"

// peerDetail names a PeerUser for the audit record.
func peerDetail(peer ipc.Peer, surface string) string {
	d := fmt.Sprintf("ipc peer %s pid %d", peer.User(), peer.PID)
	if surface != "" {
		d += " surface " + surface
	}
	return d
}
