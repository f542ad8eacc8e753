// Package core holds the platform-independent C core of jitkey's macOS
// authorization plugin (jkcore.c: the agent connection and the login
// state machine, over the IPC codec all C surfaces share, internal/ipcc,
// which ipcc.c includes) and runs it from Go through cgo, so that tests
// on Linux drive the very C code the plugin bundle links
// (macos/plugin/Makefile) against a real agent IPC server, and a fuzz
// target feeds the state machine any message. It exists for tests;
// without cgo it is empty.
package core
