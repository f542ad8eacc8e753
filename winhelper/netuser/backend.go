// Package netuser is jitkey's Windows account backend: local accounts
// managed through netapi32 (NetUserAdd, NetUserSetInfo, NetUserDel,
// NetLocalGroupAddMembers/DelMembers on the group whose SID is
// S-1-5-32-544), sessions ended through wtsapi32 (WTSLogoffSession).
//
// The Backend's logic is written against the API interface, whose
// methods are the Windows functions with their documented status codes.
// NewSystemAPI (Windows only; elsewhere errors.ErrUnsupported) calls the
// real functions through mkwinsyscall-generated stubs; the netusertest
// package is a fake that follows their documentation, so the logic and
// the accounts conformance suite run on Linux.
package netuser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
)

// ErrStatus is a Windows status code an API call returned.
type ErrStatus uint32

// Error implements error.
func (e ErrStatus) Error() string {
	if n, ok := statusNames[uint32(e)]; ok {
		return n
	}
	return fmt.Sprintf("status %d", uint32(e))
}

var statusNames = map[uint32]string{
	ErrorAccessDenied:     "ERROR_ACCESS_DENIED (5)",
	ErrorInvalidParameter: "ERROR_INVALID_PARAMETER (87)",
	ErrorMemberNotInAlias: "ERROR_MEMBER_NOT_IN_ALIAS (1377)",
	ErrorMemberInAlias:    "ERROR_MEMBER_IN_ALIAS (1378)",
	NERRGroupNotFound:     "NERR_GroupNotFound (2220)",
	NERRUserNotFound:      "NERR_UserNotFound (2221)",
	NERRUserExists:        "NERR_UserExists (2224)",
	NERRPasswordTooShort:  "NERR_PasswordTooShort (2245)",
	NERRBadUsername:       "NERR_BadUsername (2202)",
}

// ErrPasswordPolicy: the password does not meet the computer's password
// policy (NERR_PasswordTooShort, which Windows returns for length,
// complexity and history alike).
var ErrPasswordPolicy = errors.New("netuser: password does not meet the password policy")

// ErrSessionsRemain: EndSessions gave up while something of the account
// still ran.
var ErrSessionsRemain = errors.New("netuser: sessions or processes of the account remain")

// Config configures a Backend.
type Config struct {
	// API is the Windows API (NewSystemAPI) or a fake.
	API API
	// Logger receives one record per account change; nil discards.
	Logger *slog.Logger
	// Rounds bounds EndSessions' logoff/terminate passes (default 5).
	Rounds int
	// Now is the clock account expiry is compared with (default
	// time.Now).
	Now func() time.Time
}

// Backend implements accounts.Backend on the local SAM.
type Backend struct {
	api    API
	log    *slog.Logger
	rounds int
	now    func() time.Time
}

var _ accounts.Backend = (*Backend)(nil)

// New returns a Backend over cfg.API.
func New(cfg Config) (*Backend, error) {
	if cfg.API == nil {
		return nil, errors.New("netuser: no API")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Backend{api: cfg.API, log: log, rounds: cfg.Rounds, now: cfg.Now}, nil
}

// status turns a status code into an error for op on name, mapping the
// codes callers branch on to accounts' sentinels.
func status(op, name string, code uint32) error {
	switch code {
	case NERRSuccess:
		return nil
	case NERRUserNotFound:
		return fmt.Errorf("netuser: %s %s: %w", op, name, accounts.ErrNotFound)
	case NERRUserExists:
		return fmt.Errorf("netuser: %s %s: %w", op, name, accounts.ErrExists)
	case NERRPasswordTooShort:
		return fmt.Errorf("netuser: %s %s: %w (%w)", op, name, ErrPasswordPolicy, ErrStatus(code))
	}
	return fmt.Errorf("netuser: %s %s: %w", op, name, ErrStatus(code))
}

func checkName(name string) error {
	if !accounts.ValidName(name, accounts.MaxNameWindows) {
		return fmt.Errorf("netuser: %q: %w", name, accounts.ErrInvalidName)
	}
	return nil
}

func checkPassword(pw password.Secret) error {
	if !accounts.ValidPassword(pw) {
		return fmt.Errorf("netuser: %w", accounts.ErrInvalidPassword)
	}
	return nil
}

// validFullName refuses control characters and the characters the other
// backends cannot store (':' ends a GECOS field); Windows allows up to 256
// characters.
func validFullName(s string) bool {
	return len(s) <= 256 && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ':' })
}

