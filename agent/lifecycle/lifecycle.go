// Package lifecycle drives the just-in-time accounts of one computer
// through their lifecycle over an accounts.Backend:
//
//	absent → created (disabled, random password nobody knows)
//	       → active (enabled, fresh password issued once, bound to a session)
//	       → ended (disabled, logged out, not an administrator, password re-randomised)
//	       → deleted (inactivity)
//
// The store is written before the operating system is touched: a session's
// intent (state "activating", its session id and deadline) commits first,
// together with the caller's approval record; only then is the account
// created, given a password and enabled. If that first write fails (disk
// full) the login is refused and nothing is enabled. If the agent dies at
// any later point, Recover at the next start finds the row and disables the
// account. Ending a session (End, the maximum session length, Retire,
// Recover) disables the account first, then ends everything it runs
// (accounts.Backend.EndSessions: a shell opened during the session does
// not survive it), removes it from the administrators group (checked
// with a Lookup) and re-randomises its password, and records it after,
// so a failing store can delay an audit record (it is retried) but never
// keeps an account enabled. A session superseded by the same technician's
// next one (unlock, elevate, sudo begin one from inside it) keeps its
// processes.
//
// Ownership: jitkey touches only accounts it created itself. A name is
// reserved in the store before its account exists, but a reservation
// grants nothing: only when jitkey's own Create succeeds does the row
// become "created" and record the account's operating-system ID
// (accounts.Info.ID: the uid on Linux, the SID on Windows). Every later
// operation (activation, ending, recovery, deletion) first looks the name
// up and proceeds only if the account there has that ID and jitkey's
// full-name marker (accounts.JITFullNamePrefix); any other account under
// the name (created by an administrator after the reservation, or after
// jitkey's own account was deleted, even with a reused uid) is foreign:
// the operation fails with ErrForeign and the account is left as it is.
//
// Passwords come from crypto/rand (Config.Rand), are at least 24
// characters and meet Windows/AD complexity; they exist only in memory and
// go only to the backend and, once, to the caller of Begin.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// PasswordLength is the length of every generated password.
const PasswordLength = 32

// MaxSuffix bounds the collision suffixes tried for a named account.
const MaxSuffix = 99

// Errors callers branch on.
var (
	// ErrStore: the store could not record the intent (disk full, I/O
	// error); nothing was changed on the system.
	ErrStore = errors.New("lifecycle: cannot record the session; login refused")
	// ErrBackend: the operating system refused an account operation; the
	// account was left disabled.
	ErrBackend = errors.New("lifecycle: account operation failed")
	// ErrForeign: the account name belongs to an account jitkey did not
	// create (or not to the one it created); jitkey never takes one over,
	// and leaves it untouched.
	ErrForeign = errors.New("lifecycle: account exists and is not jitkey's")
	// ErrNoSession: no live session with that id.
	ErrNoSession = errors.New("lifecycle: no such session")
	// ErrRemoved: the MSP removed this device (store.Removal, SPEC.md
	// 11.10); no session begins any more.
	ErrRemoved = errors.New("lifecycle: this computer was removed from jitkey by the MSP")
)

// Config configures a Manager.
type Config struct {
	Backend    accounts.Backend
	Store      *store.Store
	Audit      *audit.Recorder
	Rand       io.Reader
	Now        func() time.Time
	MaxNameLen int // the platform's limit, e.g. accounts.MaxNameLinux
	Logger     *slog.Logger
	// Recorded, if set, is called after every committed audit record (to
	// poke the audit shipper).
	Recorded func()
}

// Manager runs account lifecycles. Safe for concurrent use; lifecycle
// operations are serialised.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	live    map[protocol.SessionID]bool
	pending map[protocol.SessionID]string // sessions whose end must be retried -> event
	// successor maps a session superseded by the same technician's next
	// one (kept running: unlock, elevate, sudo from inside it) to that
	// session, so that the End the surface sends for the first (the
	// technician logs out) ends the one that replaced it.
	successor map[protocol.SessionID]protocol.SessionID
	// warnAt holds, for each live session still to be warned, when Tick
	// warns its user of the hard cap (Policy.WarnBefore before the
	// deadline).
	warnAt map[protocol.SessionID]time.Time
	// external holds the domain sessions of selective logins (External).
	external map[protocol.SessionID]*External
}

// New returns a Manager. Call Recover before the first Begin.
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxNameLen == 0 {
		cfg.MaxNameLen = accounts.MaxNameLinux
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log, live: map[protocol.SessionID]bool{}, pending: map[protocol.SessionID]string{},
		successor: map[protocol.SessionID]protocol.SessionID{}, warnAt: map[protocol.SessionID]time.Time{},
		external: map[protocol.SessionID]*External{}}
}

// Request asks for a session.
type Request struct {
	TechID   string
	Username string
	// Cert is the technician certificate the login verified. It is kept
	// with the session so that Reauthorize can decide the access rule
	// again under each new policy; a session without one is ended by the
	// first Reauthorize (fail closed).
	Cert *protocol.TechCert
	// Policy decides the account (named or shared) and the session's
	// maximum length.
	Policy  *protocol.Policy
	Session protocol.SessionID
	Action  uint8
	Method  string // protocol.MethodQR, ...
	Online  bool
	// Record, if set, runs inside the transaction that records the
	// session's intent, before anything is done on the system: the login
	// code consumes the approval (replay) and writes login.approved there.
	// An error refuses the session.
	Record func(tx *store.Tx, account string) error
}

// Grant is a ready session. The password is for the login surface only,
// once; the caller wipes it after handing it over.
type Grant struct {
	Account  string
	Password password.Secret
	Session  protocol.SessionID
	Deadline time.Time
}

