//go:build !unix

package vault

import (
	"io/fs"
	"os"
)

// ownedBySelf: the Windows and macOS sealers (DPAPI, keychain) do not use
// a key file; FileKey there relies on the state directory's ACL.
func ownedBySelf(os.FileInfo) bool { return true }

const noFollow = 0

// privateMode: Windows has no mode bits (Go reports 0666 for every
// writable file); the state directory's protected ACL keeps others out.
func privateMode(fs.FileMode) bool { return true }
