// Package ipcc holds jitkey's one C codec of the local IPC messages
// (SPEC.md 5.6, 5.7): jkmsg.c and jkmsg.h, compiled into every login
// surface written in C — pam_jitkey.so (agent/pam/c/build.sh), the macOS
// authorization plugin (macos/plugin) and the Windows credential provider
// DLL (winhelper/credprov/dll/build.sh, mingw-w64) — and into the cgo
// test packages of the latter two (macos/plugin/core,
// winhelper/credprov/core), which include jkmsg.c from here.
//
// The Go side runs the codec through cgo so that its tests and fuzz
// target compare it with the protocol's Go codec (protocol.DecodeIPCMsg,
// protocol.EncodeIPCMsg). It exists for tests only; without cgo it is
// empty.
package ipcc