func (m *Manager) recorded() {
	if m.cfg.Recorded != nil {
		m.cfg.Recorded()
	}
}

func owner(techID string, p *protocol.Policy) string {
	if p.LoginMode == protocol.ModeShared {
		return "shared:" + p.SharedAccount
	}
	return "tech:" + techID
}

// AccountFor returns the account a technician gets under policy p,
// reserving a new name in the store if needed (named mode: msp-<username>
// sanitised to the platform's limit, with a suffix when the name is taken
// by an account jitkey does not own).
func (m *Manager) AccountFor(ctx context.Context, techID, username string, p *protocol.Policy) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accountFor(ctx, techID, username, p)
}

func (m *Manager) accountFor(ctx context.Context, techID, username string, p *protocol.Policy) (string, error) {
	own := owner(techID, p)
	var name string
	err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
		a, err := tx.AccountByOwner(own)
		if err == nil {
			name = a.Name
			return nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("lifecycle: account: %w", err)
	}
	if name != "" {
		return name, nil
	}
	var candidates []string
	if p.LoginMode == protocol.ModeShared {
		if !accounts.ValidName(p.SharedAccount, m.cfg.MaxNameLen) {
			return "", fmt.Errorf("lifecycle: shared account %q: %w", p.SharedAccount, accounts.ErrInvalidName)
		}
		candidates = []string{p.SharedAccount}
	} else {
		base := accounts.SanitizeName(accounts.DefaultPrefix, username, m.cfg.MaxNameLen)
		candidates = append(candidates, base)
		for n := 2; n <= MaxSuffix; n++ {
			candidates = append(candidates, accounts.WithSuffix(base, n, m.cfg.MaxNameLen))
		}
	}
	for _, c := range candidates {
		taken := false
		err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
			_, err := tx.Account(c)
			if err == nil {
				taken = true
				return nil
			}
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		})
		if err != nil {
			return "", fmt.Errorf("lifecycle: account: %w", err)
		}
		if taken {
			continue
		}
		_, err = m.cfg.Backend.Lookup(ctx, c)
		switch {
		case err == nil:
			m.log.Info("account name taken by an account jitkey does not own", "account", c)
			continue
		case !errors.Is(err, accounts.ErrNotFound):
			return "", fmt.Errorf("%w: lookup %s: %w", ErrBackend, c, err)
		}
		err = m.cfg.Store.Update(ctx, func(tx *store.Tx) error {
			return tx.PutAccount(store.Account{Name: c, Owner: own, State: store.StateReserved, Updated: m.cfg.Now()})
		})
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrStore, err)
		}
		return c, nil
	}
	return "", fmt.Errorf("%w: no free name for %q", ErrForeign, username)
}

// Begin makes an account ready for r's session: intent recorded, account
// created if absent, fresh password set, enabled. On any failure after
// the intent, the account is disabled and re-randomised before Begin
// returns.
func (m *Manager) Begin(ctx context.Context, r Request) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.cfg.Store.View(ctx, checkRemoved); err != nil {
		return Grant{}, err
	}
	name, err := m.accountFor(ctx, r.TechID, r.Username, r.Policy)
	if err != nil {
		return Grant{}, err
	}
	var prev store.Account
	if err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
		prev, err = tx.Account(name)
		return err
	}); err != nil {
		return Grant{}, fmt.Errorf("lifecycle: %w", err)
	}
	var kept protocol.SessionID // superseded, its programs carried over
	var keptDeadline time.Time
	keptUnwarned := false
	if inSession(prev) {
		// A new session on an account in use supersedes the old one. The
		// same technician's programs carry over: unlock, elevate and
		// sudo begin a new session from inside the running one. Another
		// technician's (a shared account) are ended.
		keep := prev.TechID == r.TechID
		if keep {
			kept, keptDeadline = prev.Session, prev.Deadline
			_, keptUnwarned = m.warnAt[prev.Session]
			delete(m.warnAt, prev.Session)
		}
		if err := m.endSession(ctx, prev.Session, audit.SessionEnded, "superseded by a new session", keep); err != nil {
			return Grant{}, err
		}
		if err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
			prev, err = tx.Account(name)
			return err
		}); err != nil {
			return Grant{}, fmt.Errorf("lifecycle: %w", err)
		}
	}
	var cert []byte
	if r.Cert != nil {
		if cert, err = protocol.Marshal(r.Cert); err != nil {
			return Grant{}, fmt.Errorf("lifecycle: technician certificate: %w", err)
		}
	}
	now := m.cfg.Now()
	deadline := now.Add(time.Duration(r.Policy.MaxSession) * time.Second)
	// The hard cap (SPEC.md 11.13): programs carried over from the
	// superseded session end at its deadline at the latest, however often
	// unlock, elevate or sudo begin a new session from inside it.
	inherited := kept != (protocol.SessionID{}) && keptDeadline.Before(deadline)
	if inherited {
		deadline = keptDeadline
	}
	row := store.Account{
		Name: name, Owner: owner(r.TechID, r.Policy), State: store.StateActivating, Session: r.Session,
		TechID: r.TechID, Username: r.Username, Action: r.Action, Started: now, Deadline: deadline, Updated: now,
		SystemID: prev.SystemID, TechCert: cert,
	}
	// Write-ahead: the intent (and the approval) commit before the system
	// is touched.
	err = m.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		// Checked again with the intent: a removal committed after the
		// check above refuses here, one committed after this
		// transaction ends the session (Retire).
		if err := checkRemoved(tx); err != nil {
			return err
		}
		if r.Record != nil {
			if err := r.Record(tx, name); err != nil {
				return err
			}
		}
		return tx.PutAccount(row)
	})
	if err != nil {
		if errors.Is(err, store.ErrReplay) || errors.Is(err, ErrRemoved) {
			return Grant{}, err
		}
		return Grant{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	m.recorded()
	rec := protocol.AuditRecord{TechID: r.TechID, Username: r.Username, Account: name, Method: r.Method, Online: r.Online, Action: r.Action}

	pw, err := m.activate(ctx, name, r.Username, &row, rec)
	if err != nil {
		// The caller may have gone away (ctx cancelled): disabling and
		// recording must still happen.
		m.abort(context.WithoutCancel(ctx), row, rec, err)
		return Grant{}, err
	}
	m.live[r.Session] = true
	if kept != (protocol.SessionID{}) {
		m.successor[kept] = r.Session
	}
	if w := r.Policy.WarnBefore; w > 0 && (!inherited || keptUnwarned) {
		// A session that inherits its deadline from one already warned
		// is not warned again.
		m.warnAt[r.Session] = deadline.Add(-time.Duration(w) * time.Second)
	}
	if r.Policy.EndUserNotice {
		m.announce(ctx, rec, deadline)
	}
	return Grant{Account: name, Password: pw, Session: r.Session, Deadline: deadline}, nil
}

// Provision makes sure the account the technician techID gets under p
// exists, created by jitkey as Create makes it (disabled, a password
// nobody knows, not an administrator), so that a login surface that looks
// the account up before it authenticates (sshd refuses an unknown user
// before PAM runs) can offer it. It returns the account's name and does
// nothing more when jitkey's account is there already or in a session; an
// account under the name that is not jitkey's is left alone (ErrForeign).
// account.created is recorded with the detail "provisioned".
func (m *Manager) Provision(ctx context.Context, techID, username string, p *protocol.Policy) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.cfg.Store.View(ctx, checkRemoved); err != nil {
		return "", err
	}
	name, err := m.accountFor(ctx, techID, username, p)
	if err != nil {
		return "", err
	}
	var row store.Account
	if err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
		row, err = tx.Account(name)
		return err
	}); err != nil {
		return name, fmt.Errorf("lifecycle: %w", err)
	}
	if inSession(row) {
		return name, nil
	}
	if row.SystemID != "" {
		_, err := m.lookupOwned(ctx, row)
		if !errors.Is(err, accounts.ErrNotFound) {
			return name, err // there (nil), foreign, or the lookup failed
		}
		row.SystemID = "" // jitkey's account is gone: make it again
	}
	rec := protocol.AuditRecord{TechID: techID, Username: username, Account: name,
		Detail: "provisioned: created disabled before the first login"}
	if _, err := m.create(ctx, username, &row, rec); err != nil {
		return name, err
	}
	m.recorded()
	return name, nil
}

