// Package dcagent is the domain controller role of the agent (SPEC.md
// 11.7): it answers workstation agents' DomainRequests after checking
// the technician's approval itself, runs the JIT domain accounts' session
// lifecycle through a Directory (package domain, LDAPS), ends sessions on
// DomainEnd or at their expiry, repairs at start what a crash left
// enabled, and deletes accounts unused for the policy's InactivityDays,
// by its own record of their last use.
package dcagent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/domain"
	"github.com/jitkey/jitkey/agent/domain/adattr"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// Directory is what the DC agent needs of the domain (*domain.Directory).
type Directory interface {
	Begin(ctx context.Context, name string, until time.Time) (password.Secret, error)
	End(ctx context.Context, name string) error
	Inventory(ctx context.Context) ([]adattr.Entry, error)
	Delete(ctx context.Context, name string) error
	Repair(ctx context.Context, live func(name string) bool) ([]string, error)
}

// Config configures a Service.
type Config struct {
	Store  *store.Store
	Dir    Directory
	Audit  *audit.Recorder
	MSPKey protocol.IdentityKey
	Tenant string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	Log *slog.Logger
}

// Service is the DC agent. Safe for concurrent use.
type Service struct {
	cfg Config
	// mu serialises the directory changes of Request, End, Expire and
	// Sweep, so a deletion never races a session's begin.
	mu sync.Mutex
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

// Refusal is an error the DC agent reports to the workstation as
// MsgError{Code} with a coarse text; Reason (audited and logged) says
// which check failed.
type Refusal struct {
	Code   uint8
	Reason string
	Err    error
}

func (r *Refusal) Error() string { return "dcagent: refused: " + r.Reason }
func (r *Refusal) Unwrap() error { return r.Err }

// Text is the coarse text for the peer.
func (r *Refusal) Text() string {
	switch r.Code {
	case protocol.CodeExpired:
		return "approval already used"
	case protocol.CodeUnavailable:
		return "domain controller unavailable"
	}
	return "refused"
}

func (s *Service) policy(ctx context.Context) (protocol.Policy, error) {
	var p protocol.Policy
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		row, err := tx.Policy(s.cfg.Tenant)
		if err != nil {
			return err
		}
		sd, err := protocol.DecodeSigned(row.Signed)
		if err != nil {
			return err
		}
		return sd.VerifyEd25519(protocol.DocPolicy, s.cfg.MSPKey, &p)
	})
	if err != nil {
		return p, fmt.Errorf("dcagent: policy: %w", err)
	}
	return p, nil
}

// AccountName is the JIT domain account of a technician under policy p:
// msp-<username> in named mode (at most 20 characters, sAMAccountName's
// limit), the shared account in shared mode.
func AccountName(p *protocol.Policy, tech *protocol.TechCert) string {
	if p.LoginMode == protocol.ModeShared {
		return p.SharedAccount
	}
	return accounts.SanitizeName(accounts.DefaultPrefix, tech.Username, accounts.MaxNameWindows)
}

// record appends an audit record in tx.
func (s *Service) record(tx *store.Tx, rec protocol.AuditRecord) error {
	return s.cfg.Audit.Append(tx, rec)
}

// deny audits a refusal (in its own transaction) and returns it.
func (s *Service) deny(ctx context.Context, r *Refusal, rec protocol.AuditRecord) error {
	rec.Event, rec.Reason = audit.LoginDenied, r.Reason
	if err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error { return s.record(tx, rec) }); err != nil {
		return errors.Join(r, fmt.Errorf("dcagent: audit refusal: %w", err))
	}
	s.cfg.Log.Warn("domain request refused", "reason", r.Reason, "workstation", rec.Detail)
	return r
}

