// Package offline runs offline logins on the agent (SPEC.md 11.6): the
// technician types their username and the code their phone shows; the
// agent decides alone, from its store, whether to make the account ready.
//
// What a code must pass, in order, every decision audited with method
// "otp" (login.approved or login.denied with the reason):
//
//   - the agent's own device certificate verifies and is within its
//     validity, and the policy does not revoke it;
//   - online, codes are accepted only if the policy allows OTP while
//     online;
//   - the username is a technician in the cached signed roster;
//   - the technician is not locked out (MaxFailures consecutive wrong
//     codes lock them out for LockoutBase · 2^(failures − MaxFailures)
//     seconds, at most LockoutLimit; persisted, so a restart changes
//     nothing);
//   - the access rule of the cached policy admits them (revocation,
//     delegation, share list; RosterEntry.Cert);
//   - offline, fewer than MaxLogins offline logins since the last contact
//     with the console, which was at most MaxDays ago;
//   - a key exists: named mode, the one this agent created for the
//     technician and gave their phone at an online login; shared mode,
//     the code key derived from the tenant secret for (technician,
//     device), unless the technician spent that generation offline;
//   - the code is one of steps now−Skew..now+Skew, above the last step
//     accepted for the technician (each step once), compared in constant
//     time.
//
// The accepted step, the reset failure count and the login.approved
// record commit in the transaction that records the session's intent
// (lifecycle.Request.Record), so a code is never accepted twice, even
// across a crash. After an offline login, the agent's next contact with
// the console replaces the key that was used (Contact).
package offline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/breakglass"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

// Errors an offline login ends with. The login surface shows them; they
// say what to do, and no more than the person at the screen may know.
var (
	// ErrWrongCode: unknown username, wrong code or a code already used.
	ErrWrongCode = errors.New("offline: wrong username or code")
	// ErrRefused: the policy does not admit the technician here.
	ErrRefused = errors.New("offline: not allowed on this device")
	// ErrNoKey: the technician has no offline code for this device.
	ErrNoKey = errors.New("offline: no offline code for this device yet: log in once with the QR code while the computer is online, or sync the phone")
	// ErrLimit: the offline allowance is used up until the agent is back
	// in contact with the console.
	ErrLimit = errors.New("offline: offline logins on this computer are used up until it is back online")
	// ErrOnline: the policy accepts codes only while offline.
	ErrOnline = errors.New("offline: this computer is online: scan the QR code instead")
	// ErrRemoved: the MSP removed this computer.
	ErrRemoved = errors.New("offline: this computer was removed from jitkey by the MSP; jitkey logins are disabled")
	// ErrNotEnrolled: no enrollment or policy yet.
	ErrNotEnrolled = errors.New("offline: agent not enrolled or without policy")
	// ErrUnavailable: the account could not be made ready.
	ErrUnavailable = errors.New("offline: account could not be made ready")
)

// LockedError: too many wrong codes for the technician; retry after Until.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return fmt.Sprintf("offline: too many wrong codes: try again after %s", e.Until.UTC().Format(time.TimeOnly+" MST"))
}

// Config configures a Verifier.
type Config struct {
	Store     *store.Store
	Audit     *audit.Recorder
	Lifecycle *lifecycle.Manager
	Vault     vault.Sealer
	Now       func() time.Time
	Rand      io.Reader
	Logger    *slog.Logger
	Recorded  func() // called after audit records commit
	// BreakGlass, if set, checks recovery codes typed with the username
	// protocol.BreakGlassUsername (SPEC.md 11.15).
	BreakGlass *breakglass.Keeper
}

// Verifier checks offline codes. Attempts are serialised.
type Verifier struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// locked caches the lockouts read or set, by username: during a
	// lockout an attempt is refused before the store is read, and not
	// audited again (the failure that started it was), so hammering the
	// prompt costs the agent nothing and cannot flood the audit trail.
	// The store stays the truth across restarts.
	locked map[string]time.Time
	// policies caches the verified policy between attempts.
	policies policy.Cache
}

