package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/breakglass"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// Break-glass refusals (SPEC.md 11.15), shown by the login surface.
var (
	// ErrRecoveryMistyped: the text is not a recovery code (its check
	// characters do not match); the attempt counts as a failure.
	ErrRecoveryMistyped = errors.New("offline: that is not a valid recovery code (mistyped?): read it again, in groups of four")
	// ErrRecoveryRefused: a wrong recovery code, or one already used.
	ErrRecoveryRefused = errors.New("offline: wrong or used recovery code")
	// ErrBreakGlassOff: the tenant's policy turns break-glass off
	// (Policy.BreakGlassOff); the code was not checked.
	ErrBreakGlassOff = errors.New("offline: " + breakGlassOff)
)

// breakGlassOff is the audited reason, and the shown one, of a recovery
// code typed while the policy turns break-glass off.
const breakGlassOff = "break-glass is turned off for this computer"

// breakGlass checks a recovery code typed with the username
// protocol.BreakGlassUsername and, if it is the device's current unused
// code, opens a session on protocol.BreakGlassAccount (SPEC.md 11.15).
// The code is marked used, the next one created (sealed for escrow) and
// breakglass.used recorded in the transaction that records the
// session's intent, before the account is touched. Wrong, mistyped and
// used codes count towards the policy's lockout like wrong TOTP codes.
// Neither the offline allowance (MaxLogins, MaxDays) nor the technician
// rules apply: break-glass is for when nothing else works. When the
// policy turns break-glass off (Policy.BreakGlassOff) the code is refused
// unchecked and not counted: the switch is the MSP's, not an attacker's
// guess, and the codes and their escrow stay as they are.
func (v *Verifier) breakGlass(ctx context.Context, r Request, now time.Time) (lifecycle.Grant, error) {
	rec := protocol.AuditRecord{Method: protocol.MethodBreakGlass, Online: r.Online, Action: r.Action,
		TechID: protocol.BreakGlassUsername, Username: protocol.BreakGlassUsername}
	e, err := v.readDevice(ctx, rec, "", now)
	if err != nil {
		return lifecycle.Grant{}, err
	}
	if e.pol.BreakGlassOff {
		v.deny(ctx, rec, breakGlassOff)
		return lifecycle.Grant{}, ErrBreakGlassOff
	}
	var codes []store.RecoveryCode
	var st store.RecoveryState
	err = v.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		if codes, err = tx.RecoveryCodes(); err != nil {
			return err
		}
		st, err = tx.RecoveryState()
		return err
	})
	if err != nil {
		v.log.Error("break-glass: cannot read the recovery codes", "err", err)
		v.deny(ctx, rec, "recovery codes unreadable")
		return lifecycle.Grant{}, ErrUnavailable
	}
	if now.Before(st.LockedUntil) {
		v.deny(ctx, rec, fmt.Sprintf("locked out after %d wrong recovery codes", st.Failures))
		v.locked[r.Username] = st.LockedUntil
		return lifecycle.Grant{}, &LockedError{Until: st.LockedUntil}
	}
	code, perr := protocol.ParseRecoveryCode(r.Code)
	if perr != nil {
		return lifecycle.Grant{}, v.recoveryFailed(ctx, rec, e.pol.Offline, now, "recovery code mistyped (check characters do not match)", ErrRecoveryMistyped)
	}
	m, ok := breakglass.Match(codes, code)
	clear(code[:])
	if !ok {
		return lifecycle.Grant{}, v.recoveryFailed(ctx, rec, e.pol.Offline, now, "wrong recovery code", ErrRecoveryRefused)
	}
	if !m.Used.IsZero() {
		return lifecycle.Grant{}, v.recoveryFailed(ctx, rec, e.pol.Offline, now,
			fmt.Sprintf("recovery code generation %d already used at %s", m.Generation, m.Used.UTC().Format(time.RFC3339)), ErrRecoveryRefused)
	}

	var session protocol.SessionID
	if _, err := io.ReadFull(v.cfg.Rand, session[:]); err != nil {
		return lifecycle.Grant{}, fmt.Errorf("offline: session id: %w", err)
	}
	// The break-glass account is one per device, in both login modes.
	p := e.pol
	p.LoginMode, p.SharedAccount = protocol.ModeNamed, ""
	var refusal error
	g, err := v.cfg.Lifecycle.Begin(ctx, lifecycle.Request{
		TechID: protocol.BreakGlassUsername, Username: protocol.BreakGlassUsername, Policy: &p, Session: session,
		Action: r.Action, Method: protocol.MethodBreakGlass, Online: r.Online,
		Record: func(tx *store.Tx, account string) error {
			// Decided again inside the transaction: of two attempts
			// with one code, only one marks it used.
			cur, err := tx.RecoveryCodes()
			if err != nil {
				return err
			}
			if len(cur) == 0 || cur[0].Generation != m.Generation || !cur[0].Used.IsZero() {
				refusal = ErrRecoveryRefused
				return errors.New("recovery code already used")
			}
			if err := tx.UseRecoveryCode(m.Generation, now); err != nil {
				refusal = ErrRecoveryRefused
				return err
			}
			next, err := v.cfg.BreakGlass.Next(tx, m.Generation)
			if err != nil {
				return err
			}
			if err := tx.PutRecoveryState(store.RecoveryState{}); err != nil {
				return err
			}
			a := rec
			a.Event, a.Account = protocol.EventBreakGlassUsed, account
			a.Detail = protocol.BreakGlassUsedDetail(m.Generation, next)
			if err := v.cfg.Audit.Append(tx, a); err != nil {
				return err
			}
			a = rec
			a.Event, a.Account = audit.LoginApproved, account
			return v.cfg.Audit.Append(tx, a)
		},
	})
	if err != nil {
		return lifecycle.Grant{}, v.grantFailed(ctx, rec, "break-glass login", refusal, err)
	}
	v.recorded()
	v.log.Warn("BREAK-GLASS login with the device's recovery code", "account", g.Account, "generation", m.Generation, "online", r.Online)
	return g, nil
}

// recoveryFailed records a refused recovery code: the failure count, a
// lockout when it reaches the policy's MaxFailures, and login.denied, in
// one transaction. If that cannot be recorded, this process locks
// break-glass out as after MaxFailures (fail closed).
func (v *Verifier) recoveryFailed(ctx context.Context, rec protocol.AuditRecord, p protocol.OfflineParams, now time.Time, reason string, answer error) error {
	var st store.RecoveryState
	return v.refused(ctx, rec, p, now, protocol.BreakGlassUsername, reason, answer, func(tx *store.Tx) (*failures, func() error, error) {
		var err error
		st, err = tx.RecoveryState()
		return &failures{&st.Failures, &st.LockedUntil}, func() error { return tx.PutRecoveryState(st) }, err
	})
}
