// Package directory is the accounts.Backend for macOS local accounts, built
// on the local directory node's tools: dscl (records and passwords),
// dseditgroup (admin membership), pwpolicy (enable, disable), sysadminctl
// (SecureToken status), createhomedir, launchctl and pkill (ending
// sessions), last (last login). Every command goes through a
// command.Runner: command.Exec on a Mac, the fake Mac of package mactest
// in tests on Linux.
//
// # SecureToken and FileVault
//
// A JIT account must never hold a SecureToken: resetting the password of
// a token holder without its old password desynchronises FileVault, and
// the agent re-randomises the password after every session. Create makes
// the record with dscl (never sysadminctl -addUser, which may grant a
// token) and appends ";DisabledTags;SecureToken" to its
// AuthenticationAuthority, which stops macOS from granting one later (the
// bootstrap token would otherwise give it at the first login at the login
// window). Create, SetPassword and Enable check `sysadminctl
// -secureTokenStatus` and refuse (ErrSecureToken, logged at Error) an
// account that has one anyway.
//
// # What jitkey granted
//
// SetAdmin(true) tags the record with dsAttrTypeNative:_jitkey_admin_granted
// before it adds the account to the admin group, and SetAdmin(false)
// removes only a membership that carries the tag (as XCreds does with its
// _xcreds_promoted_to_admin): an administrator made by someone else is
// left alone and reported (ErrNotGranted).
//
// # Enabled and disabled
//
// Disable runs `pwpolicy -u NAME -disableuser` (";DisabledUser;" in the
// AuthenticationAuthority: every OpenDirectory authentication fails) and
// sets the login shell to /usr/bin/false (a login that skips the password,
// such as an SSH key, gets no shell). Enable undoes both. SetPassword keeps
// a disabled account disabled.
//
// # Passwords
//
// Passwords go to dscl on stdin, in its interactive mode ("passwd
// /Users/NAME PASSWORD"), never in arguments, and are scrubbed from error
// text.
//
// The package builds on every platform: its logic runs in tests on Linux
// against the fake. It has not been run on a Mac in this repository; the
// command formats it relies on are the documented ones (see
// macos/testdata/README.md).
package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/macos/command"
	"github.com/jitkey/jitkey/macos/plist"
)

// MaxName is the longest account name the backend creates. macOS accepts
// longer short names, but 20 keeps names portable across jitkey's
// platforms (accounts.MaxNameWindows).
const MaxName = accounts.MaxNameWindows

// Attribute names and values the backend reads and writes.
const (
	// AttrAdminGranted tags a record whose admin membership jitkey granted.
	AttrAdminGranted = "dsAttrTypeNative:_jitkey_admin_granted"
	// DisabledUser is the AuthenticationAuthority entry pwpolicy
	// -disableuser adds.
	DisabledUser = ";DisabledUser;"
	// NoSecureToken is the AuthenticationAuthority entry that stops macOS
	// from granting the account a SecureToken.
	NoSecureToken = ";DisabledTags;SecureToken"
	// ShellEnabled and ShellDisabled are the login shells of an enabled
	// and a disabled account.
	ShellEnabled  = "/bin/zsh"
	ShellDisabled = "/usr/bin/false"
	// FirstUID is the lowest uid the backend gives (macOS gives people
	// 501 up; below 500 are system accounts).
	FirstUID = 501
	// StaffGID is the primary group of created accounts (staff).
	StaffGID = "20"

	std = "dsAttrTypeStandard:"
)

// exitRecordNotFound is dscl's exit status for eDSRecordNotFound.
const exitRecordNotFound = 56

