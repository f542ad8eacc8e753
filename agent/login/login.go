// Package login runs QR logins on the agent: a login request from a login
// surface shows a QR code that is rotated at least every 60 s and is good
// for one decided login; the phone that scans it opens a FlowQRLogin
// session (Noise IKpsk1, the PSK derived from the code's secret) and the
// agent verifies, as SPEC.md and docs/flows.md say:
//
//   - its own device certificate: valid now;
//   - the technician certificate: signed by the pinned MSP key, valid now,
//     its Noise key equal to the handshake's peer static key;
//   - the access rule (protocol.Policy.Authorize) from the cached policy:
//     revocation, delegation, the device's share list — decided locally,
//     online or offline;
//   - the approval: signed by the certificate's approval key, bound to this
//     handshake, session, device, action and account choice, fresh
//     (protocol.MaxApprovalSkew), and never used before (persisted).
//
// Whoever saw the QR code knows its PSK, so a scan proves nothing until
// the approval verifies. A scan refused before that (a bad certificate,
// the access rule, a bad or mismatched approval) ends that session only:
// the request stays open and the code usable, so a photographed code
// cannot cancel the real login. A code has at most MaxScans sessions open
// at a time (MaxCodeHandshakes in all) and is consumed, with its request,
// when the agent acts on a verified decision: its other sessions are then
// refused and no code of the request is accepted again.
//
// The access rule and both certificates' validity windows are checked
// again, with the policy held at that moment, in the transaction that
// consumes the approval and records the session's intent, so a
// revocation applied, or a certificate that expired, while the technician
// was deciding still counts. Every decision is audited (login.approved,
// login.denied with the reason, login.cancelled). The phone sees only
// coarse refusals.
package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// Rotation bounds.
const (
	DefaultRotation = 30 * time.Second
	MaxRotation     = 60 * time.Second
	// Grace is how long a rotated-out code is still accepted, for a phone
	// that scanned it just before it changed.
	Grace = 10 * time.Second
)

// Scan bounds (SPEC.md 5.2, R-38). Anyone who saw a code can open
// sessions with it until it is used or expires; these bound what that
// costs the agent.
const (
	// MaxScans is how many sessions one code may have open at a time
	// (accepted, not yet ended); a hello beyond them is dropped.
	MaxScans = 4
	// MaxCodeHandshakes is how many handshakes one code accepts in all,
	// so that one photographed code yields a bounded number of refused,
	// audited scans.
	MaxCodeHandshakes = 16
)

// detailRefusedScan is the audit detail of a scan refused before a
// verified approval: that session ends, the request does not.
const detailRefusedScan = "refused scan; request stays open"

// errRequestClosed: the request was decided in another scan (its scans
// end with it as their cause) or ended (it shows no new codes).
var errRequestClosed = errors.New("login: request decided or ended")

// Errors a request ends with. The login surface shows them.
var (
	ErrRefused     = errors.New("login: not allowed on this device")
	ErrDenied      = errors.New("login: denied by the technician")
	ErrCancelled   = errors.New("login: cancelled")
	ErrUnavailable = errors.New("login: account could not be made ready")
	ErrNotEnrolled = errors.New("login: agent not enrolled or without policy")
	// ErrDomainUnavailable: the DC agent could not be reached, or could
	// not reach the directory; nothing was enabled (SPEC.md 11.7).
	ErrDomainUnavailable = errors.New("login: domain controller unreachable; try again or choose a local account")
	// ErrDomainRefused: the DC agent refused the domain account.
	ErrDomainRefused = errors.New("login: the domain controller refused the domain account")
	// ErrRemoved: the MSP removed this computer (SPEC.md 11.10); jitkey
	// logins are refused for good.
	ErrRemoved = errors.New("login: this computer was removed from jitkey by the MSP; jitkey logins are disabled")
)

