// Package pipe is the agent's IPC transport on Windows: a named pipe
// (default \\.\pipe\jitkey-agent) carrying the frames of SPEC.md 5.6 and
// the messages of 5.7, exactly as the Unix socket of package agent/ipc
// does on Linux. Accepted connections are *ipc.Conn, so the agent's
// ipcserver serves both.
//
// Who may connect is checked twice, and every admitted client is
// classified (SPEC.md 5.7 Windows). The pipe's security descriptor
// (DefaultSDDL) grants LocalSystem all access and interactive users
// (INTERACTIVE, S-1-5-4) only reading and writing data (UserAccess, not
// FILE_CREATE_PIPE_INSTANCE), so Windows refuses anyone else's
// CreateFile; and for every connection the listener impersonates the
// client (ImpersonateNamedPipeClient), reads its token (Classify) and
// drops the connection before reading a byte unless the token's user is
// LocalSystem (ipc.PeerSystem: LogonUI and consent.exe, which host
// credential providers) or an interactive local or domain user
// (ipc.PeerUser: the Remote Desktop client's CredUI prompt, which the
// agent serves only a remote desktop login). The first instance is
// created with FILE_FLAG_FIRST_PIPE_INSTANCE, so the agent fails to start
// rather than serve under a name another process created first; remote
// clients are rejected (PIPE_REJECT_REMOTE_CLIENTS), and a token with
// the NETWORK group is refused as well.
//
// The decision logic (Allowed, Classify) is portable; the transport is
// Windows only and returns errors.ErrUnsupported elsewhere.
package pipe

// The Windows calls (syscall_windows.go) are generated; `make check` compares.
//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/agent/ipc"
)

// DefaultName is the agent's pipe.
const DefaultName = `\\.\pipe\jitkey-agent`

// DefaultSDDL protects the pipe: a protected DACL (no inherited entries)
// with two entries, generic all for LocalSystem and UserAccess
// (0x12019b) for INTERACTIVE. No mandatory label: Windows' default
// (medium, no write up) keeps low-integrity and AppContainer processes
// out.
const DefaultSDDL = "D:P(A;;GA;;;SY)(A;;0x12019b;;;IU)"

// SystemOnlySDDL admits LocalSystem only (Config.SystemOnly).
const SystemOnlySDDL = "D:P(A;;GA;;;SY)"

// Well-known SIDs.
const (
	// SIDSystem is the LocalSystem account's SID.
	SIDSystem = "S-1-5-18"
	// SIDInteractive is the INTERACTIVE group, present in the token of
	// every console and Remote Desktop logon (SDDL "IU").
	SIDInteractive = "S-1-5-4"
	// SIDNetwork is the NETWORK group, present in network logons' tokens.
	SIDNetwork = "S-1-5-2"
)

// Access rights of a file object (winnt.h) as a pipe client asks for them.
const (
	fileReadData           = 0x0001
	fileWriteData          = 0x0002
	fileCreatePipeInstance = 0x0004 // = FILE_APPEND_DATA: lets a holder create server instances
	fileReadEA             = 0x0008
	fileWriteEA            = 0x0010
	fileReadAttributes     = 0x0080
	fileWriteAttributes    = 0x0100
	readControl            = 0x00020000
	synchronize            = 0x00100000

	// fileGenericRead is FILE_GENERIC_READ.
	fileGenericRead = readControl | fileReadData | fileReadAttributes | fileReadEA | synchronize
	// fileGenericWrite is FILE_GENERIC_WRITE; it includes
	// FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE.
	fileGenericWrite = readControl | fileWriteData | fileWriteAttributes | fileWriteEA | fileCreatePipeInstance | synchronize
)

// UserAccess is what DefaultSDDL grants INTERACTIVE: FILE_GENERIC_READ |
// FILE_GENERIC_WRITE without FILE_CREATE_PIPE_INSTANCE (0x12019b), so a
// user can talk to the agent's pipe but cannot add an instance of its
// own under the agent's name.
const UserAccess = (fileGenericRead | fileGenericWrite) &^ fileCreatePipeInstance

// ClientAccess is the access a client asks for in CreateFile (Dial, and
// the credential provider): FILE_GENERIC_READ | FILE_WRITE_DATA. It is
// within UserAccess; GENERIC_WRITE is not (it maps to FILE_GENERIC_WRITE)
// and fails for a user with ERROR_ACCESS_DENIED.
const ClientAccess = fileGenericRead | fileWriteData