// Request handles a workstation's DomainRequest received over a KK
// session whose authenticated peer static key is peer. It returns the
// DomainResult with the password, or a *Refusal. The password is in the
// result only; it is never logged or stored.
func (s *Service) Request(ctx context.Context, peer protocol.NoiseKey, r *protocol.DomainRequest) (protocol.DomainResult, error) {
	now := s.cfg.Now()
	rec := protocol.AuditRecord{Method: protocol.MethodQR, Online: true, Action: protocol.ActionLogon}
	pol, err := s.policy(ctx)
	if err != nil {
		return protocol.DomainResult{}, s.deny(ctx, &Refusal{Code: protocol.CodeUnavailable, Reason: "no policy", Err: err}, rec)
	}
	g, err := protocol.VerifyDomainRequest(r, protocol.DomainCheck{MSPKey: s.cfg.MSPKey, Policy: &pol, Peer: peer, Now: now})
	rec.TechID, rec.Username = g.Tech.TechID, g.Tech.Username
	rec.Detail = "workstation " + g.Workstation.Name
	if err != nil {
		return protocol.DomainResult{}, s.deny(ctx, &Refusal{Code: protocol.CodeRefused, Reason: "domain request: " + err.Error(), Err: err}, rec)
	}
	if g.Target != nil {
		rec.Detail += ", rdp target " + g.Target.Name
	}
	name := AccountName(&pol, &g.Tech)
	rec.Account = name
	maxSession := time.Duration(pol.MaxSession) * time.Second
	expires := now.Add(maxSession)
	s.mu.Lock()
	defer s.mu.Unlock()
	digest := sha256.Sum256(append(append([]byte("jitkey/v1/domain-approval\x00"), g.Approval.Session[:]...), g.Approval.Nonce[:]...))
	var prev store.DomainAccount
	// Single use and the session's intent, durably, before the directory
	// changes: a crash after this is repaired at the next start.
	err = s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.UseApproval(digest[:], now, time.Unix(g.Approval.Time, 0).Add(2*protocol.MaxApprovalSkew)); err != nil {
			return err
		}
		var err error
		prev, err = tx.DomainAccount(name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutDomainAccount(store.DomainAccount{Name: name, TechID: g.Tech.TechID, LastUse: now,
			Session: r.Session, Workstation: peer, Expires: expires})
	})
	if errors.Is(err, store.ErrReplay) {
		return protocol.DomainResult{}, s.deny(ctx, &Refusal{Code: protocol.CodeExpired, Reason: "approval replayed", Err: err}, rec)
	}
	if err != nil {
		return protocol.DomainResult{}, &Refusal{Code: protocol.CodeUnavailable, Reason: "store", Err: err}
	}
	pw, err := s.cfg.Dir.Begin(ctx, name, expires)
	if err != nil {
		// Begin left the account disabled (or could not reach the DC and
		// changed nothing); the record goes back to no live session.
		_ = s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			prev.Session, prev.Workstation, prev.Expires = protocol.SessionID{}, protocol.NoiseKey{}, time.Time{}
			if prev.Name == "" {
				return tx.DeleteDomainAccount(name)
			}
			return tx.PutDomainAccount(prev)
		})
		return protocol.DomainResult{}, s.deny(ctx, &Refusal{Code: protocol.CodeUnavailable, Reason: "directory: " + err.Error(), Err: err}, rec)
	}
	defer pw.Wipe()
	err = s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		if prev.Name == "" {
			c := rec
			c.Event = audit.AccountCreated
			if err := s.record(tx, c); err != nil {
				return err
			}
		}
		e := rec
		e.Event = audit.AccountEnabled
		if err := s.record(tx, e); err != nil {
			return err
		}
		a := rec
		a.Event = audit.LoginApproved
		return s.record(tx, a)
	})
	if err != nil {
		// No audit, no credentials: end the session again.
		endErr := s.cfg.Dir.End(ctx, name)
		return protocol.DomainResult{}, errors.Join(&Refusal{Code: protocol.CodeUnavailable, Reason: "audit", Err: err}, endErr)
	}
	s.cfg.Log.Info("domain session begun", "account", name, "workstation", g.Workstation.Name)
	return protocol.DomainResult{OK: true, Account: name, Password: string(pw.Bytes()), Expires: expires.Unix()}, nil
}

// End handles a DomainEnd from the KK peer peer: only the workstation
// that opened the session may end it. The account is disabled, its
// password re-randomised and its membership removed (domain.Directory.End).
func (s *Service) End(ctx context.Context, peer protocol.NoiseKey, e *protocol.DomainEnd) error {
	var a store.DomainAccount
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.DomainAccount(e.Account)
		return err
	})
	if err != nil || !a.Live() ||
		subtle.ConstantTimeCompare(a.Session[:], e.Session[:]) != 1 ||
		subtle.ConstantTimeCompare(a.Workstation[:], peer[:]) != 1 {
		return &Refusal{Code: protocol.CodeRefused, Reason: "domain end: no such session of this workstation", Err: err}
	}
	return s.endSession(ctx, a, audit.SessionEnded)
}

// endSession ends a live session in the directory, then clears it in
// the record and audits. If the directory fails, the record stays live
// and the next Expire retries. An account no longer in the OU (deleted,
// or moved away) closes the record with a receipt that confirms nothing.
func (s *Service) endSession(ctx context.Context, a store.DomainAccount, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.cfg.Dir.End(ctx, a.Name)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return &Refusal{Code: protocol.CodeUnavailable, Reason: "directory: " + err.Error(), Err: err}
	}
	confirmed := err == nil
	if !confirmed {
		s.cfg.Log.Warn("domain session ended on an account not in the OU; its receipt confirms nothing", "account", a.Name)
	}
	return s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.DomainAccount(a.Name)
		if err != nil {
			return err
		}
		if cur.Session != a.Session {
			return nil // superseded meanwhile: that session stays
		}
		cur.Session, cur.Workstation, cur.Expires = protocol.SessionID{}, protocol.NoiseKey{}, time.Time{}
		if err := tx.PutDomainAccount(cur); err != nil {
			return err
		}
		receipt, err := s.receipt(cur.Name, confirmed, cur.TechID, a.Session, a.Expires, reason)
		if err != nil {
			return err
		}
		return s.record(tx, protocol.AuditRecord{Event: audit.AccountDisabled, TechID: cur.TechID, Account: cur.Name, Reason: reason, Receipt: receipt})
	})
}

