// Package accountstest provides an in-memory accounts.Backend with fault
// injection, for tests of the agent core, and Conformance, the behavioural
// test suite that every accounts.Backend (real or fake) must pass.
package accountstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
)

// Op names a Backend method, for fault injection and call counts.
type Op string

// The operations of accounts.Backend.
const (
	OpCreate      Op = "Create"
	OpSetPassword Op = "SetPassword"
	OpEnable      Op = "Enable"
	OpDisable     Op = "Disable"
	OpEndSessions Op = "EndSessions"
	OpDelete      Op = "Delete"
	OpSetAdmin    Op = "SetAdmin"
	OpLookup      Op = "Lookup"
	OpNotify      Op = "Notify"
)

// FirstID is the ID of the first account a fake Backend creates (as the
// first uid useradd gives on Debian).
const FirstID = 1000

// ErrInjected is the default error of an injected failure.
var ErrInjected = errors.New("accountstest: injected failure")

// ErrLoginRefused is returned by Backend.Login when the platform would
// refuse the login (wrong password, or account disabled).
var ErrLoginRefused = errors.New("accountstest: login refused")

// Config configures a fake Backend.
type Config struct {
	// Now is the clock used for Info.LastUse; nil means time.Now.
	Now func() time.Time
	// MaxNameLen is the platform's name length limit; 0 means
	// accounts.MaxNameLinux.
	MaxNameLen int
}

// Backend is an in-memory accounts.Backend with the same semantics as the
// real ones (it passes Conformance). Safe for concurrent use.
type Backend struct {
	now    func() time.Time
	maxLen int

	mu       sync.Mutex
	accounts map[string]*account
	calls    map[Op]int
	faults   map[Op]map[int]error
	log      []Call
	// announced are the messages Announce showed.
	announced []string
}

// Call is one call of a Backend method, as History reports it.
type Call struct {
	Op   Op
	Name string
}

type account struct {
	id       int
	fullName string
	pw       password.Secret
	enabled  bool
	admin    bool
	lastUse  time.Time
	// sessions counts the logins (Login) still running: EndSessions
	// ends them, Disable does not.
	sessions int
	// notices are the messages Notify showed to the account's sessions.
	notices []string
}

var (
	_ accounts.Backend   = (*Backend)(nil)
	_ accounts.Notifier  = (*Backend)(nil)
	_ accounts.Announcer = (*Backend)(nil)
)

// New returns an empty fake Backend.
func New(cfg Config) *Backend {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxNameLen == 0 {
		cfg.MaxNameLen = accounts.MaxNameLinux
	}
	return &Backend{
		now:      cfg.Now,
		maxLen:   cfg.MaxNameLen,
		accounts: map[string]*account{},
		calls:    map[Op]int{},
		faults:   map[Op]map[int]error{},
	}
}

// FailNth makes the nth call (1-based, counting every call of op since New,
// including calls already made) of op fail with err (ErrInjected if err is
// nil) without any effect. Several calls of one op may be set to fail.
func (b *Backend) FailNth(op Op, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.faults[op] == nil {
		b.faults[op] = map[int]error{}
	}
	b.faults[op][n] = err
}

// Calls returns how many times op has been called (failed calls included).
func (b *Backend) Calls(op Op) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[op]
}

// History returns every call of a Backend method (failed ones included)
// in the order they were made.
func (b *Backend) History() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// Sessions returns how many logins to name are still running: each Login
// opens one, which outlives Disable and SetPassword as a real session
// does, and EndSessions ends them all.
func (b *Backend) Sessions(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.accounts[name]; ok {
		return a.sessions
	}
	return 0
}

// Admins returns the names of the accounts in the administrators group,
// sorted: the fake's own record, read without Lookup.
func (b *Backend) Admins() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var names []string
	for n, a := range b.accounts {
		if a.admin {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Names returns the existing account names, sorted.
func (b *Backend) Names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.accounts))
	for n := range b.accounts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Login simulates a login on the platform: it succeeds only for an
// existing, enabled account and its current password, and then records
// the login time as the account's LastUse and opens a session (see
// Sessions).
func (b *Backend) Login(ctx context.Context, name string, pw password.Secret) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.accounts[name]
	if !ok {
		return fmt.Errorf("login %s: %w", name, accounts.ErrNotFound)
	}
	if !password.Equal(a.pw, pw) || !a.enabled {
		return fmt.Errorf("login %s: %w", name, ErrLoginRefused)
	}
	a.lastUse = b.now()
	a.sessions++
	return nil
}

// begin counts the call, checks ctx, name and injected faults, and returns
// with b.mu held on success.
func (b *Backend) begin(ctx context.Context, op Op, name string) error {
	b.mu.Lock()
	b.calls[op]++
	b.log = append(b.log, Call{Op: op, Name: name})
	n := b.calls[op]
	err := b.faults[op][n]
	if err == nil {
		err = ctx.Err()
	}
	if err == nil && !accounts.ValidName(name, b.maxLen) {
		err = fmt.Errorf("%w: %q", accounts.ErrInvalidName, name)
	}
	if err != nil {
		b.mu.Unlock()
		return fmt.Errorf("accountstest: %s %s: %w", strings.ToLower(string(op)), name, err)
	}
	return nil
}

func (b *Backend) get(op Op, name string) (*account, error) {
	a, ok := b.accounts[name]
	if !ok {
		return nil, fmt.Errorf("accountstest: %s %s: %w", strings.ToLower(string(op)), name, accounts.ErrNotFound)
	}
	return a, nil
}