// Errors of the backend, besides the accounts sentinels.
var (
	// ErrSecureToken: the account holds a SecureToken; jitkey refuses to
	// enable it or reset its password (that would break FileVault).
	ErrSecureToken = errors.New("directory: account holds a SecureToken")
	// ErrNotGranted: SetAdmin(false) on an administrator that jitkey did
	// not make one; the membership is left alone.
	ErrNotGranted = errors.New("directory: admin membership not granted by jitkey")
	// ErrStillRunning: EndSessions gave up with processes of the account
	// still running.
	ErrStillRunning = errors.New("directory: processes of the account still running")
	// ErrBadUID: the account's uid is a system uid (below FirstUID) or
	// unparsable; EndSessions signals nothing.
	ErrBadUID = errors.New("directory: refusing to end the processes of this uid")
	// ErrNoRunner is returned by New when Config.Runner is nil.
	ErrNoRunner = errors.New("directory: config has no Runner")
)

// Config configures a Backend.
type Config struct {
	// Runner runs the commands. Required.
	Runner command.Runner
	// Logger receives one record per account change; nil discards.
	Logger *slog.Logger
	// Now is the clock that dates `last` output (which has no year); nil
	// means time.Now.
	Now func() time.Time
	// AdminGroup is the administrators group; "" means "admin".
	AdminGroup string
	// EndTimeout bounds how long EndSessions keeps killing; 0 means 10 s.
	EndTimeout time.Duration
	// Hidden hides created accounts from the login window's user list
	// (IsHidden 1). The authorization plugin types the name itself.
	Hidden bool
}

// Backend is the macOS accounts.Backend. Safe for concurrent use: changes
// are serialised.
type Backend struct {
	run        command.Runner
	log        *slog.Logger
	now        func() time.Time
	group      string
	endTimeout time.Duration
	hidden     bool

	mu sync.Mutex
}

var _ accounts.Backend = (*Backend)(nil)

// New returns a Backend. It runs no command.
func New(cfg Config) (*Backend, error) {
	if cfg.Runner == nil {
		return nil, ErrNoRunner
	}
	b := &Backend{run: cfg.Runner, log: cfg.Logger, now: cfg.Now, group: cfg.AdminGroup, endTimeout: cfg.EndTimeout, hidden: cfg.Hidden}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.group == "" {
		b.group = "admin"
	}
	if b.endTimeout <= 0 {
		b.endTimeout = 10 * time.Second
	}
	return b, nil
}

func checkName(name string) error {
	if !accounts.ValidName(name, MaxName) {
		return fmt.Errorf("%w: %q", accounts.ErrInvalidName, name)
	}
	return nil
}

// record is a user record as dscl -plist -read prints it: attribute name
// (dsAttrTypeStandard: or dsAttrTypeNative:) to values.
type record map[string][]string

