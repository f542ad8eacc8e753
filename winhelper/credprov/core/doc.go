// Package core holds the platform-independent logic of jitkey's Windows
// credential provider, written in C and C++ so that the provider DLL
// (winhelper/credprov/dll, built with mingw-w64) compiles the very same
// files: the IPC codec all C login surfaces share (internal/ipcc, which
// ipcc.c includes here), the tile's state machine (tile.cpp),
// the KERB_INTERACTIVE_UNLOCK_LOGON byte layout (pack.cpp) and the QR
// module matrix read from the agent's Terminal text (qrterm.cpp).
//
// On Linux with cgo this package compiles them with the host gcc/g++ and
// exposes them to Go, so that their tests and fuzz targets run in
// `make test` next to the agent they talk to.
package core