// receipt signs the end receipt (SPEC.md 6.6) of a domain session that
// Directory.End ended. It claims what End's read-back confirmed
// (confirmed: End succeeded): disabled with a password nobody knows (one
// Modify), out of the admin group; without it (the account is not in the
// OU), none of these. The logon session itself runs on the workstation,
// whose agent ends it: ProcessesEnded is false here.
func (s *Service) receipt(name string, confirmed bool, techID string, session protocol.SessionID, expires time.Time, reason string) ([]byte, error) {
	rc := protocol.EndReceipt{Session: session, Account: name, TechID: techID, Event: audit.AccountDisabled, Reason: reason,
		Disabled: confirmed, PasswordRotated: confirmed, AdminRemoved: confirmed}
	if !expires.IsZero() {
		rc.Deadline = expires.Unix()
	}
	return s.cfg.Audit.Receipt(rc)
}

// Expire ends every session whose expiry passed. The daemon calls it
// periodically; it returns the failures joined.
func (s *Service) Expire(ctx context.Context) error {
	var live []store.DomainAccount
	if err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		all, err := tx.DomainAccounts()
		for _, a := range all {
			if a.Live() && !s.cfg.Now().Before(a.Expires) {
				live = append(live, a)
			}
		}
		return err
	}); err != nil {
		return fmt.Errorf("dcagent: expire: %w", err)
	}
	var errs []error
	for _, a := range live {
		errs = append(errs, s.endSession(ctx, a, audit.SessionExpired))
	}
	return errors.Join(errs...)
}

// Start repairs after a restart: sessions whose expiry passed are ended,
// then every jitkey account the directory shows enabled or in the admin
// group without a live session in the records is ended (audited with
// agent.recovered).
func (s *Service) Start(ctx context.Context) error {
	if err := s.Expire(ctx); err != nil {
		return err
	}
	live := map[string]bool{}
	if err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		all, err := tx.DomainAccounts()
		for _, a := range all {
			live[a.Name] = a.Live()
		}
		return err
	}); err != nil {
		return fmt.Errorf("dcagent: start: %w", err)
	}
	ended, err := s.cfg.Dir.Repair(ctx, func(n string) bool { return live[n] })
	if len(ended) > 0 {
		if aerr := s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			for _, n := range ended {
				receipt, err := s.receipt(n, true, "", protocol.SessionID{}, time.Time{}, audit.AgentRecovered)
				if err != nil {
					return err
				}
				if err := s.record(tx, protocol.AuditRecord{Event: audit.AccountDisabled, Account: n, Reason: audit.AgentRecovered, Receipt: receipt}); err != nil {
					return err
				}
			}
			return nil
		}); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	if err != nil {
		return fmt.Errorf("dcagent: start: %w", err)
	}
	return nil
}

// Sweep combines the directory's inventory with the records and deletes
// the accounts unused for the policy's InactivityDays (0: never): an
// account listed without a record gets one, used now (its first
// listing); a record whose account is gone (and not live) is dropped.
// Each deletion is audited. It returns the names deleted.
func (s *Service) Sweep(ctx context.Context) ([]string, error) {
	pol, err := s.policy(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := s.cfg.Dir.Inventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("dcagent: sweep: %w", err)
	}
	now := s.cfg.Now()
	inDir := make(map[string]bool, len(inv))
	for _, e := range inv {
		inDir[e.Name] = true
	}
	var stale []store.DomainAccount
	err = s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		recs, err := tx.DomainAccounts()
		if err != nil {
			return err
		}
		have := make(map[string]bool, len(recs))
		for _, a := range recs {
			have[a.Name] = true
			switch {
			case !inDir[a.Name] && !a.Live():
				if err := tx.DeleteDomainAccount(a.Name); err != nil {
					return err
				}
			case pol.InactivityDays > 0 && !a.Live() && !now.Before(a.LastUse.Add(time.Duration(pol.InactivityDays)*24*time.Hour)):
				stale = append(stale, a)
			}
		}
		for _, e := range inv {
			if !have[e.Name] {
				if err := tx.PutDomainAccount(store.DomainAccount{Name: e.Name, LastUse: now}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dcagent: sweep: %w", err)
	}
	var deleted []string
	var errs []error
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range stale {
		if cur, err := s.recordOf(ctx, a.Name); err != nil || cur.Live() || cur.LastUse.After(a.LastUse) {
			continue // used meanwhile, or unreadable: not deleted now
		}
		if err := s.cfg.Dir.Delete(ctx, a.Name); err != nil && !errors.Is(err, domain.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			if err := tx.DeleteDomainAccount(a.Name); err != nil {
				return err
			}
			return s.record(tx, protocol.AuditRecord{Event: audit.AccountDeleted, TechID: a.TechID, Account: a.Name,
				Reason: fmt.Sprintf("unused for %d days", pol.InactivityDays)})
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, a.Name)
	}
	return deleted, errors.Join(errs...)
}

func (s *Service) recordOf(ctx context.Context, name string) (store.DomainAccount, error) {
	var a store.DomainAccount
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		a, err = tx.DomainAccount(name)
		return err
	})
	return a, err
}
