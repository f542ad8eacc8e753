// Package jkmsg holds the PAM module's C message codec (jkmsg.c, jkmsg.h;
// compiled into pam_jitkey.so by agent/pam/c/build.sh) and runs it from
// Go through cgo, so that tests and a fuzz target can compare it with
// the agent's own Go codec (agent/ipcserver). It exists for tests only; on
// platforms without cgo it is empty.
package jkmsg