// Config configures a Server.
type Config struct {
	Store     *store.Store
	Audit     *audit.Recorder
	Lifecycle *lifecycle.Manager
	// Static is the agent's Noise static public key; Addr its relay address
	// (mailbox and home relay), shown in the QR code.
	Static protocol.NoiseKey
	Addr   func() protocol.PeerAddr
	// Rotation is how often a new code replaces the shown one (default
	// DefaultRotation, at most MaxRotation).
	Rotation time.Duration
	// StepTimeout bounds each wait for the phone (default 2 minutes: the
	// technician reads the request and passes the biometric check).
	StepTimeout time.Duration
	Now         func() time.Time
	Rand        io.Reader
	Logger      *slog.Logger
	Recorded    func() // called after audit records commit
	// OfflineKey, if set, runs in the transaction that consumes an
	// approval; the key it returns goes to the phone in
	// LoginResult.OfflineSecret (named-mode offline codes, SPEC.md 11.6)
	// and is wiped after.
	OfflineKey func(tx *store.Tx, techID string, p *protocol.Policy) ([]byte, error)
	// Domain, if set, offers domain accounts on a domain-joined computer
	// whose policy has SelectiveLogin (SPEC.md 11.7).
	Domain Domain
	// CoApprover asks second approvers for a login on a device whose
	// policy needs one (SPEC.md 11.14); without it such logins are
	// refused.
	CoApprover CoApprover
}

// CoApprover asks the second approvers of a login (SPEC.md 11.14);
// *push.Server implements it.
type CoApprover interface {
	CoApprove(ctx context.Context, q *push.CoRequest) (*push.CoApproved, error)
}

// CoApproverFunc adapts a function to CoApprover.
type CoApproverFunc func(ctx context.Context, q *push.CoRequest) (*push.CoApproved, error)

// CoApprove calls f.
func (f CoApproverFunc) CoApprove(ctx context.Context, q *push.CoRequest) (*push.CoApproved, error) {
	return f(ctx, q)
}

// Domain obtains domain accounts from the tenant's DC agent (SPEC.md
// 11.7); *dcclient.Client implements it.
type Domain interface {
	// Available reports whether a DC agent is known.
	Available(ctx context.Context, now time.Time) bool
	// Obtain sends the DomainRequest and returns the DC agent's answer;
	// errors wrap dcclient.ErrRefused or dcclient.ErrUnreachable.
	Obtain(ctx context.Context, r *protocol.DomainRequest, now time.Time) (protocol.DomainResult, error)
	// End sends DomainEnd for the session.
	End(ctx context.Context, session protocol.SessionID, account string, now time.Time) error
	// LogonName is the name the surface logs on with.
	LogonName(account string) string
}

// Server holds the live login requests and answers FlowQRLogin sessions.
type Server struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	codes   map[protocol.SessionID]*code // codes accepted for new scans: unexpired, their request open
	pending map[scanKey]*scan            // handshakes accepted, not yet handed to Handle
	open    map[*Request]struct{}        // requests without a result
}

type code struct {
	req        *Request
	psk        []byte
	validUntil time.Time // no new scans from then on
	scans      int       // sessions accepted and not ended (MaxScans)
	handshakes int       // handshakes accepted in all (MaxCodeHandshakes)
}

// scanKey names a scan as package channel names its session: the phone's
// mailbox and the session id, which all scans of one code share.
type scanKey struct {
	peer    protocol.MailboxID
	session protocol.SessionID
}

