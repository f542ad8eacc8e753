package accounts

import (
	"strconv"
	"strings"
)

// Maximum account name lengths per platform.
const (
	// MaxNameLinux is the useradd limit (LOGIN_NAME_MAX - 1 is larger, but
	// utmp records and many tools stop at 32).
	MaxNameLinux = 32
	// MaxNameWindows is the SAM account name limit (sAMAccountName for
	// pre-Windows 2000 compatibility).
	MaxNameWindows = 20
)

// DefaultPrefix starts every named-mode JIT account name.
const DefaultPrefix = "msp-"

// fallbackUser replaces a username that sanitises to nothing.
const fallbackUser = "user"

// ValidName reports whether name is an account name jitkey may create: 1 to
// maxLen characters from [a-z0-9_-], starting with a letter. Such names are
// valid on Linux (Debian NAME_REGEX), Windows and macOS, cannot be mistaken
// for a command-line option or a number, and need no quoting.
func ValidName(name string, maxLen int) bool {
	if len(name) == 0 || len(name) > maxLen {
		return false
	}
	if name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return false
		}
	}
	return true
}

func nameChar(c byte) bool {
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_'
}

// SanitizeName builds an account name from prefix and a technician's
// username, for example SanitizeName("msp-", "John.Doe@example.com", 20) =
// "msp-john-doe". Rules, applied in order:
//   - an email's domain (from the last '@') is dropped;
//   - letters are lowercased; characters outside [a-z0-9_-] become '-';
//     runs of '-' collapse to one; '-' and '_' are trimmed from both ends
//     of the username part;
//   - an empty username part becomes "user";
//   - the prefix is sanitised the same way (keeping a trailing '-'), and a
//     name that would not start with a letter gets a leading "u";
//   - the result is cut to maxLen and trailing '-' and '_' are trimmed.
//
// The result always passes ValidName(name, maxLen) when maxLen is at least
// 5. Distinct usernames can map to the same name; the caller resolves
// collisions with WithSuffix.
func SanitizeName(prefix, username string, maxLen int) string {
	if i := strings.LastIndexByte(username, '@'); i >= 0 {
		username = username[:i]
	}
	user := strings.Trim(clean(username), "-_")
	if user == "" {
		user = fallbackUser
	}
	name := clean(prefix) + user
	if name[0] < 'a' || name[0] > 'z' {
		name = "u" + name
	}
	return cut(name, maxLen)
}

// clean lowercases s, maps characters outside [a-z0-9_-] to '-' and
// collapses runs of '-'.
func clean(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		c := byte('-')
		if r < 0x80 && nameChar(byte(r)) {
			c = byte(r)
		}
		if c == '-' && strings.HasSuffix(b.String(), "-") {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// cut shortens name to maxLen bytes and trims trailing '-' and '_'.
func cut(name string, maxLen int) string {
	if maxLen < 0 {
		maxLen = 0
	}
	if len(name) > maxLen {
		name = name[:maxLen]
	}
	return strings.TrimRight(name, "-_")
}

// WithSuffix returns name with "-n" appended, shortening name first so
// that the result fits in maxLen: WithSuffix("msp-averylongname", 2, 20) =
// "msp-averylongname-2", WithSuffix("msp-averylongusername", 12, 20) =
// "msp-averylonguser-12" (a trailing '-' or '_' left by the cut is dropped).
// For n < 1 it returns name cut to maxLen.
// Callers try name, then WithSuffix(name, 2, maxLen), 3, ... until Create
// stops returning ErrExists.
func WithSuffix(name string, n int, maxLen int) string {
	if n < 1 {
		return cut(name, maxLen)
	}
	suffix := "-" + strconv.Itoa(n)
	return cut(name, maxLen-len(suffix)) + suffix
}
