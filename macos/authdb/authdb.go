// Package authdb installs jitkey's authorization plugin into the macOS
// authorization database, checks that it is still there, repairs it after
// an OS update reset a right, and restores the original rights at
// uninstall. It edits rights with `security authorizationdb read RIGHT`
// (the right as an XML property list on stdout) and `security
// authorizationdb write RIGHT` (the new one on stdin), through a
// command.Runner, as Crypt and XCreds do.
//
// # What it changes
//
// system.login.console (the login window, class evaluate-mechanisms):
// jitkey's mechanism JitkeyLogin:login takes the place of
// loginwindow:login, before builtin:login-begin. Its window shows the QR
// code, the push and offline-code options, and always a "use a local
// password" form, so customer and break-glass accounts log in as before;
// it puts the user name and password in the authorization context, and
// Apple's builtin:authenticate that follows checks them. Replacing (not
// running beside) loginwindow:login is what XCreds and Jamf Connect do:
// two mechanisms that both ask for a password would ask twice.
//
// system.preferences and system.privilege.admin (admin prompts, class
// user): the right becomes class evaluate-mechanisms with
// JitkeyLogin:elevate (the same window, for action elevate),
// builtin:authenticate,privileged (Apple's password check) and
// JitkeyLogin:admin,privileged (the user must be a member of the group the
// original right named); every other key of the right is kept.
//
// Before it changes a right, Install saves the right as it read it, byte
// for byte, in Config.StateDir; Restore writes that copy back. An OS
// update that resets a right also makes the OS's new version the one to
// restore: Repair saves it again before it re-applies jitkey's change.
//
// The package builds and is tested on every platform against mactest's
// fake `security`; it has not been run on a Mac in this repository.
package authdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/macos/command"
	"github.com/jitkey/jitkey/macos/plist"
)

// Plugin is the bundle name of jitkey's authorization plugin
// (/Library/Security/SecurityAgentPlugins/JitkeyLogin.bundle); its
// mechanisms are named Plugin:mechanism.
const Plugin = "JitkeyLogin"

// Mechanisms of the plugin.
const (
	// MechLogin shows jitkey's login window (UI, not privileged).
	MechLogin = Plugin + ":login"
	// MechElevate shows it for an admin prompt.
	MechElevate = Plugin + ":elevate"
	// MechAdmin checks, as root, that the authenticated user is in the
	// right's group.
	MechAdmin = Plugin + ":admin,privileged"
	// builtinAuthenticate is Apple's password check.
	builtinAuthenticate = "builtin:authenticate,privileged"
	loginwindowLogin    = "loginwindow:login"
	loginBegin          = "builtin:login-begin"
)

// Kind says how a right is changed.
type Kind uint8

const (
	// Login: MechLogin replaces loginwindow:login.
	Login Kind = iota + 1
	// Elevate: the right becomes MechElevate, builtin:authenticate,
	// MechAdmin.
	Elevate
)

// Spec names a right and how jitkey changes it.
type Spec struct {
	Right string
	Kind  Kind
}

// DefaultRights are the rights Install changes by default.
func DefaultRights() []Spec {
	return []Spec{
		{Right: "system.login.console", Kind: Login},
		{Right: "system.preferences", Kind: Elevate},
		{Right: "system.privilege.admin", Kind: Elevate},
	}
}

// DefaultStateDir is where the original rights are kept on a Mac.
const DefaultStateDir = "/Library/Application Support/jitkey/authdb"

// Errors of the package.
var (
	// ErrUnsupported: a right has a form Install does not know how to
	// change (it is left as it is).
	ErrUnsupported = errors.New("authdb: right has an unsupported form")
	// ErrNotApplied: a right read back after a write does not hold
	// jitkey's mechanism (or, after Restore, still holds it).
	ErrNotApplied = errors.New("authdb: right not as written")
	// ErrNoRunner is returned by New when Config.Runner is nil.
	ErrNoRunner = errors.New("authdb: config has no Runner")
)

