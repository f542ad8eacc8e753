//go:build unix

package vault

import (
	"os"
	"syscall"
)

// ownedBySelf reports whether fi belongs to this process's effective user.
func ownedBySelf(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// noFollow refuses a symbolic link in place of the key file.
const noFollow = syscall.O_NOFOLLOW