func (m *Manager) newPassword(name, username string) (password.Secret, error) {
	pw, err := password.GenerateForAccount(m.cfg.Rand, PasswordLength, name, username)
	if err != nil {
		return pw, fmt.Errorf("lifecycle: password: %w", err)
	}
	return pw, nil
}

// fullName is the full name jitkey gives an account: the marker
// accounts.JITFullNamePrefix and the technician's username, without the
// characters a GECOS field cannot hold.
func fullName(username string) string {
	return accounts.JITFullNamePrefix + strings.Map(func(r rune) rune {
		if r < 0x20 || r == ':' || r == ',' || r == 0x7f {
			return '-'
		}
		return r
	}, username)
}

// inSession reports whether a is bound to a session being started or
// running: its account may be enabled.
func inSession(a store.Account) bool {
	if a.Session == (protocol.SessionID{}) {
		return false
	}
	switch a.State {
	case store.StateActivating, store.StateCreated, store.StateActive:
		return true
	}
	return false
}

// owns reports whether info describes the very account jitkey created
// under a.Name: a is at least created, and the system shows the recorded
// ID and jitkey's full-name marker (the marker tells a re-created account
// that got a deleted one's uid back).
func owns(a store.Account, info accounts.Info) bool {
	switch a.State {
	case store.StateReserved, store.StateDeleted:
		return false
	}
	return a.SystemID != "" && info.ID == a.SystemID && info.IsJIT()
}

// lookupOwned looks a.Name up and returns its Info if the account is the
// one jitkey created; otherwise an error wrapping accounts.ErrNotFound (no
// account has the name), ErrForeign (another account has it) or
// ErrBackend.
func (m *Manager) lookupOwned(ctx context.Context, a store.Account) (accounts.Info, error) {
	info, err := m.cfg.Backend.Lookup(ctx, a.Name)
	if errors.Is(err, accounts.ErrNotFound) {
		return info, fmt.Errorf("lifecycle: %s: %w", a.Name, err)
	}
	if err != nil {
		return info, fmt.Errorf("%w: lookup %s: %w", ErrBackend, a.Name, err)
	}
	if !owns(a, info) {
		m.log.Warn("account is not the one jitkey created; left alone", "account", a.Name, "state", a.State, "recorded_id", a.SystemID, "id", info.ID)
		return info, fmt.Errorf("%w: %s", ErrForeign, a.Name)
	}
	return info, nil
}