func (r record) first(attr string) string {
	if v := r[attr]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseRecord parses the output of `dscl -plist . -read PATH`: a dict of
// attribute names to arrays of strings.
func ParseRecord(out []byte) (map[string][]string, error) {
	v, err := plist.Decode(out)
	if err != nil {
		return nil, fmt.Errorf("directory: parse dscl output: %w", err)
	}
	if v.Kind != plist.Dict {
		return nil, fmt.Errorf("directory: parse dscl output: %w: not a dict", plist.ErrSyntax)
	}
	r := make(map[string][]string, len(v.Dict))
	for _, e := range v.Dict {
		s, ok := e.Value.Strings()
		if !ok {
			return nil, fmt.Errorf("directory: parse dscl output: %w: attribute %q is not a list of strings", plist.ErrSyntax, e.Key)
		}
		r[e.Key] = s
	}
	return r, nil
}

// read returns the record at path, or accounts.ErrNotFound.
func (b *Backend) read(ctx context.Context, path string) (record, error) {
	out, _, err := b.run.Run(ctx, nil, "dscl", "-plist", ".", "-read", path)
	if notFound(err) {
		return nil, accounts.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r, err := ParseRecord(out)
	return record(r), err
}

func notFound(err error) bool {
	if err == nil {
		return false
	}
	ce, ok := errors.AsType[*command.Error](err)
	return ok && (ce.Code == exitRecordNotFound || strings.Contains(ce.Stderr, "eDSRecordNotFound"))
}

func userPath(name string) string { return "/Users/" + name }

func (b *Backend) dscl(ctx context.Context, args ...string) error {
	_, _, err := b.run.Run(ctx, nil, "dscl", append([]string{"."}, args...)...)
	return err
}

// Create implements accounts.Backend. The record is made with dscl, with a
// uid from FirstUID up, staff as primary group, the disabled shell,
// ;DisabledTags;SecureToken, the password, pwpolicy -disableuser and a
// home directory (createhomedir). If a step fails, the record is deleted
// again.
func (b *Backend) Create(ctx context.Context, name, fullName string, pw password.Secret) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("directory: create: %w", err)
	}
	if strings.ContainsAny(fullName, ":\n\r\x00") || !validText(fullName) {
		return fmt.Errorf("directory: create %s: full name: %w", name, accounts.ErrInvalidName)
	}
	if !accounts.ValidPassword(pw) {
		return fmt.Errorf("directory: create %s: %w", name, accounts.ErrInvalidPassword)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.read(ctx, userPath(name))
	if err == nil {
		return fmt.Errorf("directory: create %s: %w", name, accounts.ErrExists)
	}
	if !errors.Is(err, accounts.ErrNotFound) {
		return fmt.Errorf("directory: create %s: %w", name, err)
	}
	uid, err := b.freeUID(ctx)
	if err != nil {
		return fmt.Errorf("directory: create %s: %w", name, err)
	}
	p := userPath(name)
	if err := b.dscl(ctx, "-create", p); err != nil {
		return fmt.Errorf("directory: create %s: %w", name, err)
	}
	steps := [][]string{
		{"-create", p, "UniqueID", strconv.Itoa(uid)},
		{"-create", p, "PrimaryGroupID", StaffGID},
		{"-create", p, "UserShell", ShellDisabled},
		{"-create", p, "NFSHomeDirectory", p},
		{"-create", p, "RealName", fullName},
		{"-append", p, "AuthenticationAuthority", NoSecureToken},
	}
	if b.hidden {
		steps = append(steps, []string{"-create", p, "IsHidden", "1"})
	}
	for _, s := range steps {
		if err := b.dscl(ctx, s...); err != nil {
			return b.undoCreate(ctx, name, fmt.Errorf("directory: create %s: %w", name, err))
		}
	}
	if err := b.passwd(ctx, name, pw); err != nil {
		return b.undoCreate(ctx, name, err)
	}
	if _, _, err := b.run.Run(ctx, nil, "pwpolicy", "-u", name, "-disableuser"); err != nil {
		return b.undoCreate(ctx, name, fmt.Errorf("directory: create %s: disable: %w", name, err))
	}
	if _, _, err := b.run.Run(ctx, nil, "createhomedir", "-c", "-u", name); err != nil {
		return b.undoCreate(ctx, name, fmt.Errorf("directory: create %s: home directory: %w", name, err))
	}
	if err := b.refuseToken(ctx, name); err != nil {
		return b.undoCreate(ctx, name, fmt.Errorf("directory: create %s: %w", name, err))
	}
	b.log.InfoContext(ctx, "account created", "account", name, "uid", uid)
	return nil
}

// validText reports whether s is valid UTF-8 without control characters
// (dscl and property lists carry it).
func validText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

func (b *Backend) undoCreate(ctx context.Context, name string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if err := b.dscl(ctx, "-delete", userPath(name)); err != nil {
		b.log.ErrorContext(ctx, "remove half-created account", "account", name, "err", err)
		return errors.Join(cause, fmt.Errorf("directory: remove half-created account %s: %w", name, err))
	}
	return cause
}

// freeUID returns one more than the highest uid in use from FirstUID up.
func (b *Backend) freeUID(ctx context.Context) (int, error) {
	out, _, err := b.run.Run(ctx, nil, "dscl", ".", "-list", "/Users", "UniqueID")
	if err != nil {
		return 0, fmt.Errorf("list uids: %w", err)
	}
	uids, err := ParseUIDList(out)
	if err != nil {
		return 0, err
	}
	next := FirstUID
	for _, u := range uids {
		if u >= next {
			next = u + 1
		}
	}
	return next, nil
}

// ParseUIDList parses `dscl . -list /Users UniqueID`: one "name uid" line
// per record. Negative uids (nobody is -2) are kept.
func ParseUIDList(out []byte) ([]int, error) {
	var uids []int
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("directory: malformed uid list line %q", strings.TrimSpace(line))
		}
		u, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("directory: malformed uid %q of %s", f[1], f[0])
		}
		uids = append(uids, u)
	}
	return uids, nil
}