// Create implements accounts.Backend: NetUserAdd with UF_ACCOUNTDISABLE
// (the account never exists enabled), then the full name; if that fails
// the account is deleted again.
func (b *Backend) Create(ctx context.Context, name, fullName string, pw password.Secret) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !validFullName(fullName) {
		return fmt.Errorf("netuser: full name: %w", accounts.ErrInvalidName)
	}
	if err := checkPassword(pw); err != nil {
		return err
	}
	flags := uint32(UFScript | UFNormalAccount | UFAccountDisable | UFDontExpirePasswd | UFPasswdCantChange)
	if err := status("create", name, b.api.UserAdd(name, pw.Bytes(), flags)); err != nil {
		return err
	}
	if code := b.api.UserSetFullName(name, fullName); code != NERRSuccess {
		err := status("set full name of", name, code)
		if del := b.api.UserDel(name); del != NERRSuccess {
			return errors.Join(err, status("delete half-created", name, del))
		}
		return err
	}
	b.log.InfoContext(ctx, "windows account created (disabled)", "account", name)
	return nil
}

// SetPassword implements accounts.Backend (NetUserSetInfo level 1003).
func (b *Backend) SetPassword(ctx context.Context, name string, pw password.Secret) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkPassword(pw); err != nil {
		return err
	}
	return status("set password of", name, b.api.UserSetPassword(name, pw.Bytes()))
}

// setFlags reads the flags and writes them back changed, if they change.
func (b *Backend) setFlags(name string, change func(uint32) uint32) error {
	if err := checkName(name); err != nil {
		return err
	}
	info, code := b.api.UserGetInfo(name)
	if code != NERRSuccess {
		return status("read", name, code)
	}
	flags := change(info.Flags)
	if flags == info.Flags {
		return nil
	}
	return status("set flags of", name, b.api.UserSetFlags(name, flags))
}

// Enable implements accounts.Backend: clears UF_ACCOUNTDISABLE and
// UF_LOCKOUT.
func (b *Backend) Enable(ctx context.Context, name string) error {
	if err := b.setFlags(name, func(f uint32) uint32 { return f &^ (UFAccountDisable | UFLockout) }); err != nil {
		return err
	}
	b.log.InfoContext(ctx, "windows account enabled", "account", name)
	return nil
}

// Disable implements accounts.Backend: sets UF_ACCOUNTDISABLE. Windows
// refuses every new logon of a disabled account (password, smart card,
// RDP, network).
func (b *Backend) Disable(ctx context.Context, name string) error {
	if err := b.setFlags(name, func(f uint32) uint32 { return f | UFAccountDisable }); err != nil {
		return err
	}
	b.log.InfoContext(ctx, "windows account disabled", "account", name)
	return nil
}

// EndSessions implements accounts.Backend: WTSLogoffSession on every
// session whose user is the account, then TerminateProcess on every
// process whose token user is the account's SID, repeated until none is
// left or Config.Rounds passes are done.
func (b *Backend) EndSessions(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	info, code := b.api.UserGetInfo(name)
	if code != NERRSuccess {
		return status("read", name, code)
	}
	for range b.rounds {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("netuser: end sessions of %s: %w", name, err)
		}
		left, err := b.endPass(ctx, info)
		if err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
	}
	return fmt.Errorf("netuser: end sessions of %s: %w", name, ErrSessionsRemain)
}

