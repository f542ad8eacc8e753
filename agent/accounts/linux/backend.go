//go:build linux

package linux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
)

// Exit codes of shadow-utils and getent that the backend branches on.
const (
	exitUseraddNameInUse = 9 // useradd: username (or group) already in use
	exitUserNotFound     = 6 // usermod, userdel: user does not exist
	exitGetentNotFound   = 2 // getent: key not found
)

// DefaultSudoTimestampDir is sudo's default timestampdir on Debian,
// Ubuntu and Fedora (--with-rundir=/run/sudo).
const DefaultSudoTimestampDir = "/run/sudo/ts"

// expireDisabled is the expiry (days since 1970-01-01) Disable sets: 1970-01-02.
const expireDisabled = "1"

// Config configures a Backend.
type Config struct {
	// Runner runs the commands; ExecRunner{} for the host, a
	// sandbox.Sandbox for tests and demos. Required.
	Runner Runner
	// Logger receives one record per account change; nil discards.
	Logger *slog.Logger
	// Now is the clock for account expiry; nil means time.Now.
	Now func() time.Time
	// AdminGroup is the administrators group; "" means "sudo". SetAdmin
	// creates it (groupadd --system) if missing; granting it rights is the
	// sudoers configuration's job (Debian: %sudo ALL=(ALL:ALL) ALL).
	AdminGroup string
	// Shell is the login shell of created accounts; "" means /bin/bash.
	Shell string
	// LogindDir is where systemd-logind keeps a state file per user it
	// tracks, named by uid; EndSessions runs loginctl terminate-user only
	// for a uid that has one. "" means /run/systemd/users.
	LogindDir string
	// EndTimeout bounds how long EndSessions goes on killing the
	// account's processes; 0 means 10 s.
	EndTimeout time.Duration
	// SudoTimestampDir is sudo's timestampdir, where it keeps one file
	// of cached credentials per user; Disable removes the account's.
	// "" means DefaultSudoTimestampDir.
	SudoTimestampDir string
}

// Backend is the Linux accounts.Backend. Safe for concurrent use: changes
// are serialised, since shadow-utils refuse to run while another holds the
// database lock.
type Backend struct {
	run   Runner
	log   *slog.Logger
	now   func() time.Time
	group string
	shell string
	// EndSessions
	logindDir  string
	endTimeout time.Duration
	// Disable
	sudoTS string
	// Notify: globs of the terminal devices considered.
	terminals []string

	mu sync.Mutex
}

var (
	_ accounts.Backend   = (*Backend)(nil)
	_ accounts.Notifier  = (*Backend)(nil)
	_ accounts.Announcer = (*Backend)(nil)
)

// ErrNoRunner is returned by New when Config.Runner is nil.
var ErrNoRunner = errors.New("linux: config has no Runner")

// New returns a Backend. It runs no command.
func New(cfg Config) (*Backend, error) {
	if cfg.Runner == nil {
		return nil, ErrNoRunner
	}
	b := &Backend{run: cfg.Runner, log: cfg.Logger, now: cfg.Now, group: cfg.AdminGroup, shell: cfg.Shell,
		logindDir: cfg.LogindDir, endTimeout: cfg.EndTimeout, sudoTS: cfg.SudoTimestampDir}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.group == "" {
		b.group = "sudo"
	}
	if b.shell == "" {
		b.shell = "/bin/bash"
	}
	if b.logindDir == "" {
		b.logindDir = defaultLogindDir
	}
	if b.endTimeout <= 0 {
		b.endTimeout = defaultEndTimeout
	}
	if b.sudoTS == "" {
		b.sudoTS = DefaultSudoTimestampDir
	}
	b.terminals = defaultTerminals
	return b, nil
}

func checkName(name string) error {
	if !accounts.ValidName(name, accounts.MaxNameLinux) {
		return fmt.Errorf("%w: %q", accounts.ErrInvalidName, name)
	}
	return nil
}

