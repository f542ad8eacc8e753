// Package pipe is the agent's IPC transport on Windows: a named pipe
// (default \\.\pipe\jitkey-agent) carrying the frames of SPEC.md 5.6 and
// the messages of 5.7, exactly as the Unix socket of package agent/ipc
// does on Linux. Accepted connections are *ipc.Conn, so the agent's
// ipcserver serves both.
//
// Who may connect is checked twice. The pipe's security descriptor
// (DefaultSDDL) grants access to SYSTEM only, so Windows refuses anyone
// else's CreateFile; and for every connection the listener impersonates
// the client (ImpersonateNamedPipeClient), reads its token's user SID
// and drops the connection before reading a byte unless the SID is
// allowed (SYSTEM, S-1-5-18, by default: LogonUI, which hosts credential
// providers, runs as SYSTEM). The first instance is created with
// FILE_FLAG_FIRST_PIPE_INSTANCE, so the agent fails to start rather than
// serve under a name another process created first; remote clients are
// rejected (PIPE_REJECT_REMOTE_CLIENTS).
//
// The decision logic (Allowed) is portable; the transport is Windows
// only and returns errors.ErrUnsupported elsewhere.
package pipe

// The Windows calls (syscall_windows.go) are generated; `make check` compares.
//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go

import (
	"errors"
	"log/slog"
	"slices"
)

// DefaultName is the agent's pipe.
const DefaultName = `\\.\pipe\jitkey-agent`

// DefaultSDDL protects the pipe: a protected DACL (no inherited entries)
// with one entry, generic all for LocalSystem.
const DefaultSDDL = "D:P(A;;GA;;;SY)"

// SIDSystem is the LocalSystem account's SID.
const SIDSystem = "S-1-5-18"

// Config configures a Listener.
type Config struct {
	// Name of the pipe (default DefaultName).
	Name string
	// SDDL is the pipe's security descriptor (default DefaultSDDL).
	SDDL string
	// AllowedSIDs are the token user SIDs whose connections Accept
	// returns; nil means SYSTEM only.
	AllowedSIDs []string
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