func checkPassword(op Op, name string, pw password.Secret) error {
	if !accounts.ValidPassword(pw) {
		return fmt.Errorf("accountstest: %s %s: %w", strings.ToLower(string(op)), name, accounts.ErrInvalidPassword)
	}
	return nil
}

// Create implements accounts.Backend.
func (b *Backend) Create(ctx context.Context, name, fullName string, pw password.Secret) error {
	if err := b.begin(ctx, OpCreate, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if strings.ContainsAny(fullName, ":\n\r\x00") {
		return fmt.Errorf("accountstest: create %s: full name: %w", name, accounts.ErrInvalidName)
	}
	if err := checkPassword(OpCreate, name, pw); err != nil {
		return err
	}
	if _, ok := b.accounts[name]; ok {
		return fmt.Errorf("accountstest: create %s: %w", name, accounts.ErrExists)
	}
	b.accounts[name] = &account{id: b.nextID(), fullName: fullName, pw: pw.Clone()}
	return nil
}

// nextID allocates an account ID as useradd allocates a uid: one above the
// highest in use, from FirstID. A name deleted and re-created while it
// held the highest ID gets the same ID again.
func (b *Backend) nextID() int {
	id := FirstID
	for _, a := range b.accounts {
		id = max(id, a.id+1)
	}
	return id
}

// SetPassword implements accounts.Backend.
func (b *Backend) SetPassword(ctx context.Context, name string, pw password.Secret) error {
	if err := b.begin(ctx, OpSetPassword, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	if err := checkPassword(OpSetPassword, name, pw); err != nil {
		return err
	}
	a, err := b.get(OpSetPassword, name)
	if err != nil {
		return err
	}
	a.pw.Wipe()
	a.pw = pw.Clone()
	return nil
}

// Enable implements accounts.Backend.
func (b *Backend) Enable(ctx context.Context, name string) error {
	return b.setEnabled(ctx, OpEnable, name, true)
}

// Disable implements accounts.Backend.
func (b *Backend) Disable(ctx context.Context, name string) error {
	return b.setEnabled(ctx, OpDisable, name, false)
}

func (b *Backend) setEnabled(ctx context.Context, op Op, name string, on bool) error {
	if err := b.begin(ctx, op, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	a, err := b.get(op, name)
	if err != nil {
		return err
	}
	a.enabled = on
	return nil
}

// EndSessions implements accounts.Backend: it ends the sessions Login
// opened. It leaves the account's state as it is.
func (b *Backend) EndSessions(ctx context.Context, name string) error {
	if err := b.begin(ctx, OpEndSessions, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	a, err := b.get(OpEndSessions, name)
	if err != nil {
		return err
	}
	a.sessions = 0
	return nil
}

// Notify implements accounts.Notifier: the message reaches the account's
// running sessions (Login), if it has any; Notices returns what reached
// them.
func (b *Backend) Notify(ctx context.Context, name, message string) error {
	if err := b.begin(ctx, OpNotify, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	a, err := b.get(OpNotify, name)
	if err != nil {
		return err
	}
	if a.sessions > 0 {
		a.notices = append(a.notices, message)
	}
	return nil
}

// Announce implements accounts.Announcer: Announced returns what it
// showed.
func (b *Backend) Announce(ctx context.Context, message string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.announced = append(b.announced, message)
	return nil
}

// Announced returns the messages Announce showed, oldest first.
func (b *Backend) Announced() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.announced)
}

// Notices returns the messages Notify showed to name's running sessions.
func (b *Backend) Notices(name string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.accounts[name]; ok {
		return slices.Clone(a.notices)
	}
	return nil
}

// Delete implements accounts.Backend.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := b.begin(ctx, OpDelete, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	a, err := b.get(OpDelete, name)
	if err != nil {
		return err
	}
	a.pw.Wipe()
	delete(b.accounts, name)
	return nil
}

// SetAdmin implements accounts.Backend.
func (b *Backend) SetAdmin(ctx context.Context, name string, admin bool) error {
	if err := b.begin(ctx, OpSetAdmin, name); err != nil {
		return err
	}
	defer b.mu.Unlock()
	a, err := b.get(OpSetAdmin, name)
	if err != nil {
		return err
	}
	a.admin = admin
	return nil
}

// Lookup implements accounts.Backend.
func (b *Backend) Lookup(ctx context.Context, name string) (accounts.Info, error) {
	if err := b.begin(ctx, OpLookup, name); err != nil {
		return accounts.Info{}, err
	}
	defer b.mu.Unlock()
	a, err := b.get(OpLookup, name)
	if err != nil {
		return accounts.Info{}, err
	}
	return a.info(name), nil
}

func (a *account) info(name string) accounts.Info {
	return accounts.Info{Name: name, ID: strconv.Itoa(a.id), FullName: a.fullName, Enabled: a.enabled, Admin: a.admin, LastUse: a.lastUse}
}

// ListJIT returns the accounts whose full name starts with
// accounts.JITFullNamePrefix, sorted by name, as the Linux backend's
// ListJIT does.
func (b *Backend) ListJIT(ctx context.Context) ([]accounts.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []accounts.Info
	for name, a := range b.accounts {
		if i := a.info(name); i.IsJIT() {
			out = append(out, i)
		}
	}
	slices.SortFunc(out, func(x, y accounts.Info) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}
