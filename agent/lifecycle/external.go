package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// External is a session on an account this agent does not manage: a
// domain account the DC agent enabled for a selective login (SPEC.md
// 11.7). The manager ends it like its own sessions — on End from the
// surface, at its deadline (session.expired), retried by Tick until it
// succeeds — by logging the account's sessions off here and then calling
// Finish (which tells the DC agent, DomainEnd). It is kept in memory
// only: after an agent restart the DC agent ends it by itself at its
// deadline.
type External struct {
	Session  protocol.SessionID
	Account  string // the logon name the surface got (e.g. DOMAIN\msp-nik)
	Deadline time.Time
	// Record is the audit record of the session (technician, action);
	// its end is recorded with Event session.ended or session.expired.
	Record protocol.AuditRecord
	// Finish ends the session where it was granted; it must be
	// idempotent, since a failure is retried.
	Finish func(ctx context.Context) error
	// loggedOff is set once the local sessions are ended.
	loggedOff bool
	detail    string
	event     string
}

// BeginExternal registers an external session; its End, expiry and
// retries then go through the manager.
func (m *Manager) BeginExternal(e External) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.external[e.Session] = &e
}

// endExternal ends an external session: the account's local sessions
// logged off (the platform's EndSessions; an account the platform does
// not know has none), then Finish, then session.ended/expired recorded.
// On failure the session stays registered and Tick retries. m.mu is held.
func (m *Manager) endExternal(ctx context.Context, e *External, event, reason string) error {
	if e.event == "" {
		e.event = event
	}
	if !e.loggedOff {
		// The platform backend logs off what runs under the logon name
		// where it knows it (Windows: DOMAIN\account); a name it does not
		// hold locally (ErrNotFound, or a name it cannot take, as the
		// Linux backend a DOMAIN\ name) runs nothing it can end.
		err := m.cfg.Backend.EndSessions(ctx, e.Account)
		switch {
		case err == nil:
			e.detail = "logged off; DC agent told"
		case errors.Is(err, accounts.ErrNotFound) || errors.Is(err, accounts.ErrInvalidName):
			e.detail = "no local session to log off; DC agent told"
		default:
			return fmt.Errorf("lifecycle: log off %s: %w", e.Account, err)
		}
		e.loggedOff = true
	}
	if err := e.Finish(ctx); err != nil {
		return fmt.Errorf("lifecycle: end domain session of %s: %w", e.Account, err)
	}
	rec := e.Record
	rec.Event, rec.Account, rec.Reason, rec.Detail = e.event, e.Account, reason, "domain account; "+e.detail
	if err := m.update(ctx, func(tx *store.Tx) error { return m.cfg.Audit.Append(tx, rec) }); err != nil {
		m.log.Error("domain session end not recorded", "account", e.Account, "err", err)
	}
	delete(m.external, e.Session)
	return nil
}

// tickExternal ends external sessions past their deadline and retries
// failed ends. m.mu is held.
func (m *Manager) tickExternal(ctx context.Context) []error {
	var errs []error
	now := m.cfg.Now()
	for _, e := range m.external {
		var err error
		switch {
		case e.event != "":
			err = m.endExternal(ctx, e, e.event, "")
		case !e.Deadline.After(now):
			err = m.endExternal(ctx, e, audit.SessionExpired, "maximum session length reached")
		default:
			continue
		}
		if err != nil && e.loggedOff && !e.Deadline.After(now) {
			// Logged off here; the DC agent, not reached, ends the
			// domain account by itself at the same deadline.
			rec := e.Record
			rec.Event, rec.Account, rec.Detail = e.event, e.Account, "domain account; DC agent not reached, it ends the session at its deadline"
			if rerr := m.update(ctx, func(tx *store.Tx) error { return m.cfg.Audit.Append(tx, rec) }); rerr != nil {
				m.log.Error("domain session end not recorded", "account", e.Account, "err", rerr)
			}
			delete(m.external, e.Session)
		}
		errs = append(errs, err)
	}
	return errs
}
