// Package signin holds the web console's pending passwordless sign-ins
// and serves their relay side, FlowConsoleLogin (SPEC.md 11.12): the
// console shows a login QR with action console; the technician's paired
// phone scans it, presents its certificate, is shown what it signs in to,
// and sends a signed approval bound to the session and handshake. The
// approved sign-in is redeemed once, by the browser that asked for the QR,
// for a web session (package console/web).
//
// Pending sign-ins live in memory only: the console keeps each code's PSK
// and session id, never its secret, and forgets codes once they expire.
package signin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/protocol"
)

// Limits of pending sign-ins.
const (
	// TTL is how long a sign-in code is answered: the QR's validity.
	TTL = protocol.QRLoginMaxAge
	// MaxPending bounds the codes held at once; the oldest go first.
	MaxPending = 1024
	// MaxOpen and MaxHellos bound the sessions of one code, open at a
	// time and in all (as for a login QR, SPEC.md 11.3).
	MaxOpen   = 4
	MaxHellos = 16
)

// State is where a sign-in stands.
type State int

// States of a sign-in.
const (
	Waiting  State = iota // shown, no decision yet
	Approved              // approved; not yet redeemed
	Denied                // the technician denied
	Expired               // unknown, expired or already redeemed
)

func (s State) String() string {
	switch s {
	case Waiting:
		return "waiting"
	case Approved:
		return "approved"
	case Denied:
		return "denied"
	}
	return "expired"
}

// Errors callers branch on.
var (
	ErrUnknown = errors.New("signin: no such sign-in code")
	ErrFull    = errors.New("signin: sign-in code has its sessions")
)

// Config configures a Registry.
type Config struct {
	Console *console.Console
	// Origin is the web console's origin, shown on the phone.
	Origin string
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Registry holds the pending sign-ins.
type Registry struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	byBrowser map[[32]byte]*pending // key: SHA-256 of the browser's cookie
	bySession map[protocol.SessionID]*pending
}

type pending struct {
	browser [32]byte
	session protocol.SessionID
	psk     []byte
	created time.Time
	client  string
	state   State
	admin   *console.Admin
	open    int
	hellos  int
}

// New returns an empty Registry.
func New(cfg Config) *Registry {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{cfg: cfg, log: log, byBrowser: map[[32]byte]*pending{}, bySession: map[protocol.SessionID]*pending{}}
}

// Code is a new sign-in code: the QR text to show and the browser's
// secret (for its cookie) that redeems it.
type Code struct {
	QR      string
	Browser string // base64url, 32 random bytes
	Expires time.Time
}

// Begin makes a sign-in code for a browser described by client (its
// address and user agent, shown on the phone).
func (r *Registry) Begin(client string) (*Code, error) {
	var secret [protocol.QRSecretLen]byte
	var browser [32]byte
	if _, err := io.ReadFull(r.cfg.Rand, secret[:]); err != nil {
		return nil, fmt.Errorf("signin: random: %w", err)
	}
	if _, err := io.ReadFull(r.cfg.Rand, browser[:]); err != nil {
		return nil, fmt.Errorf("signin: random: %w", err)
	}
	psk, err := protocol.Derive(secret[:], protocol.LabelConsolePSK, nil, 32)
	if err != nil {
		return nil, err
	}
	sid, err := protocol.DeriveSessionID(secret[:], protocol.LabelConsoleSession)
	if err != nil {
		return nil, err
	}
	con := r.cfg.Console
	now := r.cfg.Now()
	q := protocol.ConsoleQR(con.Peer().NoisePublic(), con.Peer().Mailbox(), con.Settings().Relay, secret, now)
	text, err := q.Encode()
	if err != nil {
		return nil, err
	}
	p := &pending{browser: sha256.Sum256(browser[:]), session: sid, psk: psk, created: now, client: shorten(client)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	for len(r.byBrowser) >= MaxPending {
		var oldest *pending
		for _, o := range r.byBrowser {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		r.drop(oldest)
	}
	r.byBrowser[p.browser] = p
	r.bySession[sid] = p
	return &Code{QR: text, Browser: base64.RawURLEncoding.EncodeToString(browser[:]), Expires: now.Add(TTL)}, nil
}

// shorten keeps a client description printable and within
// protocol.MaxConsoleText bytes.
func shorten(s string) string {
	out := make([]rune, 0, len(s))
	n := 0
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c > 0x7e {
			c = '?'
		}
		if n+1 > protocol.MaxConsoleText {
			break
		}
		out = append(out, c)
		n++
	}
	return string(out)
}

func (r *Registry) prune(now time.Time) {
	for _, p := range r.byBrowser {
		// A decided sign-in waits for its browser as long as the code
		// lived; a waiting one dies with its code.
		if now.Sub(p.created) > 2*TTL || (p.state == Waiting && now.Sub(p.created) > TTL) {
			r.drop(p)
		}
	}
}

func (r *Registry) drop(p *pending) {
	delete(r.byBrowser, p.browser)
	delete(r.bySession, p.session)
}

// PSK returns the PSK of the waiting code with that session id, and
// counts a handshake against it; it fails for a code that is unknown,
// decided, expired or at its session limits (the hello is then dropped
// unanswered).
func (r *Registry) PSK(_ context.Context, session protocol.SessionID) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.bySession[session]
	if !ok || p.state != Waiting || r.cfg.Now().Sub(p.created) > TTL {
		return nil, ErrUnknown
	}
	if p.open >= MaxOpen || p.hellos >= MaxHellos {
		return nil, ErrFull
	}
	p.open++
	p.hellos++
	return p.psk, nil
}

