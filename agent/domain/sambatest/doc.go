// Package sambatest provisions and runs a real Samba Active Directory
// domain controller on loopback for tests: a fresh realm in a temporary
// directory, LDAPS on 127.0.0.1:636 with a certificate (SAN localhost and
// 127.0.0.1) issued by a CA of its own, which callers pin.
//
// Only one Samba can own 127.0.0.1:636 at a time, and `go test ./...` runs
// packages in parallel, so Start takes an exclusive lock
// (/tmp/jitkey-samba.lock) that Close releases. It runs on Linux only.
package sambatest
