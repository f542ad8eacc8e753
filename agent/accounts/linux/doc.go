// Package linux is the accounts.Backend for Linux local accounts, built on
// shadow-utils (useradd, usermod, chpasswd, gpasswd, userdel) and getent.
//
// Every command goes through a Runner, so the same backend drives the real
// host (ExecRunner) or a sandbox (package sandbox) whose /etc is a private
// copy. Passwords reach chpasswd on stdin only, never in arguments or the
// environment, and are scrubbed from any error text.
//
// Enabled and disabled: Disable both locks the password (usermod --lock,
// a '!' before the hash) and expires the account (usermod --expiredate 1,
// 1970-01-02), so that logins that bypass the password, such as SSH keys,
// are refused by PAM account management too, and removes the account's
// sudo timestamp file, so that sudo's cached credential of the session
// is gone too. Enable undoes the first two.
// SetPassword keeps a lock in place (chpasswd alone would drop it).
//
// Last use: Lookup reads the lastlog database (lastlog -u), which login,
// sshd and pam_lastlog update at each login session. A login that opens no
// session (for example sudo, or PAM authentication alone) does not count.
// Where lastlog is not installed (Debian 13 replaced it with lastlog2),
// LastUse is zero; the agent core also records its own sessions.
//
// Ending sessions: EndSessions terminates the user's systemd-logind
// sessions where logind tracks the user, then stops and kills every
// process holding the account's uid (found in /proc, signalled through
// pidfds) until none is left. In sandbox mode the account exists only in
// the sandbox's /etc but its processes are the host's; EndSessions
// therefore refuses a uid that the host gives to another user.
//
// The package builds only on Linux.
package linux
