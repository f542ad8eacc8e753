//go:build linux

package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/password"
)

// PAMService is the PAM service the sandbox installs for logins: pam_unix
// without failure delay for auth and account (password and expiry/lock
// checks) and pam_lastlog for sessions, so logins show in Info.LastUse.
const PAMService = "jitkey-sandbox"

const pamServiceFile = `# jitkey sandbox login service (written by agent/accounts/linux/sandbox).
auth     required pam_unix.so nodelay
account  required pam_unix.so
session  required pam_lastlog.so silent
`

// mountScript runs inside the new mount namespace: bind the sandbox
// directories over the real ones, then exec the command. /etc comes last so
// that mount itself runs with the host's configuration.
const mountScript = `set -e
mount --bind -- "$1" /home
mount --bind -- "$2" /var/log
mount --bind -- "$3" /var/mail
mount --bind -- "$4" /etc
shift 4
exec "$@"`

// Config configures a Sandbox.
type Config struct {
	// Dir holds the sandbox; it is created (mode 0700) and populated if
	// missing, and reused as it is otherwise.
	Dir string
	// Source is the directory copied to Dir/etc on first use; "" means /etc.
	Source string
	// Logger receives setup messages; nil discards.
	Logger *slog.Logger
	// Rand picks the sandbox's uid range when it is created; nil means
	// crypto/rand.
	Rand io.Reader
}

// The uid (and gid) range of accounts created in a sandbox: UIDRange ids
// from a random multiple of UIDRange in [MinUID, MaxUID). The accounts'
// processes are the host's (Backend.EndSessions kills them by uid), so the
// range keeps them apart from the host's users, which get low uids, and
// from the accounts of other sandboxes, which a copied /etc would
// otherwise number alike.
const (
	MinUID   = 1_000_000
	MaxUID   = 10_000_000
	UIDRange = 1000
)

// Sandbox runs commands against its own /etc. It implements linux.Runner.
// Safe for concurrent use.
type Sandbox struct {
	dir string
	log *slog.Logger
}

var _ linux.Runner = (*Sandbox)(nil)

// ErrBadArgument is returned by PAMTest for a service or user name that
// pamtester would take for an option.
var ErrBadArgument = errors.New("sandbox: bad argument")

// ErrNoDir is returned by Open when Config.Dir is empty.
var ErrNoDir = errors.New("sandbox: config has no Dir")

// Open prepares the sandbox directory and checks that commands run in it:
// it copies the host's /etc on first use (cp -a), creates home, var/log
// (with empty lastlog, faillog, wtmp, btmp) and var/mail, installs the
// PAMService file and makes sure the sudo group exists.
func Open(ctx context.Context, cfg Config) (*Sandbox, error) {
	if cfg.Dir == "" {
		return nil, ErrNoDir
	}
	if cfg.Source == "" {
		cfg.Source = "/etc"
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: resolve dir: %w", err)
	}
	s := &Sandbox{dir: dir, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if err := s.populate(ctx, cfg.Source, cfg.Rand); err != nil {
		return nil, err
	}
	if err := s.ensureGroup(ctx, "sudo"); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the sandbox's absolute directory.
func (s *Sandbox) Dir() string { return s.dir }

// Path returns the host path of a file as the sandbox sees it at abs
// (for example Path("/etc/shadow")). It does not check that abs is inside
// one of the bound directories.
func (s *Sandbox) Path(abs string) string { return filepath.Join(s.dir, abs) }

func (s *Sandbox) populate(ctx context.Context, source string, r io.Reader) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: create dir: %w", err)
	}
	etc := filepath.Join(s.dir, "etc")
	if _, err := os.Stat(etc); errors.Is(err, fs.ErrNotExist) {
		tmp := etc + ".tmp"
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("sandbox: remove stale copy: %w", err)
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", "--", source, tmp).CombinedOutput(); err != nil {
			return fmt.Errorf("sandbox: copy %s: %w: %s", source, err, out)
		}
		if err := setUIDRange(filepath.Join(tmp, "login.defs"), r); err != nil {
			return err
		}
		if err := os.Rename(tmp, etc); err != nil {
			return fmt.Errorf("sandbox: install etc copy: %w", err)
		}
		s.log.InfoContext(ctx, "sandbox created", "dir", s.dir, "source", source)
	} else if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{
		{"home", 0o755},
		{"var/log", 0o755},
		{"var/mail", 0o2775},
	} {
		p := filepath.Join(s.dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("sandbox: create %s: %w", d.path, err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("sandbox: chmod %s: %w", d.path, err)
		}
	}
	for _, f := range []string{"lastlog", "faillog", "wtmp", "btmp"} {
		fh, err := os.OpenFile(filepath.Join(s.dir, "var/log", f), os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return fmt.Errorf("sandbox: create var/log/%s: %w", f, err)
		}
		if err := fh.Close(); err != nil {
			return fmt.Errorf("sandbox: create var/log/%s: %w", f, err)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "pam.d", PAMService), []byte(pamServiceFile), 0o644); err != nil {
		return fmt.Errorf("sandbox: install pam service: %w", err)
	}
	return nil
}