// activate creates (if absent), sets the password and enables. The
// returned password is the only copy. An account under the name that
// jitkey did not create is refused with ErrForeign before anything is
// changed. row.SystemID is kept up to date: set when the account is
// created, cleared when the account under the name is not jitkey's.
func (m *Manager) activate(ctx context.Context, name, username string, row *store.Account, rec protocol.AuditRecord) (password.Secret, error) {
	b := m.cfg.Backend
	info, err := m.lookupOwned(ctx, *row)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		row.SystemID = "" // jitkey's account, if it had one, is gone
		if info, err = m.create(ctx, username, row, rec); err != nil {
			return password.Secret{}, err
		}
	case errors.Is(err, ErrForeign):
		row.SystemID = ""
		return password.Secret{}, err
	case err != nil:
		return password.Secret{}, err
	}
	if !info.Admin {
		if err := b.SetAdmin(ctx, name, true); err != nil {
			return password.Secret{}, fmt.Errorf("%w: admin group %s: %w", ErrBackend, name, err)
		}
	}
	pw, err := m.newPassword(name, username)
	if err != nil {
		return pw, err
	}
	if err := b.SetPassword(ctx, name, pw); err != nil {
		pw.Wipe()
		return password.Secret{}, fmt.Errorf("%w: set password %s: %w", ErrBackend, name, err)
	}
	if err := b.Enable(ctx, name); err != nil {
		pw.Wipe()
		return password.Secret{}, fmt.Errorf("%w: enable %s: %w", ErrBackend, name, err)
	}
	enabled := rec
	enabled.Event = audit.AccountEnabled
	enabled.Detail = "until " + row.Deadline.UTC().Format(time.RFC3339)
	row.State, row.Updated = store.StateActive, m.cfg.Now()
	err = m.update(ctx, func(tx *store.Tx) error {
		if err := tx.PutAccount(*row); err != nil {
			return err
		}
		return m.cfg.Audit.Append(tx, enabled)
	})
	if err != nil {
		pw.Wipe()
		return password.Secret{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return pw, nil
}

// create creates row.Name with a random password nobody knows and
// records it as jitkey's: state created, the account's ID, and
// account.created, in one transaction. If the name was taken meanwhile
// (Create returns accounts.ErrExists), the account is someone else's:
// ErrForeign, nothing touched. If the ID cannot be recorded, the account
// just created is deleted again.
func (m *Manager) create(ctx context.Context, username string, row *store.Account, rec protocol.AuditRecord) (accounts.Info, error) {
	b, name := m.cfg.Backend, row.Name
	initial, err := m.newPassword(name, username)
	if err != nil {
		return accounts.Info{}, err
	}
	err = b.Create(ctx, name, fullName(username), initial)
	initial.Wipe()
	if errors.Is(err, accounts.ErrExists) {
		return accounts.Info{}, fmt.Errorf("%w: %s was created by someone else meanwhile", ErrForeign, name)
	}
	if err != nil {
		return accounts.Info{}, fmt.Errorf("%w: create %s: %w", ErrBackend, name, err)
	}
	info, err := b.Lookup(ctx, name)
	if err != nil {
		return info, m.undoCreate(ctx, name, fmt.Errorf("%w: lookup %s after create: %w", ErrBackend, name, err))
	}
	if !info.IsJIT() || info.ID == "" {
		// Not what jitkey just made (replaced in between, or a backend
		// that cannot identify accounts): never claim it.
		return info, fmt.Errorf("%w: %s has no id or not jitkey's full name after create", ErrForeign, name)
	}
	created := *row
	created.State, created.SystemID, created.Updated = store.StateCreated, info.ID, m.cfg.Now()
	ev := rec
	ev.Event = audit.AccountCreated
	err = m.update(ctx, func(tx *store.Tx) error {
		if err := tx.PutAccount(created); err != nil {
			return err
		}
		return m.cfg.Audit.Append(tx, ev)
	})
	if err != nil {
		return info, m.undoCreate(ctx, name, fmt.Errorf("%w: %w", ErrStore, err))
	}
	*row = created
	return info, nil
}

// undoCreate deletes an account jitkey has just created but cannot record
// as its own, so that no account is left that jitkey would later take for
// someone else's.
func (m *Manager) undoCreate(ctx context.Context, name string, cause error) error {
	if err := m.cfg.Backend.Delete(context.WithoutCancel(ctx), name); err != nil && !errors.Is(err, accounts.ErrNotFound) {
		m.log.Error("cannot remove an account just created; it stays disabled with a random password", "account", name, "err", err)
		return errors.Join(cause, fmt.Errorf("%w: remove %s: %w", ErrBackend, name, err))
	}
	return cause
}

// accounts returns every row of the store's account table.
func (m *Manager) accounts(ctx context.Context) ([]store.Account, error) {
	var rows []store.Account
	err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		rows, err = tx.Accounts()
		return err
	})
	return rows, err
}

func (m *Manager) update(ctx context.Context, fn func(*store.Tx) error) error {
	if err := m.cfg.Store.Update(ctx, fn); err != nil {
		return err
	}
	m.recorded()
	return nil
}

// abort undoes a failed activation: disable and re-randomise jitkey's
// account (if it created one), then record it. An account under the name
// that jitkey did not create (Create lost a race, or activate found a
// foreign one) is never touched. A failure to record leaves the row in
// "activating", which the retry loop and Recover finish.
func (m *Manager) abort(ctx context.Context, row store.Account, rec protocol.AuditRecord, cause error) {
	m.log.Warn("login failed; account left disabled", "account", row.Name, "err", cause)
	err := errNoAccount
	var did ended
	if row.SystemID != "" {
		did, err = m.disableOwned(ctx, row, false)
	}
	switch {
	case errors.Is(err, errNoAccount), errors.Is(err, accounts.ErrNotFound), errors.Is(err, ErrForeign):
		// Nothing of jitkey's to disable: the name stays reserved.
		if err := m.update(ctx, func(tx *store.Tx) error { return m.forget(tx, row, nil) }); err != nil {
			m.log.Error("cannot record failed login; will retry", "account", row.Name, "err", err)
			m.pending[row.Session] = audit.AccountDisabled
		}
		return
	case err != nil:
		m.log.Error("cannot disable account after a failed login; will retry", "account", row.Name, "err", err)
		m.pending[row.Session] = audit.AccountDisabled
		return
	}
	if err := m.recordEnded(ctx, row, rec, "", "login failed: "+cause.Error(), did); err != nil {
		m.log.Error("cannot record disabled account; will retry", "account", row.Name, "err", err)
		m.pending[row.Session] = audit.AccountDisabled
	}
}