// passwd sets name's password through dscl's interactive mode on stdin.
func (b *Backend) passwd(ctx context.Context, name string, pw password.Secret) error {
	line := make([]byte, 0, 32+len(name)+pw.Len())
	line = append(line, "passwd "...)
	line = append(line, userPath(name)...)
	line = append(line, ' ')
	line = append(line, pw.Bytes()...)
	line = append(line, '\n')
	_, stderr, err := b.run.Run(ctx, line, "dscl", ".")
	clear(line)
	// dscl's interactive mode reports a failed command on stderr and may
	// still exit 0.
	if err == nil && len(bytes.TrimSpace(stderr)) > 0 {
		err = &command.Error{Name: "dscl", Args: []string{"."}, Code: 0, Stderr: strings.TrimSpace(string(stderr)), Err: errors.New("passwd reported an error")}
	}
	if err != nil {
		return fmt.Errorf("directory: set password of %s: %w", name, scrub(err, pw))
	}
	return nil
}

// scrub returns err with pw's bytes in a command.Error's text replaced.
func scrub(err error, pw password.Secret) error {
	ce, ok := errors.AsType[*command.Error](err)
	if !ok || pw.Len() == 0 {
		return err
	}
	p := string(pw.Bytes())
	clean := *ce
	clean.Stderr = strings.ReplaceAll(ce.Stderr, p, password.Redacted)
	if strings.Contains(ce.Err.Error(), p) {
		clean.Err = errors.New(strings.ReplaceAll(ce.Err.Error(), p, password.Redacted))
	}
	return &clean
}

// SecureToken reports whether the account holds a SecureToken, from
// `sysadminctl -secureTokenStatus NAME` (which answers on stderr).
func (b *Backend) SecureToken(ctx context.Context, name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, fmt.Errorf("directory: secure token: %w", err)
	}
	_, stderr, err := b.run.Run(ctx, nil, "sysadminctl", "-secureTokenStatus", name)
	if err != nil {
		return false, fmt.Errorf("directory: secure token status of %s: %w", name, err)
	}
	return ParseSecureTokenStatus(stderr, name)
}

var tokenLine = regexp.MustCompile(`Secure token is (ENABLED|DISABLED) for user (\S+)\s*$`)

// ParseSecureTokenStatus parses sysadminctl -secureTokenStatus's stderr
// ("... sysadminctl[pid:tid] Secure token is ENABLED for user NAME").
func ParseSecureTokenStatus(stderr []byte, name string) (bool, error) {
	for line := range strings.Lines(string(stderr)) {
		m := tokenLine.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
		if m == nil {
			continue
		}
		if m[2] != name {
			return false, fmt.Errorf("directory: secure token status names %q, not %q", m[2], name)
		}
		return m[1] == "ENABLED", nil
	}
	return false, fmt.Errorf("directory: no secure token status for %s in %q", name, strings.TrimSpace(string(stderr)))
}

// refuseToken returns ErrSecureToken, logged at Error, if name holds a
// SecureToken.
func (b *Backend) refuseToken(ctx context.Context, name string) error {
	has, err := b.SecureToken(ctx, name)
	if err != nil {
		return err
	}
	if has {
		b.log.ErrorContext(ctx, "JIT account holds a SecureToken: refusing to use it (a password reset would break FileVault); remove the token with sysadminctl -secureTokenOff or delete the account", "account", name)
		return fmt.Errorf("%w: %s", ErrSecureToken, name)
	}
	return nil
}

