// Package push runs push logins with number matching on the agent
// (SPEC.md 11.5): the technician types an email at the login screen, the
// agent shows a two-digit number and asks the technician's phone over a
// FlowPush session (Noise KK to the Noise key in the signed roster); the
// technician picks the number among three on the phone and approves.
//
// Push prompts are how MFA is bombed, so the agent:
//
//   - answers every push the same way, after the same delay (a random
//     number, then nothing until the push times out), whether the email is
//     unknown, the technician revoked or refused by the access rule, push
//     login off, or the technician blocked or over a limit: the login
//     screen cannot enumerate technicians;
//   - limits pushes per device (pending at a time) and per technician
//     (started within an hour), in its store, so a restart resets nothing;
//   - denies, and audits, a wrong number picked on the phone;
//   - blocks push logins of a technician who answers "this was not me"
//     for the policy's PushBlock, and records push.reported, which the
//     console raises as an alarm.
//
// The approval is checked as for a QR login (package login): certificate,
// access rule, signature, binding to the session and handshake, freshness
// and single use; the access rule and both certificates are checked again
// in the transaction that uses the approval.
package push

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// Defaults of Config.
const (
	// DefaultAnswerDelay is how long after a Push the number is shown, in
	// every case (SPEC.md 5.7.10, PushAnswerDelay).
	DefaultAnswerDelay = time.Second
	// DefaultTimeout bounds a push from the Push to the phone's answer
	// (SPEC.md 11.5, PushTimeout).
	DefaultTimeout = 60 * time.Second
	// DefaultRetry is how often the agent tries the phone again while it
	// is not reached (woken, or not connected yet).
	DefaultRetry = 2 * time.Second
)

// Errors a push ends with; the login surface shows them.
var (
	// ErrNoAnswer: the push timed out. Every refused push ends so too
	// (no enumeration).
	ErrNoAnswer    = errors.New("push: no answer from the phone")
	ErrWrongNumber = errors.New("push: wrong number picked on the phone")
	ErrDenied      = errors.New("push: denied by the technician")
	ErrReported    = errors.New("push: reported on the phone as not requested by the technician")
	ErrCancelled   = errors.New("push: cancelled")
	ErrUnavailable = errors.New("push: account could not be made ready")
)

// Config configures a Server.
type Config struct {
	Store     *store.Store
	Audit     *audit.Recorder
	Lifecycle *lifecycle.Manager
	// Dial opens a FlowPush session to the phone (channel.Mux.Dial).
	Dial func(ctx context.Context, d channel.DialConfig) (*channel.Conn, error)
	// AnswerDelay, Timeout and Retry default to DefaultAnswerDelay,
	// DefaultTimeout and DefaultRetry.
	AnswerDelay time.Duration
	Timeout     time.Duration
	Retry       time.Duration
	// CoTimeout bounds the wait for a second approval (SPEC.md 11.14;
	// default DefaultCoTimeout); a push login's own Timeout bounds it
	// too.
	CoTimeout time.Duration
	Now       func() time.Time
	Rand      io.Reader
	Logger    *slog.Logger
	Recorded  func() // called after audit records commit
	// OfflineKey, as login.Config.OfflineKey: the named-mode offline key
	// sent to the phone with the result.
	OfflineKey func(tx *store.Tx, techID string, p *protocol.Policy) ([]byte, error)
}

// Server starts push logins.
type Server struct {
	cfg Config
	log *slog.Logger
	wg  sync.WaitGroup // running pushes
}

// Wait waits until every push has ended (their contexts end with the
// one Begin was given), so that the store can be closed after.
func (s *Server) Wait() { s.wg.Wait() }

// New returns a Server. Pushes left pending by a previous run are ended
// by Start.
func New(cfg Config) *Server {
	if cfg.AnswerDelay <= 0 {
		cfg.AnswerDelay = DefaultAnswerDelay
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.CoTimeout <= 0 {
		cfg.CoTimeout = DefaultCoTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Start ends the pushes a previous run left pending (none of them can be
// answered any more; they still count for the hourly limit) and forgets
// those too old to count.
func (s *Server) Start(ctx context.Context) error {
	now := s.cfg.Now()
	err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.EndPendingPushes(now); err != nil {
			return err
		}
		return tx.PrunePushes(now.Add(-time.Hour))
	})
	if err != nil {
		return fmt.Errorf("push: start: %w", err)
	}
	return nil
}

// Request is one push login.
type Request struct {
	s      *Server
	action uint8
	number uint8
	shown  chan uint8
	out    *lifecycle.Outcome
	cancel context.CancelFunc
	// coWait is closed, once (coWaitOnce), when the agent starts asking
	// the second approvers of the technician's approval (SPEC.md 11.14).
	coWait     chan struct{}
	coWaitOnce sync.Once
}

// Begin starts a push login for action with what the technician typed.
// The request's number is delivered on Number after AnswerDelay, whoever
// email names; the request ends with a result (Done) when the phone
// answers, at Timeout, or when ctx ends or Cancel is called.
func (s *Server) Begin(ctx context.Context, action uint8, email string) (*Request, error) {
	if protocol.ActionName(action) == "" {
		return nil, fmt.Errorf("push: unknown action %d", action)
	}
	n, err := s.number()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	r := &Request{s: s, action: action, number: n, shown: make(chan uint8, 1), out: lifecycle.NewOutcome(), cancel: cancel,
		coWait: make(chan struct{})}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); r.show(ctx) }()
	go func() { defer s.wg.Done(); r.run(ctx, email) }()
	return r, nil
}

