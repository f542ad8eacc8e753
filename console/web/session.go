package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"
)

// session is one signed-in browser. The browser holds the random id in
// its cookie; the server keys sessions by the id's SHA-256, so a memory
// dump of the table names no usable cookie.
type session struct {
	key      [32]byte
	techID   string
	serial   uint64
	username string
	csrf     string // per-session token, in every form and fetch
	created  time.Time
	seen     time.Time
	flash    string // one-shot message for the next page
}

// sessions is the server-side session table.
type sessions struct {
	mu      sync.Mutex
	byKey   map[[32]byte]*session
	maxAge  time.Duration
	maxIdle time.Duration
}

func newSessions(maxAge, maxIdle time.Duration) *sessions {
	return &sessions{byKey: map[[32]byte]*session{}, maxAge: maxAge, maxIdle: maxIdle}
}

func random(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("web: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session and returns the cookie value.
func (s *sessions) create(rand io.Reader, now time.Time, techID string, serial uint64, username string) (string, *session, error) {
	id, err := random(rand, 32)
	if err != nil {
		return "", nil, err
	}
	csrf, err := random(rand, 32)
	if err != nil {
		return "", nil, err
	}
	ss := &session{key: sha256.Sum256([]byte(id)), techID: techID, serial: serial, username: username,
		csrf: csrf, created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, o := range s.byKey { // forget expired sessions
		if s.expired(o, now) {
			delete(s.byKey, k)
		}
	}
	s.byKey[ss.key] = ss
	return id, ss, nil
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.created) > s.maxAge || now.Sub(ss.seen) > s.maxIdle
}

// get returns the live session of a cookie value and marks it seen; an
// expired one is deleted.
func (s *sessions) get(id string, now time.Time) *session {
	if id == "" || len(id) > 64 {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byKey[k]
	if !ok || subtle.ConstantTimeCompare(ss.key[:], k[:]) != 1 {
		return nil
	}
	if s.expired(ss, now) {
		delete(s.byKey, k)
		return nil
	}
	ss.seen = now
	return ss
}

// end deletes a session (logout, or its technician lost access).
func (s *sessions) end(ss *session) {
	s.mu.Lock()
	delete(s.byKey, ss.key)
	s.mu.Unlock()
}

// setFlash and takeFlash keep one message for the next page.
func (s *sessions) setFlash(ss *session, msg string) {
	s.mu.Lock()
	ss.flash = msg
	s.mu.Unlock()
}

func (s *sessions) takeFlash(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := ss.flash
	ss.flash = ""
	return m
}
