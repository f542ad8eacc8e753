// Package sandbox runs account commands against a private copy of /etc, so
// that the Linux accounts backend and pamtester can be exercised for real
// (tests, the testbed, the agent's --sandbox flag) without touching the
// host's accounts.
//
// A sandbox is a directory holding etc/ (a copy of the host's /etc, made
// once), home/, var/log/ and var/mail/. Each command runs in its own private
// mount namespace (the equivalent of unshare --mount --propagation private,
// done by the Go runtime through SysProcAttr.Unshareflags) where those
// directories are bind-mounted over /etc, /home, /var/log and /var/mail;
// whole directories are bound because shadow-utils replace /etc/passwd and
// friends by renaming, which a single bind-mounted file refuses (EBUSY).
// Nothing is mounted in the caller's namespace, so nothing needs unmounting
// and a crash leaves no trace outside the directory.
//
// Accounts created in a sandbox get uids from a range of its own, picked
// at random when the sandbox is created (see MinUID): their processes, if
// any are started, are the host's, and Backend.EndSessions kills by uid.
//
// The package builds only on Linux and needs root (CAP_SYS_ADMIN), /bin/sh
// and util-linux's mount.
package sandbox