// scan is one session opened with a code: pending from Accept until
// Handle takes it, then served.
type scan struct {
	code *code
	// cancel ends the session's context with errRequestClosed; set by
	// Handle.
	cancel context.CancelCauseFunc
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Rotation <= 0 {
		cfg.Rotation = DefaultRotation
	}
	cfg.Rotation = min(cfg.Rotation, MaxRotation)
	if cfg.StepTimeout == 0 {
		cfg.StepTimeout = 2 * time.Minute
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
	return &Server{
		cfg: cfg, log: log,
		codes: map[protocol.SessionID]*code{}, pending: map[scanKey]*scan{}, open: map[*Request]struct{}{},
	}
}

// QR is one code to show.
type QR struct {
	Text    string    // protocol.QRPayload text, "JK:..."
	Expires time.Time // when the next code replaces it
}

// Request is one pending login at a login surface.
type Request struct {
	Action  uint8
	Surface string

	s       *Server
	device  protocol.DeviceID
	target  *rdpTarget // a remote domain logon's target; nil for a login at this computer
	qr      chan QR
	scanned chan struct{}
	out     *lifecycle.Outcome
	// coWait is closed, once (coWaitOnce), when the agent starts asking
	// the second approvers of the technician's approval (SPEC.md 11.14).
	coWait     chan struct{}
	coWaitOnce sync.Once

	// Guarded by s.mu.
	closed  bool               // decided (claimed) or ended: its codes no longer work
	claimer *scan              // the scan whose verified decision is acted upon; nil until then
	scans   map[*scan]struct{} // scans being served
}

// Begin starts a login request for action and shows its first code. The
// request lives until it completes, Cancel is called or ctx ends.
func (s *Server) Begin(ctx context.Context, action uint8, surface string) (*Request, error) {
	return s.begin(ctx, action, surface, nil)
}

// begin starts a login request, for a remote domain logon to target if
// it is not nil (rdp.go).
func (s *Server) begin(ctx context.Context, action uint8, surface string, target *rdpTarget) (*Request, error) {
	if protocol.ActionName(action) == "" {
		return nil, fmt.Errorf("login: unknown action %d", action)
	}
	var enr store.Enrollment
	removed := false
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		if enr, err = tx.Enrollment(); err != nil {
			return err
		}
		if _, err := tx.Removal(); err == nil {
			removed = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		_, _, err = policy.Current(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	if removed {
		return nil, ErrRemoved
	}
	r := &Request{
		Action: action, Surface: surface, s: s, device: enr.DeviceID, target: target,
		qr: make(chan QR, 1), scanned: make(chan struct{}, 1), out: lifecycle.NewOutcome(),
		coWait: make(chan struct{}), scans: map[*scan]struct{}{},
	}
	first, err := s.newCode(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.open[r] = struct{}{}
	s.mu.Unlock()
	r.publish(first)
	go r.rotate(ctx)
	return r, nil
}

// EndAll ends every open login request with err (their codes stop
// working); the daemon calls it with ErrRemoved when the MSP removed the
// computer. A request already approved keeps its result: its session is
// ended by the lifecycle manager.
func (s *Server) EndAll(err error) {
	s.mu.Lock()
	open := make([]*Request, 0, len(s.open))
	for r := range s.open {
		open = append(open, r)
	}
	s.mu.Unlock()
	for _, r := range open {
		r.finish(lifecycle.Grant{}, err)
	}
}

// QR delivers the current code and each replacement. Only the latest
// undelivered code is kept.
func (r *Request) QR() <-chan QR { return r.qr }

// Done is closed when the request has a result.
func (r *Request) Done() <-chan struct{} { return r.out.Done() }

// SecondApproval is closed when the technician approved the request and
// the agent starts asking second approvers (SPEC.md 11.14); the request
// then shows no new code and ends, with Done, when they answered or
// CoApprovalTimeout passed. It is never closed for a login that needs no
// second approver. The login surface says that it waits (IPC Status
// SecondApproval, 5.7.7).
func (r *Request) SecondApproval() <-chan struct{} { return r.coWait }

// Result returns the grant or the reason the request failed, after Done.
// The grant's password is handed out once: later calls return it wiped.
func (r *Request) Result() (lifecycle.Grant, error) { return r.out.Result() }

// Cancel ends a request whose surface went away. A grant already made but
// not yet taken with Result is ended: its password is wiped and the
// session ended (account.disabled, session.ended), so the account does not
// stay enabled until the session's deadline; Result then reports
// ErrCancelled. It returns the error of ending the session, which the
// lifecycle manager retries.
func (r *Request) Cancel(ctx context.Context) error {
	if r.finish(lifecycle.Grant{}, ErrCancelled) {
		return nil
	}
	g, unclaimed := r.out.Reclaim(ErrCancelled)
	if !unclaimed {
		return nil
	}
	r.s.log.Info("qr login: approved login abandoned by its surface; ending the session", "account", g.Account)
	if err := r.s.cfg.Lifecycle.End(ctx, g.Session, audit.SessionEnded); err != nil {
		return fmt.Errorf("login: end abandoned session: %w", err)
	}
	return nil
}

func (r *Request) publish(q QR) {
	select {
	case <-r.qr:
	default:
	}
	r.qr <- q
}

// finish sets the result once; it reports whether this call set it. The
// request's codes stop working. Scans already open go on: a verified
// decision in one of them is still acted upon and recorded (claim), and
// an approval's session then ended at once (serve).
func (r *Request) finish(g lifecycle.Grant, err error) bool {
	return r.out.Set(g, err, func() {
		r.s.mu.Lock()
		r.s.retireLocked(r)
		delete(r.s.open, r)
		r.s.mu.Unlock()
	})
}

// claim is called with a verified decision of sc: it consumes r (its
// codes stop working, its other scans are refused) and reports true, or
// reports false when r was already decided in another scan.
func (s *Server) claim(r *Request, sc *scan) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.claimer != nil {
		return false
	}
	r.claimer = sc
	s.retireLocked(r)
	for other := range r.scans {
		if other != sc {
			other.cancel(errRequestClosed)
		}
	}
	return true
}

// retireLocked stops r's codes answering. s.mu is held.
func (s *Server) retireLocked(r *Request) {
	r.closed = true
	for id, c := range s.codes {
		if c.req == r {
			delete(s.codes, id)
		}
	}
}

func (r *Request) rotate(ctx context.Context) {
	for {
		t := time.NewTimer(r.s.cfg.Rotation)
		select {
		case <-ctx.Done():
			t.Stop()
			r.finish(lifecycle.Grant{}, ErrCancelled)
			return
		case <-r.out.Done():
			t.Stop()
			return
		case <-r.scanned:
			t.Stop()
		case <-t.C:
		}
		q, err := r.s.newCode(r)
		if errors.Is(err, errRequestClosed) {
			continue // decided: its result follows
		}
		if err != nil {
			r.s.log.Error("new login code", "err", err)
			r.finish(lifecycle.Grant{}, ErrUnavailable)
			return
		}
		r.publish(q)
	}
}

// newCode makes a fresh code for r, registers it and retires r's older
// codes (which stay valid for Grace).
func (s *Server) newCode(r *Request) (QR, error) {
	now := s.cfg.Now()
	var secret [protocol.QRSecretLen]byte
	if _, err := io.ReadFull(s.cfg.Rand, secret[:]); err != nil {
		return QR{}, fmt.Errorf("login: random: %w", err)
	}
	sid, err := protocol.DeriveSessionID(secret[:], protocol.LabelQRSession)
	if err != nil {
		return QR{}, err
	}
	psk, err := protocol.Derive(secret[:], protocol.LabelQRPSK, nil, 32)
	if err != nil {
		return QR{}, err
	}
	addr := s.cfg.Addr()
	p := protocol.QRPayload{
		Kind: protocol.QRLogin, Action: r.Action, Time: now.Truncate(time.Second), DeviceID: r.device,
		Static: s.cfg.Static, Mailbox: addr.Mailbox, Secret: secret, Relay: addr.Relay,
	}
	text, err := p.Encode()
	if err != nil {
		return QR{}, fmt.Errorf("login: QR: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.closed {
		return QR{}, errRequestClosed
	}
	s.sweepLocked(now)
	for _, c := range s.codes {
		if c.req == r && now.Add(Grace).Before(c.validUntil) {
			c.validUntil = now.Add(Grace)
		}
	}
	s.codes[sid] = &code{req: r, psk: psk, validUntil: now.Add(s.cfg.Rotation + Grace)}
	return QR{Text: text, Expires: now.Add(s.cfg.Rotation)}, nil
}

// sweepLocked forgets expired codes, and handshakes accepted with them
// that never reached Handle (the handshake failed). s.mu is held.
func (s *Server) sweepLocked(now time.Time) {
	for id, c := range s.codes {
		if !now.Before(c.validUntil) {
			delete(s.codes, id)
		}
	}
	for k, sc := range s.pending {
		if now.After(sc.code.validUntil.Add(s.cfg.StepTimeout)) {
			delete(s.pending, k)
			sc.code.scans--
		}
	}
}

// Accept is the channel.Config.Accept hook for FlowQRLogin: a live code
// with the hello's session id yields its PSK. The code is not consumed
// here (see claim): it accepts up to MaxScans sessions at a time, from
// phones told apart by their mailbox, and MaxCodeHandshakes in all.
func (s *Server) Accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	if h.Flow != protocol.FlowQRLogin {
		return nil, protocol.NoiseKey{}, errors.New("login: not a QR login")
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	c := s.codes[h.Session]
	if c == nil || !now.Before(c.validUntil) {
		return nil, protocol.NoiseKey{}, errors.New("login: unknown, expired or used code")
	}
	k := scanKey{peer: h.From.Mailbox, session: h.Session}
	if old := s.pending[k]; old != nil {
		// The same phone and session again: the mux runs one handshake
		// per key at a time, so the earlier one failed before Handle.
		delete(s.pending, k)
		old.code.scans--
	}
	if c.scans >= MaxScans || c.handshakes >= MaxCodeHandshakes {
		return nil, protocol.NoiseKey{}, errors.New("login: too many scans of this code")
	}
	c.scans++
	c.handshakes++
	s.pending[k] = &scan{code: c}
	select {
	case c.req.scanned <- struct{}{}:
	default:
	}
	return c.psk, protocol.NoiseKey{}, nil
}

// Handle is the channel.Config.Handle hook for FlowQRLogin sessions.
func (s *Server) Handle(ctx context.Context, conn *channel.Conn) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	k := scanKey{peer: conn.Peer.Mailbox, session: conn.ID}
	s.mu.Lock()
	sc := s.pending[k]
	delete(s.pending, k)
	var r *Request
	if sc != nil {
		r = sc.code.req
		if r.closed {
			sc.code.scans--
		} else {
			sc.cancel = cancel
			r.scans[sc] = struct{}{}
		}
	}
	s.mu.Unlock()
	switch {
	case sc == nil:
		return
	case sc.cancel == nil:
		s.send(ctx, conn, protocol.MsgLoginResult, &protocol.LoginResult{Code: protocol.CodeExpired, Text: "login request no longer open"})
		return
	}
	defer func() {
		s.mu.Lock()
		delete(r.scans, sc)
		sc.code.scans--
		s.mu.Unlock()
	}()
	s.serve(ctx, sctx, conn, r, sc)
}

// denial is a refusal with its audited reason.
type denial struct {
	reason string // audited and logged, never sent to the phone
	code   uint8
	err    error  // for the surface, when the denial ends the request
	text   string // fixed text for the phone; "" is the code's
}

func (d *denial) Error() string { return d.reason }

// result is the coarse answer to the phone: the code and a fixed text,
// never the audited reason (STYLE.md: failures are opaque to the peer).
func (d *denial) result() *protocol.LoginResult {
	text := "not allowed on this device"
	switch d.code {
	case protocol.CodeDenied:
		text = "denied"
	case protocol.CodeUnavailable:
		text = "temporarily unavailable"
	}
	if d.text != "" {
		text = d.text
	}
	return &protocol.LoginResult{Code: d.code, Text: text}
}

func refused(reason string) *denial {
	return &denial{reason: reason, code: protocol.CodeRefused, err: ErrRefused}
}

// serve runs one scan. ctx is the session's, sctx ends besides when the
// request is decided in another scan (errRequestClosed).
//
// Until the agent acts on a verified decision (claim), a refusal ends
// this scan only (refuse): whoever saw the code can get that far. Failures
// of the agent itself (no policy, its device certificate) end the request
// (deny), as does anything from the claim on.
func (s *Server) serve(ctx, sctx context.Context, conn *channel.Conn, r *Request, sc *scan) {
	var cert protocol.TechCert
	rec := protocol.AuditRecord{Method: protocol.MethodQR, Online: true, Action: r.Action}
	stepCtx, cancel := context.WithTimeout(sctx, s.cfg.StepTimeout)
	defer cancel()

	var hello protocol.LoginHello
	if err := conn.Recv(stepCtx, protocol.MsgLoginHello, &hello); err != nil {
		if !s.superseded(ctx, sctx, conn, rec) {
			s.log.Info("qr login: no hello", "err", err)
		}
		return // the code stays usable until it expires
	}
	var enr store.Enrollment
	var pol protocol.Policy
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		if enr, err = tx.Enrollment(); err != nil {
			return err
		}
		pol, _, err = policy.Current(tx)
		return err
	})
	if err != nil {
		s.deny(ctx, conn, r, rec, &denial{reason: "no policy: " + err.Error(), code: protocol.CodeUnavailable, err: ErrNotEnrolled})
		return
	}
	var dev protocol.DeviceCert
	if err := enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, enr.MSPKey, &dev); err != nil {
		s.deny(ctx, conn, r, rec, deviceCert("device certificate: ", err))
		return
	}
	if err := dev.Valid(s.cfg.Now()); err != nil {
		s.deny(ctx, conn, r, rec, deviceCert("device certificate: ", err))
		return
	}
	if d := s.checkTech(conn, hello.TechCert, enr.MSPKey, &pol, &dev, &cert); d != nil {
		rec.TechID, rec.Username = cert.TechID, cert.Username
		s.refuse(ctx, conn, rec, d)
		return
	}
	rec.TechID, rec.Username = cert.TechID, cert.Username
	account, err := s.cfg.Lifecycle.AccountFor(ctx, cert.TechID, cert.Username, &pol)
	if err != nil {
		s.refuse(ctx, conn, rec, &denial{reason: "account: " + err.Error(), code: protocol.CodeUnavailable, err: ErrUnavailable})
		return
	}
	rec.Account = account
	lr := protocol.LoginRequest{DeviceCert: enr.DeviceCert, Session: conn.ID, Action: r.Action, Account: account, Time: s.cfg.Now().Unix()}
	// Selective login (SPEC.md 11.7): a domain-joined computer that knows
	// its DC agent offers a local or a domain account at logon.
	selective := s.cfg.Domain != nil && pol.SelectiveLogin && pol.DomainAccounts && dev.DomainJoined &&
		r.Action == protocol.ActionLogon && s.cfg.Domain.Available(ctx, s.cfg.Now())
	if selective {
		lr.Choices = []uint8{protocol.AccountLocal, protocol.AccountDomain}
	}
	if r.target != nil {
		if d := s.rdpRequest(ctx, r, &pol, &dev, &lr); d != nil {
			s.refuse(ctx, conn, rec, d)
			return
		}
	}
	if !s.send(stepCtx, conn, protocol.MsgLoginRequest, &lr) {
		s.superseded(ctx, sctx, conn, rec)
		return
	}
	var signed protocol.Signed
	if err := conn.Recv(stepCtx, protocol.MsgApproval, &signed); err != nil {
		if !s.superseded(ctx, sctx, conn, rec) {
			s.cancelled(ctx, r, rec, err)
		}
		return
	}
	var a protocol.Approval
	if err := signed.VerifyP256(protocol.DocApproval, cert.ApprovalKey, &a); err != nil {
		s.refuse(ctx, conn, rec, refused("approval signature: "+err.Error()))
		return
	}
	err = a.Match(protocol.ApprovalExpect{
		Serial: cert.Serial, DeviceID: dev.DeviceID, Session: conn.ID, HandshakeHash: conn.Session.HandshakeHash(),
		Action: r.Action, Now: s.cfg.Now(), Target: r.targetID(),
		RequireReason: pol.RequireReason, TicketPattern: pol.TicketPattern,
		AllowAccount: func(k uint8) bool {
			if r.target != nil {
				return k == protocol.AccountDomain
			}
			if selective {
				return k == protocol.AccountLocal || k == protocol.AccountDomain
			}
			return k == protocol.AccountDefault
		},
	})
	if err != nil {
		s.refuse(ctx, conn, rec, refused("approval: "+err.Error()))
		return
	}
	// A verified decision of an authorized technician: act on it, once.
	if !s.claim(r, sc) {
		s.closedScan(ctx, conn, rec)
		return
	}
	digest := sha256.Sum256(signed.Body)
	if a.Decision == protocol.DecisionDeny {
		s.deny(ctx, conn, r, rec, &denial{reason: "denied by the technician", code: protocol.CodeDenied, err: ErrDenied})
		return
	}
	// The login's records carry the technician's reason and ticket
	// (SPEC.md 6.4, 6.5), the domain login's too.
	rec.Justification, rec.Ticket = a.Reason, a.Ticket
	// A device that needs a second approver (SPEC.md 11.14): ask before
	// anything is enabled.
	var co *push.CoApproved
	if push.NeedsCoApproval(&pol, dev.DeviceID) {
		if d := s.coApprove(sctx, r, &co, &push.CoRequest{Tech: &cert, TechCert: hello.TechCert, Approval: signed, Device: &dev,
			DevCert: enr.DeviceCert, MSPKey: enr.MSPKey, Policy: &pol, Action: r.Action, Account: account,
			Method: protocol.MethodQR, Reason: a.Reason, Ticket: a.Ticket}); d != nil {
			s.deny(ctx, conn, r, rec, d)
			return
		}
		defer func() { co.Finish(ctx, r.succeeded(), account) }()
	}
	approved := rec
	approved.Event = audit.LoginApproved
	if co != nil {
		approved.Detail = co.Detail()
	}
	// atApproval checks again, at the moment the approval is used, what
	// may have changed while the technician decided (a certificate
	// expired, a revocation arrived), and consumes the approval.
	atApproval := func(tx *store.Tx) (protocol.Policy, error) {
		now := s.cfg.Now()
		if err := dev.Valid(now); err != nil {
			return protocol.Policy{}, deviceCert("device certificate at approval: ", err)
		}
		if err := cert.Valid(now); err != nil {
			return protocol.Policy{}, refused("technician certificate at approval: " + err.Error())
		}
		cur, _, err := policy.Current(tx)
		if err != nil {
			return protocol.Policy{}, refused("policy: " + err.Error())
		}
		if err := cur.Authorize(&cert, &dev); err != nil {
			return protocol.Policy{}, accessDenied(err)
		}
		if err := tx.UseApproval(digest[:], now, time.Unix(a.Time, 0).Add(2*protocol.MaxApprovalSkew)); err != nil {
			if errors.Is(err, store.ErrReplay) {
				return protocol.Policy{}, refused("approval replayed")
			}
			return protocol.Policy{}, err
		}
		if err := push.UseCoApproval(tx, &cur, co, &cert, &dev, now); err != nil {
			if errors.Is(err, push.ErrCoRequired) {
				d := refused("second approval at approval: " + err.Error())
				d.text = push.CoRefusalText(err)
				return protocol.Policy{}, d
			}
			return protocol.Policy{}, err
		}
		return cur, nil
	}
	if a.Account == protocol.AccountDomain {
		s.domainLogin(ctx, conn, r, rec, domainLogin{
			cert: &cert, pol: &pol, signed: signed, techCert: hello.TechCert, devCert: enr.DeviceCert, atApproval: atApproval,
			target: r.target, co: co,
		})
		return
	}
	var offlineKey []byte
	defer func() { clear(offlineKey) }()
	grant, err := s.cfg.Lifecycle.Begin(ctx, lifecycle.Request{
		TechID: cert.TechID, Username: cert.Username, Cert: &cert, Policy: &pol, Session: conn.ID, Action: r.Action,
		Method: protocol.MethodQR, Online: true,
		Record: func(tx *store.Tx, _ string) error {
			cur, err := atApproval(tx)
			if err != nil {
				return err
			}
			if s.cfg.OfflineKey != nil {
				if offlineKey, err = s.cfg.OfflineKey(tx, cert.TechID, &cur); err != nil {
					return err
				}
			}
			return s.cfg.Audit.Append(tx, approved)
		},
	})
	if d, ok := errors.AsType[*denial](err); ok {
		s.deny(ctx, conn, r, rec, d)
		return
	}
	if errors.Is(err, lifecycle.ErrRemoved) {
		s.deny(ctx, conn, r, rec, &denial{reason: "device removed by the MSP", code: protocol.CodeRefused, err: ErrRemoved})
		return
	}
	if err != nil {
		s.log.Warn("qr login: account not ready", "account", account, "err", err)
		s.deny(ctx, conn, r, rec, &denial{reason: "account not ready: " + err.Error(), code: protocol.CodeUnavailable, err: ErrUnavailable})
		return
	}
	if !r.finish(grant, nil) {
		// The surface went away meanwhile: nobody will use the account.
		grant.Password.Wipe()
		if err := s.cfg.Lifecycle.End(context.WithoutCancel(ctx), grant.Session, audit.SessionEnded); err != nil {
			s.log.Warn("end session of a cancelled login", "err", err)
		}
		s.send(ctx, conn, protocol.MsgLoginResult, &protocol.LoginResult{Code: protocol.CodeExpired, Text: "login screen went away"})
		return
	}
	s.log.Info("qr login approved", "account", account, "technician", cert.Username, "action", protocol.ActionName(r.Action))
	s.send(ctx, conn, protocol.MsgLoginResult, &protocol.LoginResult{OK: true, Account: account, OfflineSecret: offlineKey})
}

