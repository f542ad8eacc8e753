// Package accounts declares the platform boundary for just-in-time admin
// accounts: the Backend interface that the agent core drives and that the
// Linux (shadow-utils), Windows (netapi32, in winhelper), macOS (dscl) and
// Active Directory (LDAP) backends implement, and the rules for the
// account names jitkey creates.
//
// Lifecycle, as the core uses a Backend: absent → Create (disabled, random
// password nobody knows) → SetAdmin(true) + SetPassword + Enable (active;
// the fresh password goes once to the login surface) → Disable +
// EndSessions + SetAdmin(false) + SetPassword (ended: no new login,
// nothing of the account left running, no administrator rights, password
// re-randomised) → Delete after the inactivity period. Backends keep no
// state of their own: the operating system's account database is the
// truth.
package accounts

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jitkey/jitkey/agent/password"
)

// ValidPassword reports whether pw is acceptable to every Backend: not
// empty, and free of NUL, CR and LF.
func ValidPassword(pw password.Secret) bool {
	b := pw.Bytes()
	return len(b) > 0 && !pw.IsZero() && !bytes.ContainsAny(b, "\x00\r\n")
}

// Sentinel errors every Backend returns (wrapped) for the conditions the
// core branches on.
var (
	// ErrExists: Create found an account (or, on Linux, a group) with that
	// name already.
	ErrExists = errors.New("accounts: account exists")
	// ErrNotFound: the named account does not exist.
	ErrNotFound = errors.New("accounts: account not found")
	// ErrInvalidName: the name is not a valid jitkey account name for the
	// backend (see ValidName), or a full name contains forbidden characters.
	ErrInvalidName = errors.New("accounts: invalid account name")
	// ErrInvalidPassword: the password is empty or holds NUL, CR or LF
	// (which line-based platform tools cannot take; generated passwords
	// never do).
	ErrInvalidPassword = errors.New("accounts: invalid password")
)

// Info describes an account as the operating system reports it.
type Info struct {
	// Name is the account name.
	Name string
	// ID is the operating system's identifier of the account: the uid on
	// Linux, the SID on Windows. Callers compare it with the ID recorded
	// when they created the account to tell that very account from one
	// created later under the same name. Linux may give a re-created
	// account the uid of a deleted one (useradd takes the highest uid + 1),
	// so ID alone does not prove identity there; see FullName.
	ID string
	// FullName is the account's full name (Linux: the GECOS field, up to
	// its first comma).
	FullName string
	// Enabled is true when the account can log in: not disabled, not
	// locked, not expired.
	Enabled bool
	// Admin is true when the account is a member of the backend's
	// administrators group (Linux: sudo; Windows: Administrators; AD:
	// Domain Admins).
	Admin bool
	// LastUse is the last login the operating system recorded, or the zero
	// time if it recorded none. Backends document their source.
	LastUse time.Time
}

// JITFullNamePrefix starts the full name of every account jitkey creates.
// It marks the account as jitkey's on the system itself, so that the
// agent can find its accounts without its database (a corrupt store) and
// can tell its account from one made later under the same name and,
// on Linux, the same reused uid.
const JITFullNamePrefix = "jitkey JIT account "

// IsJIT reports whether i carries the full name jitkey gives its accounts.
func (i Info) IsJIT() bool { return strings.HasPrefix(i.FullName, JITFullNamePrefix) }

// Backend manages local or domain accounts on one platform. All methods are
// safe for concurrent use; a name must pass ValidName for the backend's
// maximum length or the method returns ErrInvalidName.
type Backend interface {
	// Create creates a DISABLED account with the given full name and (random)
	// password, not in the admin group. It returns ErrExists if the name is
	// taken. On error no account is left behind where the platform allows.
	Create(ctx context.Context, name, fullName string, pw password.Secret) error
	// SetPassword replaces the account's password; the old one stops working.
	SetPassword(ctx context.Context, name string, pw password.Secret) error
	// Enable lets the account log in with its password.
	Enable(ctx context.Context, name string) error
	// Disable blocks every login to the account, including ones that do not
	// use the password (SSH keys on Linux) and credentials cached for it
	// (sudo's timestamp on Linux). It does not end running sessions:
	// EndSessions does.
	Disable(ctx context.Context, name string) error
	// EndSessions terminates every login session and every process of the
	// account, at once and without asking them to quit, so that nothing
	// opened during a session (a shell, a desktop, a background job)
	// outlives it. The core calls it on every end of a session, right
	// after Disable, so that nothing new can log in meanwhile. It is
	// idempotent and returns nil when the account runs nothing; it returns
	// ErrNotFound if the account does not exist, and an error if anything
	// of the account still runs when it gives up.
	//
	// Linux: systemd-logind's sessions of the user are terminated
	// (loginctl terminate-user) where logind tracks the user; then every
	// process with the account's uid as its real, effective, saved or
	// filesystem uid is stopped (SIGSTOP) and killed (SIGKILL), repeatedly
	// until none is left, so that a forking process cannot escape. It
	// never signals uid 0. Windows (with its backend): WTSLogoffSession on
	// every session of the account (WTSEnumerateSessions), then
	// TerminateProcess on every remaining process whose token is the
	// account's SID. macOS (with its backend): launchctl bootout of the
	// user's domain, then SIGKILL to every remaining process of the uid.
	//
	// It ends what runs as the account, not what the account did with its
	// administrator rights: a program it started as another user (a root
	// cron job, a service) is out of its reach.
	EndSessions(ctx context.Context, name string) error
	// Delete removes the account (and on Linux its home directory).
	Delete(ctx context.Context, name string) error
	// SetAdmin adds the account to, or removes it from, the administrators
	// group. It is idempotent. The core removes the membership at every
	// end of a session and checks with Lookup that it is gone (SPEC.md
	// 6.6 AdminRemoved); no other method may change it.
	SetAdmin(ctx context.Context, name string, admin bool) error
	// Lookup reports the account's state, or ErrNotFound.
	Lookup(ctx context.Context, name string) (Info, error)
}

// Notifier is implemented by backends that can put a message in front of
// whoever uses an account right now: the lifecycle warns through it before
// a session's hard cap ends it (SPEC.md 11.13). A backend without it warns
// nobody.
type Notifier interface {
	// Notify shows message to the account's interactive sessions (Linux:
	// written to every terminal the account owns, as write(1) and wall(1)
	// do). It returns nil when the account has none, ErrNotFound when the
	// account does not exist. The message is plain text; the backend
	// removes control characters.
	Notify(ctx context.Context, name, message string) error
}

// Announcer is implemented by backends that can put a message in front of
// the computer's users: the lifecycle announces a technician session
// when the policy asks for an end-user notice (SPEC.md 11.13).
type Announcer interface {
	// Announce shows message to the interactive sessions of the
	// computer's regular users (Linux: written to every terminal a uid
	// of 1000 or more owns, as wall(1) does for logged-in users). It
	// returns nil when there are none.
	Announce(ctx context.Context, message string) error
}
