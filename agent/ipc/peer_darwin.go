package ipc

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerCredentials reads LOCAL_PEERCRED (struct xucred: the peer's
// effective uid and groups when it called connect or listen, as
// getpeereid(3) reports them) and LOCAL_PEERPID.
func peerCredentials(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", err)
	}
	var cred *unix.Xucred
	var pid int
	var credErr, pidErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		pid, pidErr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	}); err != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", credErr)
	}
	if pidErr != nil {
		pid = -1 // only logged; the uid decides
	}
	p := Peer{UID: cred.Uid, PID: int32(pid)}
	if cred.Ngroups > 0 {
		p.GID = cred.Groups[0]
	}
	return p, nil
}

// SecurityAgentUID is the uid of macOS's _securityagent account, which
// runs SecurityAgent, the host of non-privileged authorization plugin
// mechanisms (the ones that show a window, as jitkey's does).
const SecurityAgentUID = 92

// defaultAllowed is the peers Listen admits when Config.AllowedUIDs is
// nil: root (sudo's PAM module, privileged mechanisms) and SecurityAgent
// (the authorization plugin's window).
func defaultAllowed() []uint32 { return []uint32{0, SecurityAgentUID} }

// dirPerm is the mode of the socket's directory: SecurityAgent must be
// able to reach the socket (search), not list the directory.
const dirPerm = 0o711

// secureSocket gives the socket to group _securityagent (gid
// SecurityAgentUID) with mode 0660, so that root and SecurityAgent can
// connect and nobody else can; the agent still checks every peer's uid.
func secureSocket(path string) error {
	if err := os.Chown(path, -1, SecurityAgentUID); err != nil {
		return fmt.Errorf("ipc: chown socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return fmt.Errorf("ipc: chmod socket: %w", err)
	}
	return nil
}
