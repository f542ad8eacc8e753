package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	// Cert is the technician certificate the login verified; Reauthorize
	// ends the session when a new policy no longer admits it (nil: ended
	// by the first Reauthorize, fail closed).
	Cert *protocol.TechCert
	// Finish ends the session where it was granted; it must be
	// idempotent, since a failure is retried.
	Finish func(ctx context.Context) error
	// loggedOff is set once the local sessions are ended.
	loggedOff bool
	detail    string
	event     string
	reason    string
	busy      bool // an end is under way (guarded by Manager.mu)
}

// BeginExternal registers an external session; its End, expiry and
// retries then go through the manager.
func (m *Manager) BeginExternal(e External) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.external[e.Session] = &e
}

// endExternal ends an external session: the account's local sessions
// logged off (the platform's EndSessions), then Finish, then
// session.ended/expired recorded. On failure the session stays
// registered and Tick retries. It runs without m.mu held across the
// platform and network calls (Finish may wait for the DC agent), so local
// logins are not held up; one end of a session runs at a time.
func (m *Manager) endExternal(ctx context.Context, e *External, event, reason string) error {
	m.mu.Lock()
	if e.busy {
		m.mu.Unlock()
		return fmt.Errorf("lifecycle: end of %s already under way", e.Account)
	}
	e.busy = true
	if e.event == "" {
		e.event, e.reason = event, reason
	}
	m.mu.Unlock()
	err := m.finishExternal(ctx, e)
	m.mu.Lock()
	e.busy = false
	if err == nil {
		delete(m.external, e.Session)
	}
	m.mu.Unlock()
	return err
}

func (m *Manager) finishExternal(ctx context.Context, e *External) error {
	if !e.loggedOff {
		// The platform backend logs off what runs under the logon name
		// where it holds it (Windows: DOMAIN\account); a name it does not
		// hold locally (ErrNotFound, or one it cannot take, as the Linux
		// backend a DOMAIN\ name) runs nothing it can end.
		err := m.cfg.Backend.EndSessions(ctx, e.Account)
		switch {
		case err == nil:
			e.detail = "logged off"
		case errors.Is(err, accounts.ErrNotFound) || errors.Is(err, accounts.ErrInvalidName):
			e.detail = "no local session to log off"
		default:
			return fmt.Errorf("lifecycle: log off %s: %w", e.Account, err)
		}
		e.loggedOff = true
	}
	detail := e.detail + "; DC agent told"
	err := e.Finish(ctx)
	if err != nil {
		if e.Deadline.After(m.cfg.Now()) {
			return fmt.Errorf("lifecycle: end domain session of %s: %w", e.Account, err)
		}
		// Past the deadline the DC agent, not reached, ends the domain
		// account by itself at the same instant.
		m.log.Warn("domain session end not confirmed by the DC agent; it ends the session at its deadline", "account", e.Account, "err", err)
		detail = e.detail + "; DC agent not reached, it ends the session at its deadline"
	}
	rec := e.Record
	rec.Event, rec.Account, rec.Reason, rec.Detail = e.event, e.Account, e.reason, "domain account; "+detail
	if err := m.update(ctx, func(tx *store.Tx) error { return m.cfg.Audit.Append(tx, rec) }); err != nil {
		m.log.Error("domain session end not recorded", "account", e.Account, "err", err)
	}
	return nil
}

// tickExternal ends external sessions past their deadline and retries
// failed ends. m.mu is not held.
func (m *Manager) tickExternal(ctx context.Context) []error {
	now := m.cfg.Now()
	type due struct {
		e      *External
		event  string
		reason string
	}
	var todo []due
	m.mu.Lock()
	for _, e := range m.external {
		switch {
		case e.busy:
		case e.event != "":
			todo = append(todo, due{e, e.event, ""})
		case !e.Deadline.After(now):
			todo = append(todo, due{e, audit.SessionExpired, "maximum session length reached"})
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, d := range todo {
		errs = append(errs, m.endExternal(ctx, d.e, d.event, d.reason))
	}
	return errs
}

// reauthorizeExternal ends the external sessions whose technician policy
// p no longer admits on device d (SPEC.md 4, R-47), as Reauthorize does
// for local ones. m.mu is not held.
func (m *Manager) reauthorizeExternal(ctx context.Context, p *protocol.Policy, d *protocol.DeviceCert) (int, []error) {
	type withdrawn struct {
		e      *External
		reason string
	}
	var todo []withdrawn
	m.mu.Lock()
	for _, e := range m.external {
		switch {
		case e.Cert == nil:
			todo = append(todo, withdrawn{e, "access withdrawn: the session's technician certificate is unknown"})
		default:
			if err := p.Authorize(e.Cert, d); err != nil {
				todo = append(todo, withdrawn{e, "access withdrawn: " + strings.TrimPrefix(err.Error(), "protocol: ")})
			}
		}
	}
	m.mu.Unlock()
	var errs []error
	ended := 0
	for _, w := range todo {
		m.log.Warn("access withdrawn: ending the domain session", "account", w.e.Account, "reason", w.reason)
		if err := m.endExternal(ctx, w.e, audit.SessionEnded, w.reason); err != nil {
			errs = append(errs, err)
			continue
		}
		ended++
	}
	return ended, errs
}