// New returns a Verifier.
func New(cfg Config) *Verifier {
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
	return &Verifier{cfg: cfg, log: log, locked: map[string]time.Time{}}
}

// Request is one attempt.
type Request struct {
	Username string
	Code     string
	Action   uint8
	// Online: the agent reaches its relay now (the daemon says; the
	// surface never decides it).
	Online bool
}

// Vault contexts of the sealed secrets.
func namedContext(techID string) []byte  { return []byte("otp-named\x00" + techID) }
func sharedContext(tenant string) []byte { return []byte("otp-shared\x00" + tenant) }

// env is what one attempt reads from the store.
type env struct {
	pol     protocol.Policy
	dev     protocol.DeviceCert
	contact store.Contact
	secret  store.OfflineSecret
	hasSec  bool
	entry   *protocol.RosterEntry
	state   store.OfflineState
	key     []byte // sealed named key, if any
}

// Login checks r and, if it passes, makes the account ready (the grant's
// password goes to the login surface once).
func (v *Verifier) Login(ctx context.Context, r Request) (lifecycle.Grant, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	if until, ok := v.locked[r.Username]; ok {
		if now.Before(until) {
			return lifecycle.Grant{}, &LockedError{Until: until}
		}
		delete(v.locked, r.Username)
	}
	if r.Username == protocol.BreakGlassUsername && v.cfg.BreakGlass != nil {
		return v.breakGlass(ctx, r, now)
	}
	rec := protocol.AuditRecord{Method: protocol.MethodOTP, Online: r.Online, Action: r.Action, Username: auditName(r.Username)}
	e, err := v.readDevice(ctx, rec, r.Username, now)
	if err != nil {
		return lifecycle.Grant{}, err
	}
	if r.Online && !e.pol.OTPWhileOnline {
		v.deny(ctx, rec, "codes are accepted only offline (policy)")
		return lifecycle.Grant{}, ErrOnline
	}
	p := e.pol.Offline
	if e.entry == nil {
		// Unknown technician: the same work as a wrong code, the same
		// answer.
		_, _, _ = otpcode.Match(make([]byte, otpcode.KeySize), r.Code, now, p, 0)
		// What was typed is not recorded: a technician who typed a
		// password or a code into the username field must not find it in
		// the audit trail or the log.
		rec.Username = ""
		v.deny(ctx, rec, "unknown username")
		return lifecycle.Grant{}, ErrWrongCode
	}
	rec.TechID = e.entry.TechID
	if now.Before(e.state.LockedUntil) {
		// Audited once per lockout and process (the cache refuses the
		// next attempts).
		v.deny(ctx, rec, fmt.Sprintf("locked out after %d wrong codes", e.state.Failures))
		v.locked[r.Username] = e.state.LockedUntil
		return lifecycle.Grant{}, &LockedError{Until: e.state.LockedUntil}
	}
	cert := e.entry.Cert(e.pol.Tenant)
	if err := e.pol.Authorize(&cert, &e.dev); err != nil {
		v.deny(ctx, rec, "access rule: "+strings.TrimPrefix(err.Error(), "protocol: "))
		return lifecycle.Grant{}, ErrRefused
	}
	if _, need := e.pol.SecondApproverList(e.dev.DeviceID); need {
		// No second approver can be asked for a code (SPEC.md 11.14, R-65).
		v.deny(ctx, rec, secondApprovalRequired)
		return lifecycle.Grant{}, ErrRefused
	}
	if !r.Online {
		if e.contact.Last == 0 {
			v.deny(ctx, rec, "no contact with the console recorded yet")
			return lifecycle.Grant{}, ErrLimit
		}
		if e.contact.Logins >= p.Logins() {
			v.deny(ctx, rec, fmt.Sprintf("offline login limit reached (%d since the last contact with the console)", p.Logins()))
			return lifecycle.Grant{}, ErrLimit
		}
		if now.Sub(time.UnixMilli(e.contact.Last)) > time.Duration(p.Days())*24*time.Hour {
			v.deny(ctx, rec, fmt.Sprintf("no contact with the console for more than %d days", p.Days()))
			return lifecycle.Grant{}, ErrLimit
		}
	}
	key, derived, reason, err := v.codeKey(e)
	if err != nil {
		v.log.Error("offline key does not open", "technician", e.entry.Username, "err", err)
		v.deny(ctx, rec, "offline key unreadable")
		return lifecycle.Grant{}, ErrUnavailable
	}
	if key == nil {
		v.deny(ctx, rec, reason)
		return lifecycle.Grant{}, ErrNoKey
	}
	step, ok, _ := otpcode.Match(key, r.Code, now, p, e.state.LastStep)
	clear(key)
	if !ok {
		return lifecycle.Grant{}, v.failed(ctx, rec, e, now)
	}
	return v.grant(ctx, rec, r, e, &cert, step, derived)
}