// coApprove asks the second approvers (SPEC.md 11.14). It returns the
// denial that ends the request when no verified approving second
// approval came, or sets *co.
func (s *Server) coApprove(ctx context.Context, r *Request, co **push.CoApproved, q *push.CoRequest) *denial {
	if s.cfg.CoApprover == nil {
		d := refused("second approval: this agent cannot ask a second approver")
		d.text = push.CoRefusalText(nil)
		return d
	}
	s.log.Info("qr login: waiting for a second approver", "technician", q.Tech.Username)
	r.coWaitOnce.Do(func() { close(r.coWait) })
	c, err := s.cfg.CoApprover.CoApprove(ctx, q)
	if err != nil {
		// The surface's error names the second approval (push.ErrCo...);
		// the phone gets a fixed line, the audit the full reason.
		d := refused("second approval: " + err.Error())
		d.text = push.CoRefusalText(err)
		d.err = fmt.Errorf("%w: %w", ErrRefused, err)
		if errors.Is(err, push.ErrCoDenied) {
			d.code, d.err = protocol.CodeDenied, fmt.Errorf("%w: %w", ErrDenied, err)
		}
		return d
	}
	*co = c
	return nil
}

// succeeded reports whether r ended with a grant.
func (r *Request) succeeded() bool {
	select {
	case <-r.out.Done():
	default:
		return false
	}
	return r.out.Err() == nil
}