// Number delivers the number to show, once.
func (r *Request) Number() <-chan uint8 { return r.shown }

// Done is closed when the request has a result.
func (r *Request) Done() <-chan struct{} { return r.out.Done() }

// SecondApproval is closed when the technician approved the push (the
// right number) and the agent starts asking second approvers (SPEC.md
// 11.14); the request ends, with Done, when they answered or the time
// left passed. It is never closed for a login that needs no second
// approver. The login surface says that it waits (IPC Status
// SecondApproval, 5.7.7).
func (r *Request) SecondApproval() <-chan struct{} { return r.coWait }

// Result returns the grant or the reason the push failed, after Done.
// The grant's password is handed out once: later calls return it wiped.
func (r *Request) Result() (lifecycle.Grant, error) { return r.out.Result() }

// Cancel ends a push whose surface went away or logged in otherwise. A
// grant made but not taken with Result is ended (its password wiped, the
// session ended).
func (r *Request) Cancel(ctx context.Context) error {
	r.cancel()
	if r.finish(lifecycle.Grant{}, ErrCancelled) {
		return nil
	}
	g, unclaimed := r.out.Reclaim(ErrCancelled)
	if !unclaimed {
		return nil
	}
	if err := r.s.cfg.Lifecycle.End(ctx, g.Session, audit.SessionEnded); err != nil {
		return fmt.Errorf("push: end abandoned session: %w", err)
	}
	return nil
}

// finish sets the result once; it reports whether this call set it.
func (r *Request) finish(g lifecycle.Grant, err error) bool { return r.out.Set(g, err, nil) }

// show delivers the number AnswerDelay after Begin, whatever run found.
func (r *Request) show(ctx context.Context) {
	t := time.NewTimer(r.s.cfg.AnswerDelay)
	defer t.Stop()
	select {
	case <-t.C:
		r.shown <- r.number
	case <-ctx.Done():
	}
}

// number draws the number the screen shows: 10 + (u32(Derive(seed,
// push/number)) mod 90) of a fresh random seed (SPEC.md 11.5).
func (s *Server) number() (uint8, error) {
	var seed [32]byte
	if _, err := io.ReadFull(s.cfg.Rand, seed[:]); err != nil {
		return 0, fmt.Errorf("push: random: %w", err)
	}
	return NumberOf(seed[:])
}

// NumberOf is the number-matching value of SPEC.md 11.5 for a seed.
func NumberOf(seed []byte) (uint8, error) {
	b, err := protocol.Derive(seed, protocol.LabelPushNumber, nil, 4)
	if err != nil {
		return 0, err
	}
	return uint8(protocol.MinPushNumber + binary.BigEndian.Uint32(b)%90), nil
}

// candidates returns n and two distinct random decoys in 10..99,
// shuffled.
func (s *Server) candidates(n uint8) ([]uint16, error) {
	c := []uint16{uint16(n)}
	var b [1]byte
	for len(c) < protocol.PushCandidates {
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			return nil, fmt.Errorf("push: random: %w", err)
		}
		if b[0] >= 180 { // 180 = 2*90: unbiased
			continue
		}
		d := uint16(protocol.MinPushNumber + int(b[0])%90)
		dup := false
		for _, x := range c {
			dup = dup || x == d
		}
		if !dup {
			c = append(c, d)
		}
	}
	for i := len(c) - 1; i > 0; i-- {
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			return nil, fmt.Errorf("push: random: %w", err)
		}
		j := int(b[0]) % (i + 1)
		c[i], c[j] = c[j], c[i]
	}
	return c, nil
}

// target is the technician a push goes to, with the state it was
// decided under.
type target struct {
	entry protocol.RosterEntry
	pol   protocol.Policy
	enr   store.Enrollment
	dev   protocol.DeviceCert
	id    int64 // push_attempts row
}