// Config configures a Manager.
type Config struct {
	// Runner runs security(1). Required.
	Runner command.Runner
	// StateDir keeps the original rights; "" means DefaultStateDir. It is
	// created mode 0700.
	StateDir string
	// Rights are the rights managed; nil means DefaultRights().
	Rights []Spec
	// Logger; nil discards.
	Logger *slog.Logger
}

// Manager edits the authorization database.
type Manager struct {
	run    command.Runner
	dir    string
	rights []Spec
	log    *slog.Logger
}

// New returns a Manager. It runs nothing.
func New(cfg Config) (*Manager, error) {
	if cfg.Runner == nil {
		return nil, ErrNoRunner
	}
	m := &Manager{run: cfg.Runner, dir: cfg.StateDir, rights: cfg.Rights, log: cfg.Logger}
	if m.dir == "" {
		m.dir = DefaultStateDir
	}
	if m.rights == nil {
		m.rights = DefaultRights()
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// Status is the state of one managed right.
type Status struct {
	Right string
	// Installed: the right holds jitkey's mechanism.
	Installed bool
	// Saved: the original right is kept in StateDir.
	Saved bool
}

// Read returns the right as security authorizationdb read prints it.
func (m *Manager) Read(ctx context.Context, right string) ([]byte, error) {
	out, _, err := m.run.Run(ctx, nil, "security", "authorizationdb", "read", right)
	if err != nil {
		return nil, fmt.Errorf("authdb: read %s: %w", right, err)
	}
	return out, nil
}

func (m *Manager) write(ctx context.Context, right string, doc []byte) error {
	if _, _, err := m.run.Run(ctx, doc, "security", "authorizationdb", "write", right); err != nil {
		return fmt.Errorf("authdb: write %s: %w", right, err)
	}
	return nil
}

// HasJitkey reports whether a right's property list names one of
// jitkey's mechanisms.
func HasJitkey(doc []byte) (bool, error) {
	v, err := plist.Decode(doc)
	if err != nil {
		return false, fmt.Errorf("authdb: %w", err)
	}
	mech, _ := v.Get("mechanisms")
	ms, _ := mech.Strings()
	return slices.ContainsFunc(ms, ours), nil
}

func ours(mech string) bool { return strings.HasPrefix(mech, Plugin+":") }

// Apply returns the right doc with jitkey's change of kind applied. A
// right that already holds jitkey's mechanism is returned unchanged.
func Apply(doc []byte, kind Kind) ([]byte, error) {
	v, err := plist.Decode(doc)
	if err != nil {
		return nil, fmt.Errorf("authdb: %w", err)
	}
	if v.Kind != plist.Dict {
		return nil, fmt.Errorf("%w: not a dict", ErrUnsupported)
	}
	class, _ := v.Get("class")
	mech, hasMech := v.Get("mechanisms")
	ms, ok := mech.Strings()
	if hasMech && !ok {
		return nil, fmt.Errorf("%w: mechanisms is not a list of strings", ErrUnsupported)
	}
	if slices.ContainsFunc(ms, ours) {
		return doc, nil
	}
	switch {
	case kind == Login && class.Str == "evaluate-mechanisms":
		if i := slices.Index(ms, loginwindowLogin); i >= 0 {
			ms[i] = MechLogin
		} else if i := slices.Index(ms, loginBegin); i >= 0 {
			ms = slices.Insert(ms, i, MechLogin)
		} else {
			return nil, fmt.Errorf("%w: neither %s nor %s in the login right", ErrUnsupported, loginwindowLogin, loginBegin)
		}
	case kind == Elevate && class.Str == "user":
		v.Set("class", plist.StringValue("evaluate-mechanisms"))
		ms = []string{MechElevate, builtinAuthenticate, MechAdmin}
	case kind == Elevate && class.Str == "evaluate-mechanisms":
		ms = slices.Insert(ms, 0, MechElevate)
		if !slices.Contains(ms, builtinAuthenticate) {
			ms = append(ms, builtinAuthenticate)
		}
		ms = append(ms, MechAdmin)
	default:
		return nil, fmt.Errorf("%w: class %q for kind %d", ErrUnsupported, class.Str, kind)
	}
	items := make([]plist.Value, len(ms))
	for i, s := range ms {
		items[i] = plist.StringValue(s)
	}
	v.Set("mechanisms", plist.ArrayValue(items...))
	return plist.Encode(v)
}

// Strip returns the right doc without jitkey's mechanisms, loginwindow:login
// back in MechLogin's place: Restore's fallback when the saved original
// is missing. It cannot undo the class change of an Elevate right and
// reports ErrUnsupported for one.
func Strip(doc []byte) ([]byte, error) {
	v, err := plist.Decode(doc)
	if err != nil {
		return nil, fmt.Errorf("authdb: %w", err)
	}
	mech, _ := v.Get("mechanisms")
	ms, _ := mech.Strings()
	if slices.Contains(ms, MechElevate) && !slices.ContainsFunc(ms, func(s string) bool { return !ours(s) && s != builtinAuthenticate }) {
		return nil, fmt.Errorf("%w: an admin right jitkey rewrote cannot be rebuilt without its saved original", ErrUnsupported)
	}
	var out []plist.Value
	for _, s := range ms {
		switch {
		case s == MechLogin:
			out = append(out, plist.StringValue(loginwindowLogin))
		case !ours(s):
			out = append(out, plist.StringValue(s))
		}
	}
	v.Set("mechanisms", plist.ArrayValue(out...))
	return plist.Encode(v)
}

func (m *Manager) savedPath(right string) string {
	return filepath.Join(m.dir, right+".plist")
}

// validRight refuses right names that are not plain (they become file
// names).
func validRight(right string) error {
	if right == "" || strings.ContainsAny(right, "/\\\x00") || strings.HasPrefix(right, ".") {
		return fmt.Errorf("authdb: invalid right name %q", right)
	}
	return nil
}

func (m *Manager) save(right string, doc []byte) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("authdb: state dir: %w", err)
	}
	tmp, err := os.CreateTemp(m.dir, "."+right+".*")
	if err != nil {
		return fmt.Errorf("authdb: save %s: %w", right, err)
	}
	_, werr := tmp.Write(doc)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("authdb: save %s: %w", right, err)
	}
	if err := os.Rename(tmp.Name(), m.savedPath(right)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("authdb: save %s: %w", right, err)
	}
	return nil
}