// Config configures a Listener.
type Config struct {
	// Name of the pipe (default DefaultName).
	Name string
	// SDDL is the pipe's security descriptor (default DefaultSDDL).
	SDDL string
	// AllowedSIDs are the token user SIDs Accept admits as
	// ipc.PeerSystem (and, for Dial, the users the agent may run as);
	// nil means SYSTEM only.
	AllowedSIDs []string
	// SystemOnly admits no users: SDDL SystemOnlySDDL (unless SDDL is
	// set) and Classify refuses every token not in AllowedSIDs. The
	// Remote Desktop client's prompt then cannot reach the agent.
	SystemOnly bool
	// Logger receives a record for each refused connection; nil
	// discards.
	Logger *slog.Logger
}

// ErrRefused: a client's token user is not allowed.
var ErrRefused = errors.New("pipe: client not allowed")

// Allowed reports whether a client whose token user is sid may talk to
// the agent. An empty SID (the token could not be read) is never allowed.
func Allowed(allowed []string, sid string) bool {
	return sid != "" && slices.Contains(allowed, sid)
}

// Token is what Classify reads from a client's impersonation token.
type Token struct {
	// User is the token user's SID ("" when it could not be read).
	User string
	// Groups are the token's groups with their SE_GROUP_* attributes.
	Groups []Group
}

// Group is one token group.
type Group struct {
	SID        string
	Attributes uint32
}

// Token group attributes (winnt.h).
const (
	groupEnabled    = 0x00000004 // SE_GROUP_ENABLED
	groupDenyOnlyAt = 0x00000010 // SE_GROUP_USE_FOR_DENY_ONLY
)

// has reports whether the token has sid as an enabled group that is not
// deny-only.
func (t Token) has(sid string) bool {
	for _, g := range t.Groups {
		if g.SID == sid && g.Attributes&groupEnabled != 0 && g.Attributes&groupDenyOnlyAt == 0 {
			return true
		}
	}
	return false
}

// Classify decides who a pipe client is from its token: ipc.PeerSystem
// when its user is in system (AllowedSIDs: LocalSystem by default);
// ipc.PeerUser, unless systemOnly, when its user is a local, domain or
// Entra ID account (S-1-5-21-..., S-1-12-1-...) whose token has the
// INTERACTIVE group enabled and not the NETWORK group; otherwise an error
// wrapping ErrRefused. The caller refuses the connection on error.
func Classify(system []string, systemOnly bool, tok Token) (ipc.PeerKind, error) {
	if tok.User == "" {
		return ipc.PeerUser, fmt.Errorf("%w: no token user", ErrRefused)
	}
	if Allowed(system, tok.User) {
		return ipc.PeerSystem, nil
	}
	switch {
	case systemOnly:
		return ipc.PeerUser, fmt.Errorf("%w: %s: the pipe admits only SYSTEM", ErrRefused, tok.User)
	case !strings.HasPrefix(tok.User, "S-1-5-21-") && !strings.HasPrefix(tok.User, "S-1-12-1-"):
		return ipc.PeerUser, fmt.Errorf("%w: %s: not a user account", ErrRefused, tok.User)
	case tok.has(SIDNetwork):
		return ipc.PeerUser, fmt.Errorf("%w: %s: a network logon", ErrRefused, tok.User)
	case !tok.has(SIDInteractive):
		return ipc.PeerUser, fmt.Errorf("%w: %s: not an interactive logon", ErrRefused, tok.User)
	}
	return ipc.PeerUser, nil
}

// Descriptor returns the security descriptor (SDDL) Listen gives the pipe:
// c.SDDL if set, else SystemOnlySDDL with SystemOnly, else DefaultSDDL.
func (c Config) Descriptor() string {
	switch {
	case c.SDDL != "":
		return c.SDDL
	case c.SystemOnly:
		return SystemOnlySDDL
	}
	return DefaultSDDL
}

// SystemOnlyFile is the file whose presence in the agent's state
// directory makes the agent's pipe SYSTEM-only (Config.SystemOnly): an
// administrator's switch for computers where remote desktop prompts must
// not reach the agent (SPEC.md 5.7 Windows).
const SystemOnlyFile = "pipe-system-only"

// SystemOnlyIn reports whether stateDir holds SystemOnlyFile. An error
// other than its absence is returned, and the caller should not start
// the pipe less strictly than asked. stateDir must be a directory: on
// Windows a path under a file or a missing directory reads as "not
// found" too, which would say "off" for a switch that could not be read.
func SystemOnlyIn(stateDir string) (bool, error) {
	fi, err := os.Stat(stateDir)
	if err != nil {
		return false, fmt.Errorf("pipe: system-only switch: %w", err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("pipe: system-only switch: %s is not a directory", stateDir)
	}
	_, err = os.Lstat(filepath.Join(stateDir, SystemOnlyFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("pipe: system-only switch: %w", err)
}
