package ipc

import (
	"fmt"
	"net"

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