// Check reports the state of every managed right without changing any.
func (m *Manager) Check(ctx context.Context) ([]Status, error) {
	var out []Status
	for _, s := range m.rights {
		if err := validRight(s.Right); err != nil {
			return nil, err
		}
		doc, err := m.Read(ctx, s.Right)
		if err != nil {
			return nil, err
		}
		has, err := HasJitkey(doc)
		if err != nil {
			return nil, fmt.Errorf("authdb: %s: %w", s.Right, err)
		}
		_, serr := os.Stat(m.savedPath(s.Right))
		out = append(out, Status{Right: s.Right, Installed: has, Saved: serr == nil})
	}
	return out, nil
}

// Install puts jitkey's mechanisms into every managed right that lacks
// them, saving each right as it was first, and reads each back to check.
// It returns the rights it changed. It is also the repair: run at the
// agent's start and periodically, it finds a right an OS update reset
// (logged as a warning), saves the OS's new version as the one to
// restore, and applies jitkey's change again. A right it cannot change is
// reported and the others are still done.
func (m *Manager) Install(ctx context.Context) ([]string, error) {
	var changed []string
	var errs []error
	for _, s := range m.rights {
		done, err := m.install(ctx, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			changed = append(changed, s.Right)
		}
	}
	return changed, errors.Join(errs...)
}

