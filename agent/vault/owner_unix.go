//go:build unix

package vault

import (
	"io/fs"
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

// privateMode reports whether a key file's mode keeps group and others
// out.
func privateMode(m fs.FileMode) bool { return m.Perm()&0o077 == 0 }