// SetPassword implements accounts.Backend. It refuses a SecureToken
// holder; a disabled account stays disabled.
func (b *Backend) SetPassword(ctx context.Context, name string, pw password.Secret) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("directory: set password: %w", err)
	}
	if !accounts.ValidPassword(pw) {
		return fmt.Errorf("directory: set password of %s: %w", name, accounts.ErrInvalidPassword)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.read(ctx, userPath(name))
	if err != nil {
		return fmt.Errorf("directory: set password of %s: %w", name, err)
	}
	if err := b.refuseToken(ctx, name); err != nil {
		return fmt.Errorf("directory: set password of %s: %w", name, err)
	}
	if err := b.passwd(ctx, name, pw); err != nil {
		return err
	}
	if disabled(r) {
		if _, _, err := b.run.Run(ctx, nil, "pwpolicy", "-u", name, "-disableuser"); err != nil {
			return fmt.Errorf("directory: set password of %s: keep disabled: %w", name, err)
		}
	}
	b.log.InfoContext(ctx, "account password set", "account", name)
	return nil
}

func disabled(r record) bool {
	return slices.Contains(r[std+"AuthenticationAuthority"], DisabledUser)
}

// Enable implements accounts.Backend: pwpolicy -enableuser and the login
// shell back. It refuses a SecureToken holder.
func (b *Backend) Enable(ctx context.Context, name string) error {
	return b.setEnabled(ctx, name, true)
}

// Disable implements accounts.Backend: pwpolicy -disableuser and the
// /usr/bin/false shell.
func (b *Backend) Disable(ctx context.Context, name string) error {
	return b.setEnabled(ctx, name, false)
}

func (b *Backend) setEnabled(ctx context.Context, name string, on bool) error {
	action, flag, shell := "disable", "-disableuser", ShellDisabled
	if on {
		action, flag, shell = "enable", "-enableuser", ShellEnabled
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("directory: %s: %w", action, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.read(ctx, userPath(name)); err != nil {
		return fmt.Errorf("directory: %s %s: %w", action, name, err)
	}
	if on {
		if err := b.refuseToken(ctx, name); err != nil {
			return fmt.Errorf("directory: enable %s: %w", name, err)
		}
	}
	// Disable blocks the password first, then the shell; Enable opens the
	// shell first, then the password: a failure in between leaves the
	// account disabled.
	steps := []func() error{
		func() error { _, _, err := b.run.Run(ctx, nil, "pwpolicy", "-u", name, flag); return err },
		func() error { return b.dscl(ctx, "-create", userPath(name), "UserShell", shell) },
	}
	if on {
		slices.Reverse(steps)
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("directory: %s %s: %w", action, name, err)
		}
	}
	b.log.InfoContext(ctx, "account "+action+"d", "account", name)
	return nil
}

// Delete implements accounts.Backend: the account leaves the admin group
// (a deleted record's name would otherwise stay in GroupMembership and
// make a later account of that name an admin), its record is deleted, and
// its home directory, if it is /Users/NAME, is removed.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("directory: delete: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.read(ctx, userPath(name))
	if err != nil {
		return fmt.Errorf("directory: delete %s: %w", name, err)
	}
	members, err := b.members(ctx)
	if err != nil {
		return fmt.Errorf("directory: delete %s: %w", name, err)
	}
	if slices.Contains(members, name) {
		if err := b.dseditgroup(ctx, "-d", name); err != nil {
			return fmt.Errorf("directory: delete %s: leave %s: %w", name, b.group, err)
		}
	}
	if err := b.dscl(ctx, "-delete", userPath(name)); err != nil {
		return fmt.Errorf("directory: delete %s: %w", name, err)
	}
	if home := r.first(std + "NFSHomeDirectory"); home == userPath(name) {
		if _, _, err := b.run.Run(ctx, nil, "rm", "-rf", "--", home); err != nil {
			b.log.WarnContext(ctx, "account deleted; its home directory was not removed", "account", name, "err", err)
		}
	}
	b.log.InfoContext(ctx, "account deleted", "account", name)
	return nil
}