// Status returns the state of the browser's sign-in.
func (r *Registry) Status(browser string) State {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.find(browser)
	if p == nil {
		return Expired
	}
	if p.state == Waiting && r.cfg.Now().Sub(p.created) > TTL {
		return Expired
	}
	return p.state
}

// Redeem hands out the technician of an approved sign-in, once, to the
// browser holding its secret.
func (r *Registry) Redeem(browser string) (*console.Admin, State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.find(browser)
	if p == nil {
		return nil, Expired
	}
	if p.state != Approved {
		return nil, p.state
	}
	r.drop(p)
	return p.admin, Approved
}

func (r *Registry) find(browser string) *pending {
	b, err := base64.RawURLEncoding.DecodeString(browser)
	if err != nil || len(b) != 32 {
		return nil
	}
	h := sha256.Sum256(b)
	p, ok := r.byBrowser[h]
	if !ok || subtle.ConstantTimeCompare(p.browser[:], h[:]) != 1 {
		return nil
	}
	return p
}

// Serve runs the console's side of one FlowConsoleLogin session whose
// handshake PSK came from Registry.PSK (SPEC.md 11.12 steps 3..6).
func (r *Registry) Serve(ctx context.Context, c *channel.Conn) {
	defer func() {
		r.mu.Lock()
		if p, ok := r.bySession[c.ID]; ok && p.open > 0 {
			p.open--
		}
		r.mu.Unlock()
	}()
	from := c.Peer.Mailbox.String()
	result := func(res protocol.LoginResult) {
		if err := c.Send(ctx, protocol.MsgLoginResult, &res); err != nil {
			r.log.Info("console sign-in: send result", "from", from, "err", err)
		}
	}
	refused := func(why string, err error) {
		r.log.Warn("console sign-in refused", "from", from, "why", why, "err", err)
		result(protocol.LoginResult{Code: protocol.CodeRefused, Text: "refused"})
	}
	var hello protocol.LoginHello
	if err := c.Recv(ctx, protocol.MsgLoginHello, &hello); err != nil {
		r.log.Info("console sign-in: bad hello", "from", from, "err", err)
		return
	}
	admin, err := r.cfg.Console.SignInCert(ctx, hello.TechCert, c.Session.PeerStatic())
	if err != nil {
		refused("certificate", err)
		return
	}
	p := r.waiting(c.ID)
	if p == nil {
		result(protocol.LoginResult{Code: protocol.CodeExpired, Text: "sign-in code expired or used"})
		return
	}
	con := r.cfg.Console
	req := protocol.ConsoleRequest{Session: c.ID, Action: protocol.ActionConsole, Org: con.Settings().Org,
		Origin: r.cfg.Origin, Client: p.client, Time: r.cfg.Now().Unix()}
	if err := c.Send(ctx, protocol.MsgConsoleRequest, &req); err != nil {
		r.log.Info("console sign-in: send request", "from", from, "err", err)
		return
	}
	var signed protocol.Signed
	if err := c.Recv(ctx, protocol.MsgApproval, &signed); err != nil {
		var pe *protocol.PeerError
		if errors.As(err, &pe) {
			r.log.Info("console sign-in cancelled on the phone", "username", admin.Tech.Username, "text", pe.Text)
		} else {
			r.log.Info("console sign-in: no approval", "from", from, "err", err)
		}
		return
	}
	var ap protocol.Approval
	if err := signed.VerifyP256(protocol.DocApproval, admin.Cert.ApprovalKey, &ap); err != nil {
		refused("approval signature", err)
		return
	}
	err = ap.Match(protocol.ApprovalExpect{
		Serial: admin.Cert.Serial, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(),
		Action: protocol.ActionConsole, Now: r.cfg.Now(),
	})
	if err != nil {
		refused("approval", err)
		return
	}
	// Again, now: the certificate may have been revoked while the
	// technician decided.
	fresh, err := con.SignedIn(ctx, admin.Tech.ID, admin.Serial)
	if err != nil {
		refused("certificate at decision", err)
		return
	}
	fresh.Cert = admin.Cert
	if !r.decide(c.ID, ap.Decision == protocol.DecisionApprove, fresh) {
		result(protocol.LoginResult{Code: protocol.CodeExpired, Text: "sign-in code expired or used"})
		return
	}
	if ap.Decision != protocol.DecisionApprove {
		r.log.Info("console sign-in denied on the phone", "username", fresh.Tech.Username)
		result(protocol.LoginResult{Code: protocol.CodeDenied, Text: "denied"})
		return
	}
	r.log.Info("console sign-in approved", "username", fresh.Tech.Username, "tech_id", fresh.Tech.ID,
		"serial", fresh.Serial, "role", fresh.Role(), "client", p.client)
	result(protocol.LoginResult{OK: true})
}

// waiting returns the code of a session if it is still waiting.
func (r *Registry) waiting(session protocol.SessionID) *pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.bySession[session]
	if !ok || p.state != Waiting || r.cfg.Now().Sub(p.created) > TTL {
		return nil
	}
	return p
}

// decide consumes a waiting code with a verified decision: only
// the first decision counts.
func (r *Registry) decide(session protocol.SessionID, approve bool, a *console.Admin) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.bySession[session]
	if !ok || p.state != Waiting || r.cfg.Now().Sub(p.created) > TTL {
		return false
	}
	if approve {
		p.state, p.admin = Approved, a
	} else {
		p.state = Denied
	}
	return true
}