// endPass logs off the account's sessions and terminates its processes
// once; it returns how many it found.
func (b *Backend) endPass(ctx context.Context, info UserInfo) (int, error) {
	found := 0
	sessions, code := b.api.Sessions()
	if code != NERRSuccess {
		return 0, status("enumerate sessions for", info.Name, code)
	}
	for _, s := range sessions {
		if !strings.EqualFold(s.User, info.Name) {
			continue
		}
		found++
		if code := b.api.LogoffSession(s.ID); code != NERRSuccess {
			b.log.WarnContext(ctx, "windows session logoff failed", "account", info.Name, "session", s.ID, "err", ErrStatus(code))
			continue
		}
		b.log.InfoContext(ctx, "windows session logged off", "account", info.Name, "session", s.ID)
	}
	procs, code := b.api.Processes()
	if code != NERRSuccess {
		return 0, status("enumerate processes for", info.Name, code)
	}
	for _, p := range procs {
		if p.SID == "" || p.SID != info.SID {
			continue
		}
		found++
		if code := b.api.TerminateProcess(p.PID); code != NERRSuccess {
			b.log.WarnContext(ctx, "windows process not terminated", "account", info.Name, "pid", p.PID, "err", ErrStatus(code))
		}
	}
	return found, nil
}

// Delete implements accounts.Backend (NetUserDel). Windows keeps the
// profile directory of a deleted account; the agent leaves it (it may
// hold what the technician saved).
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := status("delete", name, b.api.UserDel(name)); err != nil {
		return err
	}
	b.log.InfoContext(ctx, "windows account deleted", "account", name)
	return nil
}

// SetAdmin implements accounts.Backend: NetLocalGroupAddMembers or
// NetLocalGroupDelMembers on the Administrators group (found by its SID,
// whatever its local name), by the account's SID.
// ERROR_MEMBER_IN_ALIAS and ERROR_MEMBER_NOT_IN_ALIAS mean it already is
// as asked.
func (b *Backend) SetAdmin(ctx context.Context, name string, admin bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	info, code := b.api.UserGetInfo(name)
	if code != NERRSuccess {
		return status("read", name, code)
	}
	group, code := b.api.AdminsGroup()
	if code != NERRSuccess {
		return status("look up the Administrators group for", name, code)
	}
	if admin {
		code = b.api.LocalGroupAddMember(group, info.SID)
		if code == ErrorMemberInAlias {
			code = NERRSuccess
		}
	} else {
		code = b.api.LocalGroupDelMember(group, info.SID)
		if code == ErrorMemberNotInAlias {
			code = NERRSuccess
		}
	}
	if err := status("set admin membership of", name, code); err != nil {
		return err
	}
	b.log.InfoContext(ctx, "windows administrators membership set", "account", name, "admin", admin)
	return nil
}

// Lookup implements accounts.Backend (NetUserGetInfo level 4 and
// NetUserGetLocalGroups). LastUse is usri4_last_logon, which this
// computer records at each interactive or network logon.
func (b *Backend) Lookup(ctx context.Context, name string) (accounts.Info, error) {
	if err := checkName(name); err != nil {
		return accounts.Info{}, err
	}
	info, code := b.api.UserGetInfo(name)
	if code != NERRSuccess {
		return accounts.Info{}, status("read", name, code)
	}
	groups, code := b.api.UserLocalGroups(name)
	if code != NERRSuccess {
		return accounts.Info{}, status("read groups of", name, code)
	}
	admins, code := b.api.AdminsGroup()
	if code != NERRSuccess {
		return accounts.Info{}, status("look up the Administrators group for", name, code)
	}
	out := accounts.Info{
		Name:     info.Name,
		ID:       info.SID,
		FullName: info.FullName,
		Enabled:  info.Flags&(UFAccountDisable|UFLockout) == 0 && !b.expired(info.AcctExpires),
		Admin:    slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(g, admins) }),
	}
	if info.LastLogon != 0 {
		out.LastUse = time.Unix(int64(info.LastLogon), 0).UTC()
	}
	return out, nil
}

// expired reports whether an account expiry (usri4_acct_expires) has
// passed. The Backend never sets one; an administrator may have.
func (b *Backend) expired(at uint32) bool {
	return at != TimeqForever && b.now().Unix() >= int64(at)
}