// send sends one message to the phone and reports whether it left. A
// failure is logged at Warn: the phone waits for it in vain.
func (s *Server) send(ctx context.Context, conn *channel.Conn, t protocol.MsgType, body any) bool {
	if err := conn.Send(ctx, t, body); err != nil {
		s.log.Warn("qr login: message to the phone not sent", "type", int(t), "err", err)
		return false
	}
	return true
}

// checkTech verifies the technician certificate and the access rule.
func (s *Server) checkTech(conn *channel.Conn, signed protocol.Signed, msp protocol.IdentityKey, pol *protocol.Policy, dev *protocol.DeviceCert, cert *protocol.TechCert) *denial {
	if err := signed.VerifyEd25519(protocol.DocTechCert, msp, cert); err != nil {
		*cert = protocol.TechCert{}
		return refused("technician certificate: " + err.Error())
	}
	if err := cert.Valid(s.cfg.Now()); err != nil {
		return refused("technician certificate: " + err.Error())
	}
	if !conn.Session.PeerIs(cert.NoiseKey) {
		return refused("technician certificate: noise key does not match the session")
	}
	if err := pol.Authorize(cert, dev); err != nil {
		return accessDenied(err)
	}
	return nil
}

// deviceCert is the denial of the agent's own device certificate: the
// agent cannot serve logins.
func deviceCert(what string, err error) *denial {
	return &denial{reason: what + err.Error(), code: protocol.CodeUnavailable, err: ErrNotEnrolled}
}

