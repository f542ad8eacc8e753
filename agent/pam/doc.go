// Package pam holds jitkey's Linux login surface: the PAM module
// pam_jitkey.so, written in C (directory c/, built by c/build.sh with gcc
// and libpam0g-dev; no Go runs inside the processes that load PAM
// modules), and the tests that build it and drive it through real PAM
// applications (pamtester, sshd, sudo) against a real agent.
//
// The module talks to the agent over its root-only Unix socket
// (package agent/ipcserver); its hand-written codec of the agent's
// messages is the one all C login surfaces share, internal/ipcc/jkmsg.c,
// fuzzed there against the protocol's Go codec through cgo.
//
// The module never sends Begin's Target (SPEC.md 5.7.1): a Target names
// the computer an RDP client on this one connects to (11.7 RDP), asked
// for by the client-side surface, while PAM authenticates logins into
// this computer (sshd, login, sudo). PAM_RHOST names where a login comes
// from, not where it goes, so it is never a Target. A Linux client hop
// (xfreerdp or ssh from this computer to a domain machine) would need a
// client-side surface of its own (ipcserver.Client.BeginTarget), and the
// Linux account backend holds local accounts only (11.7 step 4).
package pam