// Create implements accounts.Backend: useradd with a locked password and an
// expired account, chpasswd, then usermod --lock (chpasswd drops the lock).
// If a step after useradd fails, the account is deleted again.
func (b *Backend) Create(ctx context.Context, name, fullName string, pw password.Secret) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: create: %w", err)
	}
	if strings.ContainsAny(fullName, ":\n\r\x00") {
		return fmt.Errorf("linux: create %s: full name: %w", name, accounts.ErrInvalidName)
	}
	if !accounts.ValidPassword(pw) {
		return fmt.Errorf("linux: create %s: %w", name, accounts.ErrInvalidPassword)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.run.Run(ctx, nil, "useradd", "--create-home", "--user-group", "--shell", b.shell,
		"--comment", fullName, "--expiredate", expireDisabled, "--", name)
	if exitCode(err) == exitUseraddNameInUse {
		return fmt.Errorf("linux: create %s: %w (%w)", name, accounts.ErrExists, err)
	}
	if err != nil {
		return fmt.Errorf("linux: create %s: %w", name, err)
	}
	if err := b.chpasswd(ctx, name, pw); err != nil {
		return b.undoCreate(ctx, name, err)
	}
	if _, err := b.run.Run(ctx, nil, "usermod", "--lock", "--expiredate", expireDisabled, "--", name); err != nil {
		return b.undoCreate(ctx, name, fmt.Errorf("linux: create %s: lock: %w", name, err))
	}
	b.log.InfoContext(ctx, "account created", "account", name)
	return nil
}

func (b *Backend) undoCreate(ctx context.Context, name string, cause error) error {
	if _, err := b.run.Run(context.WithoutCancel(ctx), nil, "userdel", "--remove", "--", name); err != nil {
		b.log.ErrorContext(ctx, "remove half-created account", "account", name, "err", err)
		return errors.Join(cause, fmt.Errorf("linux: remove half-created account %s: %w", name, err))
	}
	return cause
}

// chpasswd sets name's password, feeding "name:password\n" on stdin. The
// buffer is wiped afterwards and the password scrubbed from any error.
func (b *Backend) chpasswd(ctx context.Context, name string, pw password.Secret) error {
	line := make([]byte, 0, len(name)+pw.Len()+2)
	line = append(line, name...)
	line = append(line, ':')
	line = append(line, pw.Bytes()...)
	line = append(line, '\n')
	_, err := b.run.Run(ctx, line, "chpasswd")
	clear(line)
	if err != nil {
		return fmt.Errorf("linux: set password of %s: %w", name, scrub(err, pw))
	}
	return nil
}

// scrub returns err with every occurrence of pw's bytes in a
// CommandError's text replaced by REDACTED.
func scrub(err error, pw password.Secret) error {
	ce, ok := errors.AsType[*CommandError](err)
	if !ok || pw.Len() == 0 {
		return err
	}
	p := pw.Bytes()
	clean := *ce
	clean.Stderr = string(bytes.ReplaceAll([]byte(ce.Stderr), p, []byte(password.Redacted)))
	if strings.Contains(ce.Err.Error(), string(p)) {
		clean.Err = errors.New(strings.ReplaceAll(ce.Err.Error(), string(p), password.Redacted))
	}
	return &clean
}

// SetPassword implements accounts.Backend. A locked account stays locked.
func (b *Backend) SetPassword(ctx context.Context, name string, pw password.Secret) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: set password: %w", err)
	}
	if !accounts.ValidPassword(pw) {
		return fmt.Errorf("linux: set password of %s: %w", name, accounts.ErrInvalidPassword)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sh, err := b.shadow(ctx, name)
	if err != nil {
		return fmt.Errorf("linux: set password of %s: %w", name, err)
	}
	if err := b.chpasswd(ctx, name, pw); err != nil {
		return err
	}
	if sh.locked() {
		if _, err := b.run.Run(ctx, nil, "usermod", "--lock", "--", name); err != nil {
			return fmt.Errorf("linux: set password of %s: keep lock: %w", name, err)
		}
	}
	b.log.InfoContext(ctx, "account password set", "account", name)
	return nil
}

// Enable implements accounts.Backend: usermod --unlock with an empty
// --expiredate (never expires).
func (b *Backend) Enable(ctx context.Context, name string) error {
	return b.usermod(ctx, "enable", name, "--unlock", "--expiredate", "")
}

