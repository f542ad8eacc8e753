package console

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jitkey/jitkey/protocol"
)

// CheckUsername validates a technician username: [a-z0-9._-]{1,32}, and not
// one of the share list's reserved words.
func CheckUsername(u string) error {
	if len(u) < 1 || len(u) > 32 {
		return refuse("username %q must be 1..32 characters", u)
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return refuse("username %q may only use a-z, 0-9, '.', '_' and '-'", u)
		}
	}
	if u == protocol.ShareAllAdmins || u == protocol.ShareAllUsers {
		return refuse("username %q is reserved for share lists", u)
	}
	if u == protocol.BreakGlassUsername {
		return refuse("username %q is reserved for break-glass recovery codes", u)
	}
	return nil
}

// CheckEmail validates a plain e-mail address (no display name).
func CheckEmail(e string) error {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || len(e) > protocol.MaxEmailLen || !strings.Contains(e[strings.LastIndexByte(e, '@'):], ".") {
		return refuse("e-mail address %q is not a plain address like nik@example.com", e)
	}
	return nil
}

// CheckTenantName validates a tenant name: [a-z0-9-]{1,64}, not starting
// or ending with '-'.
func CheckTenantName(n string) error {
	if len(n) < 1 || len(n) > protocol.MaxNameLen {
		return refuse("tenant name %q must be 1..%d characters", n, protocol.MaxNameLen)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return refuse("tenant name %q may only use a-z, 0-9 and '-'", n)
		}
	}
	if n[0] == '-' || n[len(n)-1] == '-' {
		return refuse("tenant name %q may not start or end with '-'", n)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func checkDeviceName(n string) bool {
	return n != "" && len(n) <= protocol.MaxNameLen && printable(n) && strings.TrimSpace(n) == n
}

func checkOS(os string) bool {
	if os == "" || len(os) > 16 {
		return false
	}
	for _, r := range os {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
