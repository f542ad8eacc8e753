// Package jkmsg runs the PAM module's C message codec (agent/pam/c/jkmsg.c)
// from Go through cgo, so that tests and a fuzz target can compare it with
// the agent's own Go codec (agent/ipcserver). It exists for tests only; on
// platforms without cgo it is empty.
package jkmsg