// errNoAccount: jitkey has created no account under the name.
var errNoAccount = errors.New("lifecycle: no account created")

// forget records, inside tx, that jitkey has no account under row.Name
// (none was created, it is gone, or the one there is foreign): the row
// returns to reserved, without session or ID, unless a newer session has
// taken it over meanwhile. If r is non-nil, it is appended as the audit
// record of the change.
func (m *Manager) forget(tx *store.Tx, row store.Account, r *protocol.AuditRecord) error {
	cur, err := tx.Account(row.Name)
	if err != nil {
		return err
	}
	if cur.Session != row.Session {
		return nil
	}
	cur.State, cur.Session, cur.SystemID, cur.TechCert, cur.Updated = store.StateReserved, protocol.SessionID{}, "", nil, m.cfg.Now()
	if err := tx.PutAccount(cur); err != nil {
		return err
	}
	if r != nil {
		return m.cfg.Audit.Append(tx, *r)
	}
	return nil
}

// disableOwned disables, logs out (unless keep), removes from the
// administrators group and re-randomises a.Name if it is the account
// jitkey created (see lookupOwned); otherwise it touches nothing and
// returns lookupOwned's error.
func (m *Manager) disableOwned(ctx context.Context, a store.Account, keep bool) (ended, error) {
	if _, err := m.lookupOwned(ctx, a); err != nil {
		return ended{}, err
	}
	return disableAccount(ctx, m.cfg.Backend, m.cfg.Rand, a.Name, a.Username, keep)
}

// ended is what disableAccount did and verified, as the end receipt states it
// (SPEC.md 6.6).
type ended struct {
	// processesEnded: EndSessions succeeded (false when keep).
	processesEnded bool
	// adminRemoved: the account was removed from the administrators
	// group and a Lookup after the removal no longer shows it there.
	adminRemoved bool
}

// disableAccount ends an account's session on the system, over backend
// b with passwords from rand, in this order (SPEC.md 11.13): it blocks
// the account, ends everything it runs (unless keep: a session
// superseded by the same technician's next one), removes it from the
// administrators group and gives it a password nobody knows. Logins are
// blocked first, so none can start while its processes are killed; the
// membership goes once nothing of the session runs (a running process
// keeps the groups it started with in any case); the password last.
// Every step runs even if an earlier one after Disable failed; the error
// makes the end pending, and the retry (or Recover after a restart) runs
// all of them again: each is idempotent. The Manager and Lockdown use it.
func disableAccount(ctx context.Context, b accounts.Backend, rand io.Reader, name, username string, keep bool) (ended, error) {
	var did ended
	if err := b.Disable(ctx, name); err != nil {
		return did, fmt.Errorf("%w: disable %s: %w", ErrBackend, name, err)
	}
	var errs []error
	if !keep {
		if err := b.EndSessions(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("%w: end sessions of %s: %w", ErrBackend, name, err))
		} else {
			did.processesEnded = true
		}
	}
	if err := removeAdmin(ctx, b, name); err != nil {
		errs = append(errs, err)
	} else {
		did.adminRemoved = true
	}
	pw, err := password.GenerateForAccount(rand, PasswordLength, name, username)
	if err != nil {
		return did, errors.Join(append(errs, fmt.Errorf("lifecycle: password: %w", err))...)
	}
	defer pw.Wipe()
	if err := b.SetPassword(ctx, name, pw); err != nil {
		errs = append(errs, fmt.Errorf("%w: re-randomise %s: %w", ErrBackend, name, err))
	}
	return did, errors.Join(errs...)
}

// removeAdmin takes name out of the administrators group and checks,
// with a Lookup after the call, that the system no longer shows it
// there: the end receipt states AdminRemoved only on that evidence.
func removeAdmin(ctx context.Context, b accounts.Backend, name string) error {
	if err := b.SetAdmin(ctx, name, false); err != nil {
		return fmt.Errorf("%w: remove %s from the administrators group: %w", ErrBackend, name, err)
	}
	info, err := b.Lookup(ctx, name)
	if err != nil {
		return fmt.Errorf("%w: lookup %s after removing it from the administrators group: %w", ErrBackend, name, err)
	}
	if info.Admin {
		return fmt.Errorf("%w: %s is still in the administrators group after its removal", ErrBackend, name)
	}
	return nil
}

// receipt signs the end receipt of row's session (SPEC.md 6.6): the
// account was disabled and its password re-randomised (the callers run
// it only after disableAccount succeeded); its processes ended and its
// administrators membership removed as did says.
func (m *Manager) receipt(row store.Account, event, reason string, did ended) ([]byte, error) {
	if event == "" {
		event = audit.AccountDisabled
	}
	return m.cfg.Audit.Receipt(protocol.EndReceipt{
		Session: row.Session, Account: row.Name, TechID: row.TechID, Username: row.Username,
		Started: row.Started.Unix(), Deadline: row.Deadline.Unix(), Ended: m.cfg.Now().Unix(), Event: event, Reason: reason,
		Disabled: true, PasswordRotated: true, ProcessesEnded: did.processesEnded, AdminRemoved: did.adminRemoved,
	})
}

