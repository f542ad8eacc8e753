// Package core holds the platform-independent C core of jitkey's macOS
// authorization plugin (jkcore.c, jkmsg.c: the agent connection, the IPC
// messages of SPEC.md 5.6 and 5.7, the login state machine) and runs it
// from Go through cgo, so that tests on Linux drive the very C code the
// plugin bundle links (macos/plugin/Makefile) against a real agent IPC
// server, and a fuzz target checks its decoder against the agent's Go
// codec. It exists for tests; without cgo it is empty.
package core