// read gathers what an attempt needs.
func (v *Verifier) read(ctx context.Context, username string) (env, error) {
	var e env
	err := v.cfg.Store.View(ctx, func(tx *store.Tx) error {
		enr, err := tx.Enrollment()
		if err != nil {
			return err
		}
		if err := enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, enr.MSPKey, &e.dev); err != nil {
			return fmt.Errorf("device certificate: %w", err)
		}
		if e.pol, err = v.policies.Current(tx); err != nil {
			return err
		}
		if e.contact, err = tx.Contact(); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		e.secret, err = tx.OfflineSecret()
		switch {
		case err == nil:
			e.hasSec = true
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		for i := range e.pol.Roster {
			if e.pol.Roster[i].Username == username {
				e.entry = &e.pol.Roster[i]
			}
		}
		if e.entry == nil {
			return nil
		}
		if e.state, err = tx.OfflineState(e.entry.TechID); err != nil {
			return err
		}
		k, err := tx.OfflineKey(e.entry.TechID)
		switch {
		case err == nil:
			e.key = k.Sealed
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return nil
	})
	return e, err
}

// derivedRetired in OfflineState.SpentGeneration: the technician's
// shared-mode derived key is no longer used on this device; a per-device
// key created by the agent (as in named mode) replaced it.
const derivedRetired = uint64(1<<63 - 1) // the largest value the store holds

// codeKey returns the technician's code key on this device, whether it is
// the shared-mode derived key, or nil and why there is none.
//
// Named mode: the key the agent created for the technician. Shared mode:
// a per-device key the agent created replaces the derived key once that
// was used offline (it is given to the phone at the next online login and
// the phone prefers it); until then, the key derived from the tenant
// secret, available at once.
func (v *Verifier) codeKey(e env) ([]byte, bool, string, error) {
	if e.key != nil {
		k, err := v.cfg.Vault.Open(e.key, namedContext(e.entry.TechID))
		return k, false, "", err
	}
	if e.pol.LoginMode == protocol.ModeNamed {
		return nil, false, "no named offline key on this device", nil
	}
	if e.state.SpentGeneration == derivedRetired {
		return nil, false, "the shared key was used offline and retired; a new key comes with the next online login here", nil
	}
	if !e.hasSec {
		return nil, false, "no shared offline secret from the console yet", nil
	}
	if e.secret.Generation <= e.state.SpentGeneration {
		return nil, false, fmt.Sprintf("shared key generation %d was used offline; waiting for the next", e.secret.Generation), nil
	}
	s, err := v.cfg.Vault.Open(e.secret.Sealed, sharedContext(e.pol.Tenant))
	if err != nil {
		return nil, false, "", err
	}
	defer clear(s)
	k, err := otpcode.SharedCodeKey(s, e.entry.TechID, e.dev.DeviceID)
	return k, true, "", err
}

// failed records a wrong code: the failure count, a lockout when it
// reaches MaxFailures, and login.denied, in one transaction.
func (v *Verifier) failed(ctx context.Context, rec protocol.AuditRecord, e env, now time.Time) error {
	var st store.OfflineState
	return v.refused(ctx, rec, e.pol.Offline, now, e.entry.Username, "wrong code", ErrWrongCode, func(tx *store.Tx) (*failures, func() error, error) {
		var err error
		st, err = tx.OfflineState(e.entry.TechID)
		return &failures{&st.Failures, &st.LockedUntil}, func() error { return tx.PutOfflineState(st) }, err
	})
}

// failures points at the part of a store record (a technician's
// OfflineState, the device's RecoveryState) that counts refused codes.
type failures struct {
	count       *int
	lockedUntil *time.Time
}

// refused records a refused code of holder (the name v.locked caches its
// lockout under) in the record that load reads and returns, with put to
// write it back: the failure count, a lockout when it reaches
// p.MaxFailures, and login.denied with reason, in one transaction. It
// returns a *LockedError on a lockout, else answer.
func (v *Verifier) refused(ctx context.Context, rec protocol.AuditRecord, p protocol.OfflineParams, now time.Time, holder, reason string, answer error, load func(*store.Tx) (*failures, func() error, error)) error {
	var count int
	var lockedUntil time.Time
	err := v.update(ctx, func(tx *store.Tx) error {
		f, put, err := load(tx)
		if err != nil {
			return err
		}
		*f.count++
		rec.Reason = fmt.Sprintf("%s (%d in a row)", reason, *f.count)
		if *f.count >= p.MaxFailures {
			*f.lockedUntil = now.Add(Lockout(p, *f.count))
			rec.Reason += fmt.Sprintf("; locked out for %s", Lockout(p, *f.count))
		}
		if err := put(); err != nil {
			return err
		}
		count, lockedUntil = *f.count, *f.lockedUntil
		rec.Event = audit.LoginDenied
		return v.cfg.Audit.Append(tx, rec)
	})
	if err != nil {
		// Not recorded (disk full, I/O error): fail closed. The guesser
		// must not get unlimited tries while the store cannot count
		// them, so this process locks holder out as after MaxFailures.
		v.log.Error("cannot record a refused code; locking out", "holder", holder, "err", err)
		until := now.Add(Lockout(p, p.MaxFailures))
		v.locked[holder] = until
		return &LockedError{Until: until}
	}
	v.log.Warn("offline code refused", "holder", holder, "reason", rec.Reason)
	if count >= p.MaxFailures {
		v.locked[holder] = lockedUntil
		return &LockedError{Until: lockedUntil}
	}
	return answer
}

// readDevice reads the policy and the device (as read does) and checks
// that the device may log in: enrolled, its certificate valid at now, not
// removed by the MSP. A refusal is audited (login.denied, rec).
func (v *Verifier) readDevice(ctx context.Context, rec protocol.AuditRecord, username string, now time.Time) (env, error) {
	e, err := v.read(ctx, username)
	if err != nil {
		v.deny(ctx, rec, "no policy: "+err.Error())
		return env{}, ErrNotEnrolled
	}
	if err := e.dev.Valid(now); err != nil {
		v.deny(ctx, rec, "device certificate: "+err.Error())
		return env{}, ErrNotEnrolled
	}
	if e.pol.IsDeviceRevoked(e.dev.Serial) {
		v.deny(ctx, rec, "device removed by the MSP")
		return env{}, ErrRemoved
	}
	return e, nil
}

// grantFailed audits and answers a login (what, for the log) whose grant
// failed with err: refusal if the transaction refused it, ErrRemoved if
// the device was removed meanwhile, else ErrUnavailable.
func (v *Verifier) grantFailed(ctx context.Context, rec protocol.AuditRecord, what string, refusal, err error) error {
	switch {
	case refusal != nil:
		v.deny(ctx, rec, "at grant: "+err.Error())
		return refusal
	case errors.Is(err, lifecycle.ErrRemoved):
		v.deny(ctx, rec, "device removed by the MSP")
		return ErrRemoved
	}
	v.log.Warn(what+": account not ready", "err", err)
	v.deny(ctx, rec, "account not ready: "+err.Error())
	return ErrUnavailable
}

// Lockout is the lockout after failures consecutive wrong codes:
// LockoutBase · 2^(failures − MaxFailures), at most LockoutLimit.
// A LockoutBase of 0 (which a policy may carry) is taken as 1 s, so a
// lockout always happens.
func Lockout(p protocol.OfflineParams, failures int) time.Duration {
	n := failures - p.MaxFailures
	if n < 0 {
		return 0
	}
	base := max(p.LockoutBase, 1)
	limit := max(p.LockoutLimit, base)
	d := base
	for ; n > 0 && d < limit; n-- {
		d *= 2
	}
	return time.Duration(min(d, limit)) * time.Second
}

// grant makes the account ready. The step is consumed, the failures
// reset and login.approved written with the session's intent; the
// access rule is decided again there with the policy held then.
func (v *Verifier) grant(ctx context.Context, rec protocol.AuditRecord, r Request, e env, cert *protocol.TechCert, step uint64, derived bool) (lifecycle.Grant, error) {
	var session protocol.SessionID
	if _, err := io.ReadFull(v.cfg.Rand, session[:]); err != nil {
		return lifecycle.Grant{}, fmt.Errorf("offline: session id: %w", err)
	}
	rec.TechID, rec.Username = cert.TechID, cert.Username
	var refusal error
	g, err := v.cfg.Lifecycle.Begin(ctx, lifecycle.Request{
		TechID: cert.TechID, Username: cert.Username, Cert: cert, Policy: &e.pol, Session: session,
		Action: r.Action, Method: protocol.MethodOTP, Online: r.Online,
		Record: func(tx *store.Tx, account string) error {
			cur, _, err := policy.Current(tx)
			if err != nil {
				return err
			}
			if err := cur.Authorize(cert, &e.dev); err != nil {
				refusal = ErrRefused
				return err
			}
			if _, need := cur.SecondApproverList(e.dev.DeviceID); need {
				refusal = ErrRefused
				return errors.New(secondApprovalRequired)
			}
			st, err := tx.OfflineState(cert.TechID)
			if err != nil {
				return err
			}
			if step <= st.LastStep {
				refusal = ErrWrongCode
				return errors.New("code already used")
			}
			st.LastStep, st.Failures, st.LockedUntil = step, 0, time.Time{}
			if !r.Online {
				st.UsedOffline = true
				if derived {
					st.UsedGeneration = max(st.UsedGeneration, e.secret.Generation)
				}
				c, err := tx.Contact()
				if err != nil {
					return err
				}
				c.Logins++
				if err := tx.SetContact(c); err != nil {
					return err
				}
			}
			if err := tx.PutOfflineState(st); err != nil {
				return err
			}
			a := rec
			a.Event, a.Account = audit.LoginApproved, account
			return v.cfg.Audit.Append(tx, a)
		},
	})
	if err != nil {
		return lifecycle.Grant{}, v.grantFailed(ctx, rec, "offline login", refusal, err)
	}
	v.recorded()
	v.log.Info("offline login approved", "account", g.Account, "technician", cert.Username, "online", r.Online)
	return g, nil
}

// secondApprovalRequired is the audited reason of an offline login on a
// device whose policy needs a second approver (SPEC.md 11.14).
const secondApprovalRequired = "second approval required: offline codes not accepted"

// deny records login.denied with reason in its own transaction, whatever
// ctx's state.
func (v *Verifier) deny(ctx context.Context, rec protocol.AuditRecord, reason string) {
	v.log.Info("offline login denied", "technician", rec.Username, "reason", reason)
	rec.Event, rec.Reason = audit.LoginDenied, reason
	if err := v.update(ctx, func(tx *store.Tx) error { return v.cfg.Audit.Append(tx, rec) }); err != nil {
		v.log.Error("cannot record an offline login denial", "err", err)
	}
}

func (v *Verifier) update(ctx context.Context, fn func(*store.Tx) error) error {
	err := v.cfg.Store.Update(context.WithoutCancel(ctx), fn)
	if err == nil {
		v.recorded()
	}
	return err
}

func (v *Verifier) recorded() {
	if v.cfg.Recorded != nil {
		v.cfg.Recorded()
	}
}

// auditName is a typed username as the audit may hold it: at most 64
// bytes of printable UTF-8, else a placeholder.
func auditName(s string) string {
	if len(s) > 64 || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "(invalid username)"
	}
	return s
}