// recordEnded marks row ended and appends account.disabled, carrying the
// session's signed end receipt (and the session event, if any), in one
// transaction.
func (m *Manager) recordEnded(ctx context.Context, row store.Account, rec protocol.AuditRecord, event, reason string, did ended) error {
	receipt, err := m.receipt(row, event, reason, did)
	if err != nil {
		return err
	}
	return m.update(ctx, func(tx *store.Tx) error {
		cur, err := tx.Account(row.Name)
		if err != nil {
			return err
		}
		if cur.Session != row.Session {
			// A newer session took the account over meanwhile; its row
			// stays as it is.
			return nil
		}
		cur.State, cur.Session, cur.TechCert, cur.Updated = store.StateEnded, protocol.SessionID{}, nil, m.cfg.Now()
		if err := tx.PutAccount(cur); err != nil {
			return err
		}
		if event != "" && event != audit.AccountDisabled {
			e := rec
			e.Event = event
			if err := m.cfg.Audit.Append(tx, e); err != nil {
				return err
			}
		}
		d := rec
		d.Event, d.Reason, d.Receipt = audit.AccountDisabled, reason, receipt
		return m.cfg.Audit.Append(tx, d)
	})
}

// End ends a live session: the account is disabled, everything it runs
// is ended and its password re-randomised, then account.disabled and
// event (audit.SessionEnded or audit.SessionExpired) are recorded.
//
// The End of a session that the same technician's next one superseded
// (they unlocked, elevated or ran sudo from inside it) ends the session
// that replaced it: the technician logging out of their login session
// ends their access, whatever began inside it.
func (m *Manager) End(ctx context.Context, session protocol.SessionID, event string) error {
	m.mu.Lock()
	if e := m.external[session]; e != nil {
		m.mu.Unlock()
		return m.endExternal(ctx, e, event, "")
	}
	defer m.mu.Unlock()
	for range len(m.successor) + 1 {
		next, ok := m.successor[session]
		if !ok {
			break
		}
		delete(m.successor, session)
		session = next
	}
	return m.end(ctx, session, event, "")
}

func (m *Manager) end(ctx context.Context, session protocol.SessionID, event, reason string) error {
	return m.endSession(ctx, session, event, reason, false)
}

// endSession is end; keep leaves the account's processes running (see
// disableAccount).
func (m *Manager) endSession(ctx context.Context, session protocol.SessionID, event, reason string, keep bool) error {
	var row store.Account
	err := m.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		row, err = tx.AccountBySession(session)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoSession
	}
	if err != nil {
		// The store cannot be read: the session is in m.live only if
		// this process began it; retry later.
		m.pending[session] = event
		return fmt.Errorf("lifecycle: end: %w", err)
	}
	if !inSession(row) {
		return ErrNoSession
	}
	rec := protocol.AuditRecord{TechID: row.TechID, Username: row.Username, Account: row.Name, Action: row.Action}
	did, err := m.disableOwned(ctx, row, keep)
	if errors.Is(err, accounts.ErrNotFound) || errors.Is(err, ErrForeign) {
		// jitkey's account is gone (or was never created); an account
		// under its name now is not jitkey's and stays as it is.
		delete(m.live, session)
		r := rec
		r.Event, r.Reason = event, reason
		switch {
		case errors.Is(err, ErrForeign):
			r.Detail = "account under the name is not the one jitkey created; left alone"
		case row.SystemID == "":
			r.Detail = "session ended before the account was created"
		default:
			r.Detail = "the account jitkey created is gone; nothing to disable"
		}
		var ev *protocol.AuditRecord
		if event != "" && event != audit.AccountDisabled {
			ev = &r
		}
		if err := m.update(ctx, func(tx *store.Tx) error { return m.forget(tx, row, ev) }); err != nil {
			m.pending[session] = event
			return fmt.Errorf("lifecycle: record end: %w", err)
		}
		delete(m.pending, session)
		return nil
	}
	if err != nil {
		m.pending[session] = event
		return err
	}
	delete(m.live, session)
	if err := m.recordEnded(ctx, row, rec, event, reason, did); err != nil {
		// Disabled on the system; the record is retried.
		m.pending[session] = event
		return fmt.Errorf("lifecycle: record end: %w", err)
	}
	delete(m.pending, session)
	return nil
}

// Active reports whether a session is live.
func (m *Manager) Active(session protocol.SessionID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[session]
}