func (m *Manager) install(ctx context.Context, s Spec) (bool, error) {
	if err := validRight(s.Right); err != nil {
		return false, err
	}
	doc, err := m.Read(ctx, s.Right)
	if err != nil {
		return false, err
	}
	has, err := HasJitkey(doc)
	if err != nil {
		return false, fmt.Errorf("authdb: %s: %w", s.Right, err)
	}
	if has {
		if _, err := os.Stat(m.savedPath(s.Right)); err != nil {
			m.log.WarnContext(ctx, "authorization right holds jitkey's mechanism but its original is not saved; uninstall will strip the mechanism instead", "right", s.Right)
		}
		return false, nil
	}
	next, err := Apply(doc, s.Kind)
	if err != nil {
		return false, fmt.Errorf("authdb: %s: %w", s.Right, err)
	}
	if _, err := os.Stat(m.savedPath(s.Right)); err == nil {
		m.log.WarnContext(ctx, "authorization right lost jitkey's mechanism (reset by an OS update?); repairing", "right", s.Right)
	}
	if err := m.save(s.Right, doc); err != nil {
		return false, err
	}
	if err := m.write(ctx, s.Right, next); err != nil {
		return false, err
	}
	if err := m.verify(ctx, s.Right, true); err != nil {
		return false, err
	}
	m.log.InfoContext(ctx, "authorization right changed", "right", s.Right)
	return true, nil
}

// verify reads the right back and checks for (or against) jitkey's
// mechanism.
func (m *Manager) verify(ctx context.Context, right string, want bool) error {
	doc, err := m.Read(ctx, right)
	if err != nil {
		return err
	}
	has, err := HasJitkey(doc)
	if err != nil {
		return fmt.Errorf("authdb: %s: %w", right, err)
	}
	if has != want {
		return fmt.Errorf("%w: %s", ErrNotApplied, right)
	}
	return nil
}

// Restore puts every managed right back as Install found it (the saved
// copy), or, without one, strips jitkey's mechanisms; then deletes the
// saved copies. Run it before the plugin bundle is removed: a right that
// names a missing plugin fails every login.
func (m *Manager) Restore(ctx context.Context) error {
	var errs []error
	for _, s := range m.rights {
		if err := m.restore(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) restore(ctx context.Context, s Spec) error {
	if err := validRight(s.Right); err != nil {
		return err
	}
	saved, serr := os.ReadFile(m.savedPath(s.Right))
	doc, err := m.Read(ctx, s.Right)
	if err != nil {
		return err
	}
	has, err := HasJitkey(doc)
	if err != nil {
		return fmt.Errorf("authdb: %s: %w", s.Right, err)
	}
	switch {
	case !has:
		// Nothing of jitkey's (never installed, or reset by an update).
	case serr == nil:
		if h, err := HasJitkey(saved); err != nil || h {
			return fmt.Errorf("authdb: saved copy of %s is unusable (%v); not restored", s.Right, err)
		}
		if err := m.write(ctx, s.Right, saved); err != nil {
			return err
		}
	default:
		stripped, err := Strip(doc)
		if err != nil {
			return fmt.Errorf("authdb: %s: %w", s.Right, err)
		}
		if err := m.write(ctx, s.Right, stripped); err != nil {
			return err
		}
	}
	if err := m.verify(ctx, s.Right, false); err != nil {
		return err
	}
	if serr == nil {
		if err := os.Remove(m.savedPath(s.Right)); err != nil {
			return fmt.Errorf("authdb: remove saved %s: %w", s.Right, err)
		}
	}
	if has {
		m.log.InfoContext(ctx, "authorization right restored", "right", s.Right)
	}
	return nil
}

// Equal reports whether two rights are the same property list (the same
// tree; layout aside).
func Equal(a, b []byte) bool {
	va, err1 := plist.Decode(a)
	vb, err2 := plist.Decode(b)
	if err1 != nil || err2 != nil {
		return bytes.Equal(a, b)
	}
	ea, _ := plist.Encode(va)
	eb, _ := plist.Encode(vb)
	return bytes.Equal(ea, eb)
}