func (b *Backend) dseditgroup(ctx context.Context, flag, name string) error {
	_, _, err := b.run.Run(ctx, nil, "dseditgroup", "-o", "edit", flag, name, "-t", "user", b.group)
	return err
}

// members returns the admin group's GroupMembership.
func (b *Backend) members(ctx context.Context) ([]string, error) {
	r, err := b.read(ctx, "/Groups/"+b.group)
	if err != nil {
		return nil, fmt.Errorf("read group %s: %w", b.group, err)
	}
	return r[std+"GroupMembership"], nil
}

// SetAdmin implements accounts.Backend. Granting tags the record
// (AttrAdminGranted) before dseditgroup adds it; revoking removes only a
// tagged membership and returns ErrNotGranted for an untagged one.
func (b *Backend) SetAdmin(ctx context.Context, name string, admin bool) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("directory: set admin: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.read(ctx, userPath(name))
	if err != nil {
		return fmt.Errorf("directory: set admin %s: %w", name, err)
	}
	members, err := b.members(ctx)
	if err != nil {
		return fmt.Errorf("directory: set admin %s: %w", name, err)
	}
	member, tagged := slices.Contains(members, name), len(r[AttrAdminGranted]) > 0
	switch {
	case admin && member:
		return nil
	case admin:
		if err := b.dscl(ctx, "-create", userPath(name), AttrAdminGranted, "1"); err != nil {
			return fmt.Errorf("directory: set admin %s: tag: %w", name, err)
		}
		if err := b.dseditgroup(ctx, "-a", name); err != nil {
			return fmt.Errorf("directory: set admin %s: %w", name, err)
		}
	case member && !tagged:
		b.log.WarnContext(ctx, "account is an administrator jitkey did not make; left as it is", "account", name)
		return fmt.Errorf("%w: %s", ErrNotGranted, name)
	case member:
		if err := b.dseditgroup(ctx, "-d", name); err != nil {
			return fmt.Errorf("directory: set admin %s: %w", name, err)
		}
		fallthrough
	case tagged:
		if err := b.dscl(ctx, "-delete", userPath(name), AttrAdminGranted); err != nil {
			return fmt.Errorf("directory: set admin %s: untag: %w", name, err)
		}
	default:
		return nil
	}
	b.log.InfoContext(ctx, "account admin membership set", "account", name, "admin", admin)
	return nil
}

// Lookup implements accounts.Backend: ID is the record's GeneratedUID (a
// UUID a re-created account never shares), FullName its RealName, Enabled
// the absence of ;DisabledUser;, Admin membership of the admin group,
// LastUse the newest `last` entry.
func (b *Backend) Lookup(ctx context.Context, name string) (accounts.Info, error) {
	if err := checkName(name); err != nil {
		return accounts.Info{}, fmt.Errorf("directory: lookup: %w", err)
	}
	r, err := b.read(ctx, userPath(name))
	if err != nil {
		return accounts.Info{}, fmt.Errorf("directory: lookup %s: %w", name, err)
	}
	members, err := b.members(ctx)
	if err != nil {
		return accounts.Info{}, fmt.Errorf("directory: lookup %s: %w", name, err)
	}
	out, _, err := b.run.Run(ctx, nil, "last", "-1", name)
	if err != nil {
		return accounts.Info{}, fmt.Errorf("directory: lookup %s: last login: %w", name, err)
	}
	last, err := ParseLast(out, name, b.now())
	if err != nil {
		return accounts.Info{}, fmt.Errorf("directory: lookup %s: %w", name, err)
	}
	return accounts.Info{
		Name:     name,
		ID:       r.first(std + "GeneratedUID"),
		FullName: r.first(std + "RealName"),
		Enabled:  !disabled(r),
		Admin:    slices.Contains(members, name),
		LastUse:  last,
	}, nil
}

var lastDate = regexp.MustCompile(`\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{2}):(\d{2})\b`)