// accessDenied is the denial of an access rule failure; the surface of a
// removed computer (R-46: the policy revokes its own certificate) says so.
func accessDenied(err error) *denial {
	d := refused("access rule: " + err.Error())
	if errors.Is(err, protocol.ErrDeviceRevoked) {
		d.err = ErrRemoved
	}
	return d
}

// deny ends the request with d: audited, the phone answered, the surface
// told.
func (s *Server) deny(ctx context.Context, conn *channel.Conn, r *Request, rec protocol.AuditRecord, d *denial) {
	s.log.Info("qr login denied", "technician", rec.Username, "reason", d.reason)
	rec.Event, rec.Reason = audit.LoginDenied, d.reason
	s.record(ctx, rec)
	s.send(ctx, conn, protocol.MsgLoginResult, d.result())
	r.finish(lifecycle.Grant{}, d.err)
}

// refuse ends one scan with d, before any verified decision: audited with
// detailRefusedScan and the phone answered; the request stays open and
// the code usable.
func (s *Server) refuse(ctx context.Context, conn *channel.Conn, rec protocol.AuditRecord, d *denial) {
	s.log.Info("qr login: scan refused; request stays open", "technician", rec.Username, "reason", d.reason)
	rec.Event, rec.Reason, rec.Detail = audit.LoginDenied, d.reason, detailRefusedScan
	s.record(ctx, rec)
	s.send(ctx, conn, protocol.MsgLoginResult, d.result())
}