// Disable implements accounts.Backend: usermod --lock --expiredate 1,
// then it removes the account's sudo timestamp file (rm -f
// SudoTimestampDir/NAME, what sudo -K does for its own user), so that no
// process of the account still running can use a credential sudo
// cached during the session.
func (b *Backend) Disable(ctx context.Context, name string) error {
	if err := b.usermod(ctx, "disable", name, "--lock", "--expiredate", expireDisabled); err != nil {
		return err
	}
	// name passed checkName in usermod: no slash, no dot first.
	if _, err := b.run.Run(ctx, nil, "rm", "-f", "--", path.Join(b.sudoTS, name)); err != nil {
		return fmt.Errorf("linux: disable %s: remove sudo's cached credentials: %w", name, err)
	}
	return nil
}

func (b *Backend) usermod(ctx context.Context, action, name string, args ...string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: %s: %w", action, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.run.Run(ctx, nil, "usermod", append(args, "--", name)...)
	if exitCode(err) == exitUserNotFound {
		return fmt.Errorf("linux: %s %s: %w", action, name, accounts.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("linux: %s %s: %w", action, name, err)
	}
	b.log.InfoContext(ctx, "account "+action+"d", "account", name)
	return nil
}

// Delete implements accounts.Backend: userdel --remove (home directory and
// mail spool too). It fails while the user has running processes.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: delete: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.run.Run(ctx, nil, "userdel", "--remove", "--", name)
	if exitCode(err) == exitUserNotFound {
		return fmt.Errorf("linux: delete %s: %w", name, accounts.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("linux: delete %s: %w", name, err)
	}
	b.log.InfoContext(ctx, "account deleted", "account", name)
	return nil
}

// SetAdmin implements accounts.Backend with gpasswd --add / --delete on the
// admin group, creating the group first if it is missing.
func (b *Backend) SetAdmin(ctx context.Context, name string, admin bool) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: set admin: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.passwd(ctx, name); err != nil {
		return fmt.Errorf("linux: set admin %s: %w", name, err)
	}
	members, found, err := b.groupMembers(ctx)
	if err != nil {
		return fmt.Errorf("linux: set admin %s: %w", name, err)
	}
	if slices.Contains(members, name) == admin {
		return nil
	}
	if !found {
		if _, err := b.run.Run(ctx, nil, "groupadd", "--system", "--", b.group); err != nil {
			return fmt.Errorf("linux: create admin group %s: %w", b.group, err)
		}
		b.log.InfoContext(ctx, "admin group created", "group", b.group)
	}
	flag := "--delete"
	if admin {
		flag = "--add"
	}
	if _, err := b.run.Run(ctx, nil, "gpasswd", flag, name, b.group); err != nil {
		return fmt.Errorf("linux: set admin %s: %w", name, err)
	}
	b.log.InfoContext(ctx, "account admin membership set", "account", name, "admin", admin)
	return nil
}

// Lookup implements accounts.Backend from getent shadow, passwd (uid as
// ID, GECOS as full name) and group, and lastlog.
func (b *Backend) Lookup(ctx context.Context, name string) (accounts.Info, error) {
	if err := checkName(name); err != nil {
		return accounts.Info{}, fmt.Errorf("linux: lookup: %w", err)
	}
	// Every local account has a shadow entry (useradd writes both), so the
	// shadow lookup doubles as the existence check.
	sh, err := b.shadow(ctx, name)
	if err != nil {
		return accounts.Info{}, fmt.Errorf("linux: lookup %s: %w", name, err)
	}
	pw, err := b.passwd(ctx, name)
	if err != nil {
		return accounts.Info{}, fmt.Errorf("linux: lookup %s: %w", name, err)
	}
	members, _, err := b.groupMembers(ctx)
	if err != nil {
		return accounts.Info{}, fmt.Errorf("linux: lookup %s: %w", name, err)
	}
	last, err := b.lastLogin(ctx, name)
	if err != nil {
		return accounts.Info{}, fmt.Errorf("linux: lookup %s: %w", name, err)
	}
	return accounts.Info{
		Name:     name,
		ID:       pw[2],
		FullName: gecosName(pw[4]),
		Enabled:  !sh.locked() && !sh.expired(b.now()),
		Admin:    slices.Contains(members, name),
		LastUse:  last,
	}, nil
}

// gecosName returns the full name in a GECOS field: up to the first comma.
func gecosName(gecos string) string {
	n, _, _ := strings.Cut(gecos, ",")
	return n
}

