package netuser

// The Windows calls (syscall_windows.go) are generated; `make check` compares.
//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go

// API is the part of netapi32, advapi32 and wtsapi32 the Backend calls,
// one method per Windows function (or pair), with Windows' own status
// codes as results. The real one (NewSystemAPI, Windows only) calls the
// functions; netusertest.SAM is a fake that follows their documentation,
// so the Backend's logic runs and is tested on any OS.
//
// Methods return a Win32 or NERR status code: 0 (NERR_Success) on success.
type API interface {
	// UserAdd is NetUserAdd(NULL, 1, USER_INFO_1{name, pw, USER_PRIV_USER,
	// flags}): NERR_UserExists, NERR_PasswordTooShort, ERROR_ACCESS_DENIED.
	UserAdd(name string, pw []byte, flags uint32) uint32
	// UserSetFullName is NetUserSetInfo level 1011 (USER_INFO_1011).
	UserSetFullName(name, fullName string) uint32
	// UserSetPassword is NetUserSetInfo level 1003 (USER_INFO_1003).
	UserSetPassword(name string, pw []byte) uint32
	// UserSetFlags is NetUserSetInfo level 1008 (USER_INFO_1008).
	UserSetFlags(name string, flags uint32) uint32
	// UserGetInfo is NetUserGetInfo level 4 (USER_INFO_4), the fields the
	// Backend reads: NERR_UserNotFound.
	UserGetInfo(name string) (UserInfo, uint32)
	// UserDel is NetUserDel: NERR_UserNotFound.
	UserDel(name string) uint32
	// UserLocalGroups is NetUserGetLocalGroups level 0, the names of the
	// local groups the user is a direct member of.
	UserLocalGroups(name string) ([]string, uint32)
	// LocalGroupAddMember is NetLocalGroupAddMembers level 0 with one SID:
	// ERROR_MEMBER_IN_ALIAS when it already is a member,
	// NERR_GroupNotFound.
	LocalGroupAddMember(group, sid string) uint32
	// LocalGroupDelMember is NetLocalGroupDelMembers level 0 with one
	// SID: ERROR_MEMBER_NOT_IN_ALIAS when it is not a member.
	LocalGroupDelMember(group, sid string) uint32
	// AdminsGroup is the name of the builtin Administrators group
	// (localised: "Administratoren" on German Windows), looked up from
	// its well-known SID S-1-5-32-544 (CreateWellKnownSid +
	// LookupAccountSidW).
	AdminsGroup() (string, uint32)
	// Sessions is WTSEnumerateSessionsW on the local server, with each
	// session's user (WTSQuerySessionInformationW, WTSUserName).
	Sessions() ([]Session, uint32)
	// LogoffSession is WTSLogoffSession(WTS_CURRENT_SERVER_HANDLE, id,
	// TRUE).
	LogoffSession(id uint32) uint32
	// Processes lists the processes (CreateToolhelp32Snapshot) with the
	// SID of each one's token user (OpenProcessToken, TokenUser); "" where
	// the token cannot be opened.
	Processes() ([]Process, uint32)
	// TerminateProcess is OpenProcess(PROCESS_TERMINATE) + TerminateProcess.
	TerminateProcess(pid uint32) uint32
}

// UserInfo holds the USER_INFO_4 fields the Backend reads.
type UserInfo struct {
	Name     string
	FullName string
	Flags    uint32
	// SID in string form (S-1-5-21-...).
	SID string
	// LastLogon is seconds since 1970-01-01 UTC; 0 means never.
	LastLogon uint32
	// AcctExpires is seconds since 1970-01-01 UTC, or TimeqForever.
	AcctExpires uint32
}

// Session is one Remote Desktop Services session (console included).
type Session struct {
	ID uint32
	// User is the session's user name, "" for a session without a user.
	User string
}

// Process is one running process.
type Process struct {
	PID uint32
	// SID of the process token's user; "" if it could not be read.
	SID string
}

// Windows status codes the Backend and the fake use (lmerr.h, winerror.h).
const (
	NERRSuccess           = 0
	ErrorAccessDenied     = 5    // ERROR_ACCESS_DENIED
	ErrorInvalidParameter = 87   // ERROR_INVALID_PARAMETER
	ErrorMemberNotInAlias = 1377 // ERROR_MEMBER_NOT_IN_ALIAS
	ErrorMemberInAlias    = 1378 // ERROR_MEMBER_IN_ALIAS
	ErrorLogonFailure     = 1326 // ERROR_LOGON_FAILURE
	ErrorAccountDisabled  = 1331 // ERROR_ACCOUNT_DISABLED
	ErrorAccountLockedOut = 1909 // ERROR_ACCOUNT_LOCKED_OUT
	NERRGroupNotFound     = 2220 // NERR_GroupNotFound
	NERRUserNotFound      = 2221 // NERR_UserNotFound
	NERRUserExists        = 2224 // NERR_UserExists
	NERRPasswordTooShort  = 2245 // NERR_PasswordTooShort
	NERRBadUsername       = 2202 // NERR_BadUsername
)

// USER_INFO flags (lmaccess.h) the Backend sets or reads.
const (
	UFScript           = 0x0001
	UFAccountDisable   = 0x0002
	UFLockout          = 0x0010
	UFPasswdCantChange = 0x0040
	UFNormalAccount    = 0x0200
	UFDontExpirePasswd = 0x10000
	UFPasswordExpired  = 0x800000
	// TimeqForever in AcctExpires: the account never expires.
	TimeqForever = 0xFFFFFFFF
)

// AdministratorsSID is the well-known SID of BUILTIN\Administrators.
const AdministratorsSID = "S-1-5-32-544"