// run resolves the technician and, if the push may go out, asks the
// phone; a refused push waits for the timeout (no enumeration).
func (r *Request) run(ctx context.Context, email string) {
	s := r.s
	t, refusal := s.resolve(ctx, email, r.action)
	if t == nil {
		if refusal != nil {
			s.record(ctx, *refusal)
			s.log.Info("push login refused", "technician", refusal.Username, "reason", refusal.Reason)
		}
		<-ctx.Done()
		r.finish(lifecycle.Grant{}, endErr(ctx))
		return
	}
	defer func() {
		err := s.cfg.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.EndPush(t.id, s.cfg.Now()) })
		if err != nil {
			s.log.Error("push: cannot record the end of a push", "err", err)
		}
	}()
	g, err := s.ask(ctx, r, t)
	if !r.finish(g, err) && err == nil {
		// Cancelled meanwhile: nobody will use the account.
		g.Password.Wipe()
		if err := s.cfg.Lifecycle.End(context.WithoutCancel(ctx), g.Session, audit.SessionEnded); err != nil {
			s.log.Warn("push: end session of a cancelled login", "err", err)
		}
	}
}

// endErr is the result of a push whose context ended without an answer.
func endErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrNoAnswer
	}
	return ErrCancelled
}

// resolve finds the roster entry for email and decides whether the push
// may go out; it records the push start (limits) in the same
// transaction. It returns nil and the audit record of the refusal of a
// known technician, or nil, nil for an unknown email (not recorded: it
// may be a password typed in the wrong field).
func (s *Server) resolve(ctx context.Context, email string, action uint8) (*target, *protocol.AuditRecord) {
	now := s.cfg.Now()
	var t target
	var refusal *protocol.AuditRecord
	err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		var err error
		if t.enr, err = tx.Enrollment(); err != nil {
			return err
		}
		if t.pol, _, err = policy.Current(tx); err != nil {
			return err
		}
		e, ok := lookup(&t.pol, email)
		if !ok {
			return errUnknown
		}
		t.entry = e
		rec := protocol.AuditRecord{Event: audit.LoginDenied, TechID: e.TechID, Username: e.Username,
			Method: protocol.MethodPush, Online: true, Action: action}
		deny := func(reason string) error {
			rec.Reason = reason
			refusal = &rec
			return errRefused
		}
		if !t.pol.PushLogin {
			return deny("push login disabled by the policy")
		}
		if err := t.enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, t.enr.MSPKey, &t.dev); err != nil {
			return deny("device certificate: " + err.Error())
		}
		if err := t.dev.Valid(now); err != nil {
			return deny("device certificate: " + err.Error())
		}
		c := e.Cert(t.pol.Tenant)
		if err := t.pol.Authorize(&c, &t.dev); err != nil {
			return deny("access rule: " + err.Error())
		}
		until, err := tx.PushBlockedUntil(e.TechID)
		if err != nil {
			return err
		}
		if now.Before(until) {
			return deny("push blocked after a report until " + until.UTC().Format(time.RFC3339))
		}
		maxPending, perHour, _ := t.pol.PushLimits()
		n, err := tx.PushCounts(e.TechID, now.Add(-time.Hour))
		if err != nil {
			return err
		}
		if n.Pending >= maxPending {
			return deny(fmt.Sprintf("push limit: %d pushes pending on this device", n.Pending))
		}
		if n.Recent >= perHour {
			return deny(fmt.Sprintf("push limit: %d pushes within an hour", n.Recent))
		}
		t.id, err = tx.StartPush(e.TechID, now)
		return err
	})
	switch {
	case err == nil:
		return &t, nil
	case errors.Is(err, errUnknown):
		return nil, nil
	case errors.Is(err, errRefused):
		return nil, refusal
	}
	s.log.Warn("push login: cannot decide", "err", err)
	return nil, nil
}

var (
	errUnknown = errors.New("push: unknown technician")
	errRefused = errors.New("push: refused")
)

// lookup finds what the technician typed: an email (case-insensitive)
// or a username.
func lookup(p *protocol.Policy, typed string) (protocol.RosterEntry, bool) {
	typed = strings.TrimSpace(typed)
	if typed == "" {
		return protocol.RosterEntry{}, false
	}
	for _, e := range p.Roster {
		if (e.Email != "" && strings.EqualFold(e.Email, typed)) || e.Username == typed {
			return e, true
		}
	}
	return protocol.RosterEntry{}, false
}

// record appends rec in its own transaction, also after ctx ended.
func (s *Server) record(ctx context.Context, rec protocol.AuditRecord) {
	err := s.cfg.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return s.cfg.Audit.Append(tx, rec) })
	if err != nil {
		s.log.Error("push: cannot record login event", "event", rec.Event, "err", err)
		return
	}
	if s.cfg.Recorded != nil {
		s.cfg.Recorded()
	}
}

// Digest is what the single-use store keeps of an approval.
func digest(signed protocol.Signed) []byte {
	d := sha256.Sum256(signed.Body)
	return d[:]
}