// Tick ends every session past its deadline (session.expired) and
// retries ends that failed before. Run calls it every second.
func (m *Manager) Tick(ctx context.Context) error {
	errs := m.tickExternal(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	for from, to := range m.successor {
		if !m.live[to] {
			delete(m.successor, from)
		}
	}
	for s, ev := range m.pending {
		if err := m.end(ctx, s, ev, ""); err != nil && !errors.Is(err, ErrNoSession) {
			errs = append(errs, err)
		} else {
			delete(m.pending, s)
		}
	}
	rows, err := m.accounts(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	now := m.cfg.Now()
	for _, a := range rows {
		if a.State != store.StateActive {
			continue
		}
		if !a.Deadline.After(now) {
			delete(m.warnAt, a.Session)
			if err := m.end(ctx, a.Session, audit.SessionExpired, "maximum session length reached"); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if at, ok := m.warnAt[a.Session]; ok && !now.Before(at) {
			delete(m.warnAt, a.Session)
			if err := m.warn(ctx, a, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for s := range m.warnAt {
		if !m.live[s] {
			delete(m.warnAt, s)
		}
	}
	return errors.Join(errs...)
}

// NoticeText is the end-user notice of a technician session's start
// (SPEC.md 11.13); %s are the technician, the account and the deadline.
const NoticeText = "jitkey: technician %s of your IT provider started a session as %s on this computer; it ends by %s at the latest."

// announce tells the computer's users, through the backend (if it can:
// accounts.Announcer), that a technician session started, and records
// session.announced. A notice that cannot be shown is recorded with the
// reason; the session goes on.
func (m *Manager) announce(ctx context.Context, rec protocol.AuditRecord, deadline time.Time) {
	a, ok := m.cfg.Backend.(accounts.Announcer)
	if !ok {
		return
	}
	r := rec
	r.Event, r.Method, r.Online = audit.SessionAnnounced, "", false
	if err := a.Announce(ctx, fmt.Sprintf(NoticeText, rec.Username, rec.Account, deadline.UTC().Format("15:04:05 MST"))); err != nil {
		m.log.Warn("end-user notice not shown", "account", rec.Account, "err", err)
		r.Reason = "notice not shown: " + err.Error()
	}
	if err := m.update(ctx, func(tx *store.Tx) error { return m.cfg.Audit.Append(tx, r) }); err != nil {
		m.log.Warn("cannot record the end-user notice", "account", rec.Account, "err", err)
	}
}

// WarningText is the notice a session's user gets WarnBefore ahead of the
// hard cap (SPEC.md 11.13); %s are the account and the deadline (UTC).
const WarningText = "jitkey: the technician session of %s ends at %s: it will be logged off, every program it runs ended, " +
	"and the account disabled. Save your work now."

// warn tells the user of a's session, through the backend (if it can:
// accounts.Notifier), that the hard cap is near, and records
// session.warned. A warning that cannot be shown is recorded with the
// reason and not retried; the cap ends the session all the same.
func (m *Manager) warn(ctx context.Context, a store.Account, now time.Time) error {
	n, ok := m.cfg.Backend.(accounts.Notifier)
	if !ok {
		return nil
	}
	if _, err := m.lookupOwned(ctx, a); err != nil {
		return nil // not jitkey's account (any more): nothing to tell; the end sorts it out
	}
	rec := protocol.AuditRecord{Event: audit.SessionWarned, TechID: a.TechID, Username: a.Username, Account: a.Name, Action: a.Action,
		Detail: fmt.Sprintf("logged off at %s, in %s", a.Deadline.UTC().Format(time.RFC3339), a.Deadline.Sub(now).Round(time.Second))}
	if err := n.Notify(ctx, a.Name, fmt.Sprintf(WarningText, a.Name, a.Deadline.UTC().Format("15:04:05 MST"))); err != nil {
		m.log.Warn("session warning not shown", "account", a.Name, "err", err)
		rec.Reason = "warning not shown: " + err.Error()
	}
	return m.update(ctx, func(tx *store.Tx) error { return m.cfg.Audit.Append(tx, rec) })
}

// Run calls Tick every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Tick(ctx); err != nil {
				m.log.Warn("lifecycle tick", "err", err)
			}
		}
	}
}

// Reauthorize decides the access rule again for every session, under
// policy p (just applied) for this device d, and ends each session whose
// technician p no longer admits: certificate revoked (or removed with
// the technician), delegation gone, share-list entry withdrawn, device
// removed (SPEC.md 4, R-47). An ended session's account is disabled,
// re-randomised and its processes ended at once; session.ended carries
// the reason. A session without a recorded certificate cannot be
// decided again and is ended too. An end that fails is retried by Tick.
// It returns the number of sessions ended.
func (m *Manager) Reauthorize(ctx context.Context, p *protocol.Policy, d *protocol.DeviceCert) (int, error) {
	ended, errs := m.reauthorizeExternal(ctx, p, d)
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.accounts(ctx)
	if err != nil {
		return ended, fmt.Errorf("lifecycle: reauthorize: %w", errors.Join(append(errs, err)...))
	}
	for _, a := range rows {
		if !inSession(a) {
			continue
		}
		reason := withdrawn(a, p, d)
		if reason == "" {
			continue
		}
		m.log.Warn("access withdrawn: ending the session", "account", a.Name, "technician", a.Username, "reason", reason)
		err := m.end(ctx, a.Session, audit.SessionEnded, reason)
		if err != nil && !errors.Is(err, ErrNoSession) {
			errs = append(errs, err)
			continue
		}
		ended++
	}
	if err := errors.Join(errs...); err != nil {
		return ended, fmt.Errorf("lifecycle: reauthorize: %w", err)
	}
	return ended, nil
}

// withdrawn returns why policy p no longer admits the session on row a,
// or "" if it still does.
func withdrawn(a store.Account, p *protocol.Policy, d *protocol.DeviceCert) string {
	if a.TechID == protocol.BreakGlassUsername {
		// A break-glass session (SPEC.md 11.15) has no technician
		// certificate to decide again: only the device's removal
		// withdraws it; otherwise it ends at logout or its hard cap.
		if p.IsDeviceRevoked(d.Serial) {
			return "access withdrawn: device removed by the MSP"
		}
		return ""
	}
	var c protocol.TechCert
	if a.TechCert == nil {
		return "access withdrawn: the session's technician certificate is unknown"
	}
	if err := protocol.Unmarshal(a.TechCert, &c); err != nil {
		return "access withdrawn: the session's technician certificate is unreadable"
	}
	if err := p.Authorize(&c, d); err != nil {
		return "access withdrawn: " + strings.TrimPrefix(err.Error(), "protocol: ")
	}
	return ""
}

// checkRemoved returns ErrRemoved if the store records a removal.
func checkRemoved(tx *store.Tx) error {
	_, err := tx.Removal()
	switch {
	case err == nil:
		return ErrRemoved
	case errors.Is(err, store.ErrNotFound):
		return nil
	}
	return fmt.Errorf("lifecycle: %w", err)
}

// Retire locks the device down after the MSP removed it (SPEC.md 11.10;
// the store records the removal, so Begin already refuses): it ends every
// session with reason (session.ended, account.disabled), then makes
// Recover's pass, which disables and re-randomises any account jitkey
// created that is still enabled. Every account jitkey manages is then
// disabled with a password nobody knows. An end that fails is retried by
// Tick, as always. Retire may run again (the daemon runs it at every start
// of a removed agent) and then has nothing to do.
func (m *Manager) Retire(ctx context.Context, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.accounts(ctx)
	if err != nil {
		return fmt.Errorf("lifecycle: retire: %w", err)
	}
	var errs []error
	for _, a := range rows {
		if !inSession(a) {
			continue
		}
		if err := m.end(ctx, a.Session, audit.SessionEnded, reason); err != nil && !errors.Is(err, ErrNoSession) {
			errs = append(errs, err)
		}
	}
	if err := m.recover(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lifecycle: retire: %w", err)
	}
	return nil
}

// Recover returns every account to a safe state after a start: an account
// the store shows in a session has no live session (this process has
// begun none), and an account jitkey created that the system shows
// enabled, or in the administrators group, without a session is an
// error; each is disabled, logged out, removed from the group,
// re-randomised and recorded with agent.recovered. An end interrupted
// half-way (the agent died between its steps) is thus finished at the
// next start. An account under a recorded name that
// is not the one jitkey created is left alone: the row forgets it (once,
// with agent.recovered saying so). Call before serving logins.
func (m *Manager) Recover(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recover(ctx)
}

func (m *Manager) recover(ctx context.Context) error {
	rows, err := m.accounts(ctx)
	if err != nil {
		return fmt.Errorf("lifecycle: recover: %w", err)
	}
	var errs []error
	for _, a := range rows {
		if m.live[a.Session] && a.Session != (protocol.SessionID{}) {
			continue
		}
		if a.State == store.StateDeleted {
			continue
		}
		rec := protocol.AuditRecord{TechID: a.TechID, Username: a.Username, Account: a.Name, Action: a.Action}
		interrupted := inSession(a)
		info, err := m.lookupOwned(ctx, a)
		var detail string
		switch {
		case errors.Is(err, accounts.ErrNotFound):
			if !interrupted {
				continue
			}
			detail = "session interrupted before the account was created"
			if a.SystemID != "" {
				detail = "session interrupted; the account jitkey created is gone"
			}
		case errors.Is(err, ErrForeign):
			if !interrupted && a.SystemID == "" {
				continue // a reservation; the name is someone else's now
			}
			detail = "account under the name is not the one jitkey created; left alone"
		case err != nil:
			errs = append(errs, err)
			continue
		}
		if detail != "" {
			r := rec
			r.Event, r.Detail = audit.AgentRecovered, detail
			if err := m.update(ctx, func(tx *store.Tx) error { return m.forget(tx, a, &r) }); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !interrupted && !info.Enabled && !info.Admin {
			continue
		}
		did, err := disableAccount(ctx, m.cfg.Backend, m.cfg.Rand, a.Name, a.Username, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		detail = fmt.Sprintf("account was %s without a live session", a.State)
		switch {
		case interrupted:
		case info.Enabled:
			detail = "account found enabled on the system without a session"
		default:
			// An end that stopped before the membership went (an agent
			// of an earlier version kept it), finished now.
			detail = "account found in the administrators group without a session"
		}
		receipt, err := m.receipt(a, audit.AgentRecovered, "recovery", did)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = m.update(ctx, func(tx *store.Tx) error {
			a.State, a.Session, a.TechCert, a.Updated = store.StateEnded, protocol.SessionID{}, nil, m.cfg.Now()
			if err := tx.PutAccount(a); err != nil {
				return err
			}
			r := rec
			r.Event, r.Detail = audit.AgentRecovered, detail
			if err := m.cfg.Audit.Append(tx, r); err != nil {
				return err
			}
			d := rec
			d.Event, d.Reason, d.Receipt = audit.AccountDisabled, "recovery", receipt
			return m.cfg.Audit.Append(tx, d)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lifecycle: recover: %w", errors.Join(errs...))
	}
	return nil
}

// DeleteInactive deletes accounts whose last session ended more than
// days ago (the policy's inactivity period), recording account.deleted.
// Only the account jitkey created is deleted; a foreign one under the
// name is left alone and forgotten. It goes on past a failed account and
// returns every error.
func (m *Manager) DeleteInactive(ctx context.Context, days int) error {
	if days <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.accounts(ctx)
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	cutoff := m.cfg.Now().Add(-time.Duration(days) * 24 * time.Hour)
	var errs []error
	for _, a := range rows {
		if (a.State != store.StateEnded && a.State != store.StateCreated) || a.Session != (protocol.SessionID{}) || a.Updated.After(cutoff) {
			continue
		}
		_, err := m.lookupOwned(ctx, a)
		switch {
		case errors.Is(err, ErrForeign):
			// jitkey's account is gone and someone else's has the name:
			// never delete it; forget it.
			if err := m.update(ctx, func(tx *store.Tx) error { return m.forget(tx, a, nil) }); err != nil {
				errs = append(errs, fmt.Errorf("lifecycle: %w", err))
			}
			continue
		case errors.Is(err, accounts.ErrNotFound):
		case err != nil:
			errs = append(errs, err)
			continue
		default:
			if err := m.cfg.Backend.Delete(ctx, a.Name); err != nil && !errors.Is(err, accounts.ErrNotFound) {
				errs = append(errs, fmt.Errorf("%w: delete %s: %w", ErrBackend, a.Name, err))
				continue
			}
		}
		err = m.update(ctx, func(tx *store.Tx) error {
			a.State, a.SystemID, a.Updated = store.StateDeleted, "", m.cfg.Now()
			if err := tx.PutAccount(a); err != nil {
				return err
			}
			return m.cfg.Audit.Append(tx, protocol.AuditRecord{Event: audit.AccountDeleted, Account: a.Name, TechID: a.TechID, Username: a.Username, Reason: fmt.Sprintf("unused for %d days", days)})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("lifecycle: %w", err))
		}
	}
	return errors.Join(errs...)
}