// setUIDRange rewrites the UID_ and GID_ limits of login.defs so that
// useradd numbers the sandbox's accounts in a range of its own (see
// MinUID); system ids keep their usual range.
func setUIDRange(path string, r io.Reader) error {
	n, err := rand.Int(r, big.NewInt((MaxUID-MinUID)/UIDRange))
	if err != nil {
		return fmt.Errorf("sandbox: pick uid range: %w", err)
	}
	first := MinUID + int(n.Int64())*UIDRange
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sandbox: read login.defs: %w", err)
	}
	limits := []string{"UID_MIN", "UID_MAX", "GID_MIN", "GID_MAX", "SYS_UID_MAX", "SYS_GID_MAX"}
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 0 && slices.Contains(limits, f[0]) {
			continue
		}
		out.WriteString(line)
	}
	fmt.Fprintf(&out, "\n# jitkey sandbox: accounts get ids of their own (agent/accounts/linux/sandbox).\n"+
		"UID_MIN %d\nUID_MAX %d\nGID_MIN %d\nGID_MAX %d\nSYS_UID_MAX 999\nSYS_GID_MAX 999\n",
		first, first+UIDRange-1, first, first+UIDRange-1)
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		return fmt.Errorf("sandbox: write login.defs: %w", err)
	}
	return nil
}

// ensureGroup creates group in the sandbox if it is missing.
func (s *Sandbox) ensureGroup(ctx context.Context, group string) error {
	_, err := s.Run(ctx, nil, "getent", "group", group)
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*linux.CommandError](err); !ok || ce.Code != 2 {
		return fmt.Errorf("sandbox: check group %s: %w", group, err)
	}
	if _, err := s.Run(ctx, nil, "groupadd", "--system", "--", group); err != nil {
		return fmt.Errorf("sandbox: create group %s: %w", group, err)
	}
	s.log.InfoContext(ctx, "sandbox group created", "group", group)
	return nil
}

// Run implements linux.Runner: it runs name args in a fresh private mount
// namespace (CLONE_NEWNS with / made recursively private) with the sandbox's directories bound over the host's. Errors
// are *linux.CommandError naming name and args (not the wrapper).
func (s *Sandbox) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	return linux.Exec(ctx, stdin, name, args, s.Command(ctx, name, args...))
}

// Command returns a command that runs name args in the sandbox as Run
// does, for callers that talk to the process while it runs (login
// surfaces driven by tests: pamtester, sshd, sudo).
func (s *Sandbox) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := []string{"-c", mountScript, "sandbox",
		s.Path("/home"), s.Path("/var/log"), s.Path("/var/mail"), s.Path("/etc"), name}
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, "/bin/sh", argv...)
	// The same as unshare --mount --propagation private: a new mount
	// namespace, in which the Go runtime makes / recursively private before
	// running the shell, so no bind mount propagates back to the host.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd
}

// PAMTest runs pamtester SERVICE USER OPS... in the sandbox, answering the
// password prompt with pw on stdin. It returns nil exactly when every
// operation succeeds; the error carries pamtester's message (which never
// echoes the password).
func (s *Sandbox) PAMTest(ctx context.Context, service, user string, pw password.Secret, ops ...string) error {
	if strings.HasPrefix(service, "-") || strings.HasPrefix(user, "-") {
		return fmt.Errorf("sandbox: pamtester: %w: %q %q", ErrBadArgument, service, user)
	}
	in := make([]byte, 0, pw.Len()+1)
	in = append(in, pw.Bytes()...)
	in = append(in, '\n')
	defer clear(in)
	args := append([]string{service, user}, ops...)
	if _, err := s.Run(ctx, in, "pamtester", args...); err != nil {
		return fmt.Errorf("sandbox: pamtester %s %s: %w", service, user, err)
	}
	return nil
}

// Login is a full login through PAMService: authenticate, acct_mgmt (lock
// and expiry), open_session and close_session (which records the login
// in the sandbox's lastlog).
func (s *Sandbox) Login(ctx context.Context, user string, pw password.Secret) error {
	return s.PAMTest(ctx, PAMService, user, pw, "authenticate", "acct_mgmt", "open_session", "close_session")
}
