//go:build !unix

package vault

import "os"

// ownedBySelf: the Windows and macOS sealers (DPAPI, keychain) do not use
// a key file; FileKey there relies on the state directory's ACL.
func ownedBySelf(os.FileInfo) bool { return true }

const noFollow = 0