// ListJIT returns the accounts whose full name starts with
// accounts.JITFullNamePrefix, from getent passwd and a Lookup of each. It
// needs no agent state: the daemon uses it to disable jitkey's accounts
// when its database is unreadable.
func (b *Backend) ListJIT(ctx context.Context) ([]accounts.Info, error) {
	out, err := b.run.Run(ctx, nil, "getent", "passwd")
	if err != nil {
		return nil, fmt.Errorf("linux: list accounts: %w", err)
	}
	var infos []accounts.Info
	var errs []error
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), ":")
		if len(f) != 7 || !strings.HasPrefix(gecosName(f[4]), accounts.JITFullNamePrefix) || checkName(f[0]) != nil {
			continue
		}
		info, err := b.Lookup(ctx, f[0])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, info)
	}
	return infos, errors.Join(errs...)
}

// getent runs getent DB KEY and returns the entry's fields, or
// accounts.ErrNotFound.
func (b *Backend) getent(ctx context.Context, db, key string) ([]string, error) {
	out, err := b.run.Run(ctx, nil, "getent", db, key)
	if exitCode(err) == exitGetentNotFound {
		return nil, accounts.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(string(out), "\n")
	fields := strings.Split(line, ":")
	if len(fields) < 3 || fields[0] != key {
		return nil, fmt.Errorf("linux: malformed getent %s entry for %s", db, key)
	}
	return fields, nil
}

func (b *Backend) passwd(ctx context.Context, name string) ([]string, error) {
	f, err := b.getent(ctx, "passwd", name)
	if err == nil && len(f) != 7 {
		err = fmt.Errorf("linux: malformed passwd entry for %s", name)
	}
	return f, err
}

// shadowEntry holds the fields of a shadow(5) line the backend uses. The
// password hash itself is never kept.
type shadowEntry struct {
	lockedOrNoLogin bool
	expire          string // days since 1970-01-01, or "" for never
}

func (b *Backend) shadow(ctx context.Context, name string) (shadowEntry, error) {
	f, err := b.getent(ctx, "shadow", name)
	if err != nil {
		return shadowEntry{}, err
	}
	if len(f) != 9 {
		return shadowEntry{}, fmt.Errorf("linux: malformed shadow entry for %s", name)
	}
	hash := f[1]
	e := shadowEntry{
		lockedOrNoLogin: strings.HasPrefix(hash, "!") || strings.HasPrefix(hash, "*") || hash == "",
		expire:          f[7],
	}
	clear(f)
	return e, nil
}

func (e shadowEntry) locked() bool { return e.lockedOrNoLogin }

// expired applies shadow(5): the account is expired from the start of day
// expire (UTC) on. An unparsable value counts as expired.
func (e shadowEntry) expired(now time.Time) bool {
	if e.expire == "" {
		return false
	}
	days, err := strconv.ParseInt(e.expire, 10, 64)
	if err != nil {
		return true
	}
	return now.Unix()/86400 >= days
}

// groupMembers returns the admin group's supplementary members and whether
// the group exists.
func (b *Backend) groupMembers(ctx context.Context) ([]string, bool, error) {
	f, err := b.getent(ctx, "group", b.group)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if len(f) != 4 {
		return nil, false, fmt.Errorf("linux: malformed group entry for %s", b.group)
	}
	if f[3] == "" {
		return nil, true, nil
	}
	return strings.Split(f[3], ","), true, nil
}

// lastlogLayout is lastlog's date format in the C locale
// ("Mon Nov 23 20:42:17 +0000 2026"), after collapsing spaces.
const lastlogLayout = "Mon Jan 2 15:04:05 -0700 2006"

// lastLogin reads name's lastlog record: zero if none or if lastlog is not
// installed.
func (b *Backend) lastLogin(ctx context.Context, name string) (time.Time, error) {
	out, err := b.run.Run(ctx, nil, "lastlog", "--user", name)
	if errors.Is(err, exec.ErrNotFound) || exitCode(err) == 127 {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read last login: %w", err)
	}
	return parseLastlog(out, name)
}

func parseLastlog(out []byte, name string) (time.Time, error) {
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != name {
			continue
		}
		if strings.Contains(line, "**Never logged in**") {
			return time.Time{}, nil
		}
		if len(f) < 7 {
			break
		}
		t, err := time.Parse(lastlogLayout, strings.Join(f[len(f)-6:], " "))
		if err != nil {
			return time.Time{}, fmt.Errorf("parse lastlog date: %w", err)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("linux: no lastlog record for %s", name)
}
