//go:build windows

package keys

import "io/fs"

// privateMode: Windows has no mode bits (Go reports 0666 for every
// writable file); the state directory's protected ACL (SYSTEM and
// Administrators only, set by jitkey-agent on Windows) keeps others out.
func privateMode(fs.FileMode) bool { return true }