// superseded reports whether sctx ended because the request was decided
// in another scan, and then refuses the scan (closedScan).
func (s *Server) superseded(ctx, sctx context.Context, conn *channel.Conn, rec protocol.AuditRecord) bool {
	if !errors.Is(context.Cause(sctx), errRequestClosed) {
		return false
	}
	s.closedScan(ctx, conn, rec)
	return true
}

// closedScan refuses a scan whose request was decided in another scan;
// it is audited once the technician is known.
func (s *Server) closedScan(ctx context.Context, conn *channel.Conn, rec protocol.AuditRecord) {
	if rec.TechID != "" {
		s.log.Info("qr login: scan refused; request no longer open", "technician", rec.Username)
		rec.Event, rec.Reason, rec.Detail = audit.LoginDenied, "login request no longer open", "refused scan; the request was decided in another scan"
		s.record(ctx, rec)
	}
	s.send(ctx, conn, protocol.MsgLoginResult, &protocol.LoginResult{Code: protocol.CodeExpired, Text: "login request no longer open"})
}

func (s *Server) cancelled(ctx context.Context, r *Request, rec protocol.AuditRecord, cause error) {
	s.log.Info("qr login cancelled", "technician", rec.Username, "err", cause)
	rec.Event, rec.Reason = audit.LoginCancelled, "no approval: "+cause.Error()
	s.record(ctx, rec)
	r.finish(lifecycle.Grant{}, ErrCancelled)
}

// record appends rec in its own transaction. It runs without ctx's
// cancellation: a login ended by the phone or the surface going away is
// still recorded.
func (s *Server) record(ctx context.Context, rec protocol.AuditRecord) {
	err := s.cfg.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return s.cfg.Audit.Append(tx, rec) })
	if err != nil {
		s.log.Error("cannot record login event", "event", rec.Event, "err", err)
		return
	}
	if s.cfg.Recorded != nil {
		s.cfg.Recorded()
	}
}