// ParseLast returns the login time of name's first line in `last -1 NAME`
// output ("NAME console Sun Dec  6 17:41 - 17:58 (00:17)"), or the zero
// time if there is none. last prints no year: the year is the latest that
// puts the time, with its weekday, no later than a day after now (the
// local time zone of the Mac is taken as UTC's offset of now).
func ParseLast(out []byte, name string, now time.Time) (time.Time, error) {
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != name {
			continue
		}
		m := lastDate.FindStringSubmatch(line)
		if m == nil {
			return time.Time{}, fmt.Errorf("directory: no date in last output line %q", strings.TrimSpace(line))
		}
		mon, _ := time.Parse("Jan", m[2])
		day, _ := strconv.Atoi(m[3])
		hh, _ := strconv.Atoi(m[4])
		mm, _ := strconv.Atoi(m[5])
		for y := now.Year(); y >= now.Year()-7; y-- {
			t := time.Date(y, mon.Month(), day, hh, mm, 0, 0, now.Location())
			if t.Day() != day || t.After(now.Add(24*time.Hour)) || t.Weekday().String()[:3] != m[1] {
				continue
			}
			return t, nil
		}
		return time.Time{}, fmt.Errorf("directory: last output date %q fits no recent year", m[0])
	}
	return time.Time{}, nil
}

// EndSessions implements accounts.Backend: launchctl bootout of the
// user's launchd domain (the GUI login and everything it started), then
// pkill -KILL -U UID until pgrep finds nothing or EndTimeout passes. It
// refuses a uid below FirstUID.
func (b *Backend) EndSessions(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("directory: end sessions: %w", err)
	}
	r, err := b.read(ctx, userPath(name))
	if err != nil {
		return fmt.Errorf("directory: end sessions of %s: %w", name, err)
	}
	uidText := r.first(std + "UniqueID")
	uid, err := strconv.Atoi(uidText)
	if err != nil || uid < FirstUID {
		return fmt.Errorf("directory: end sessions of %s: %w: uid %q", name, ErrBadUID, uidText)
	}
	u := strconv.Itoa(uid)
	if _, _, err := b.run.Run(ctx, nil, "launchctl", "bootout", "user/"+u); err != nil {
		// No domain for a user who is not logged in: nothing to boot out.
		b.log.DebugContext(ctx, "launchctl bootout", "account", name, "uid", uid, "err", err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.endTimeout)
	defer cancel()
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		_, _, kerr := b.run.Run(ctx, nil, "pkill", "-KILL", "-U", u)
		if kerr != nil && command.ExitCode(kerr) != 1 { // 1: no process matched
			return fmt.Errorf("directory: end sessions of %s: %w", name, kerr)
		}
		out, _, perr := b.run.Run(ctx, nil, "pgrep", "-U", u)
		if command.ExitCode(perr) == 1 {
			if kerr == nil {
				b.log.InfoContext(ctx, "account sessions ended", "account", name, "uid", uid)
			}
			return nil
		}
		if perr != nil {
			return fmt.Errorf("directory: end sessions of %s: %w", name, perr)
		}
		select {
		case <-ctx.Done():
			b.log.ErrorContext(ctx, "account sessions not ended", "account", name, "uid", uid, "pids", strings.Fields(string(out)))
			return fmt.Errorf("%w: %s (uid %d): pids %v", ErrStillRunning, name, uid, strings.Fields(string(out)))
		case <-time.After(delay):
		}
	}
}

// ListJIT returns the accounts whose full name starts with
// accounts.JITFullNamePrefix (dscl . -list /Users RealName, then a Lookup
// of each), for the agent to disable its accounts without its database.
func (b *Backend) ListJIT(ctx context.Context) ([]accounts.Info, error) {
	out, _, err := b.run.Run(ctx, nil, "dscl", ".", "-list", "/Users", "RealName")
	if err != nil {
		return nil, fmt.Errorf("directory: list accounts: %w", err)
	}
	var infos []accounts.Info
	var errs []error
	for line := range strings.Lines(string(out)) {
		name, real, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(strings.TrimSpace(real), accounts.JITFullNamePrefix) || checkName(name) != nil {
			continue
		}
		info, err := b.Lookup(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, info)
	}
	return infos, errors.Join(errs...)
}
