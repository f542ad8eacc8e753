package ipc

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerCredentials reads SO_PEERCRED: the credentials the peer had when it
// called connect (or listen).
func peerCredentials(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("ipc: peer credentials: %w", credErr)
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}

// defaultAllowed is the peers Listen admits when Config.AllowedUIDs is
// nil: root.
func defaultAllowed() []uint32 { return []uint32{0} }

// dirPerm is the mode of the socket's directory: the agent's only.
const dirPerm = 0o700

// secureSocket gives the socket mode 0600: root's peers only.
func secureSocket(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("ipc: chmod socket: %w", err)
	}
	return nil
}
