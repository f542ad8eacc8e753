//go:build !windows

package keys

import "io/fs"

// privateMode reports whether a key file's mode keeps group and others
// out.
func privateMode(m fs.FileMode) bool { return m.Perm()&0o077 == 0 }
