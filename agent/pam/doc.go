// Package pam holds jitkey's Linux login surface: the PAM module
// pam_jitkey.so, written in C (directory c/, built by c/build.sh with gcc
// and libpam0g-dev; no Go runs inside the processes that load PAM
// modules), and the tests that build it and drive it through real PAM
// applications (pamtester, sshd, sudo) against a real agent.
//
// The module talks to the agent over its root-only Unix socket
// (package agent/ipcserver); its hand-written decoder of the agent's
// messages is internal/jkmsg/jkmsg.c, fuzzed there against the agent's Go
// decoder through cgo.
package pam
