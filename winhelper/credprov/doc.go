// Package credprov is jitkey's Windows credential provider: a COM DLL
// (jitkey_cp.dll) written in C++ for mingw-w64, with no Go in it
// (LogonUI loads and unloads providers; a Go runtime cannot be unloaded).
//
//   - core/: the portable logic (IPC codec, tile state machine, logon
//     packing, QR modules), compiled by the DLL and, through cgo, by the
//     Go tests on Linux;
//   - dll/: the COM classes (ICredentialProvider +SetUserArray,
//     ICredentialProviderCredential2 +WithFieldOptions), the pipe client
//     and the serialization, built by dll/build.sh;
//   - harness/: a Windows program that drives the DLL as LogonUI would
//     (run under Wine by `make wine-test`).
//
// The tests of this package build the DLL with x86_64-w64-mingw32-g++ and
// check what it exports and imports.
package credprov
