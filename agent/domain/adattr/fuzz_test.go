package adattr

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseFileTime: whatever parses formats back to the same text.
func FuzzParseFileTime(f *testing.F) {
	for _, s := range []string{"0", "9223372036854775807", "134097348000000000", "1", "01", "-1", "18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, never, err := ParseFileTime(s)
		if err != nil || never {
			return
		}
		if got := FormatFileTime(tm); got != s {
			t.Fatalf("%q -> %v -> %q", s, tm, got)
		}
	})
}

// FuzzParseUAC: whatever parses formats back to the same text.
func FuzzParseUAC(f *testing.F) {
	for _, s := range []string{"514", "66048", "-2147483648", "2147483647", "+1", "0x2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseUAC(s)
		if err != nil {
			return
		}
		if got := FormatUAC(v); got != s {
			t.Fatalf("%q -> %#x -> %q", s, v, got)
		}
	})
}

// FuzzParseEntry feeds an entry built from fuzzed values (whenChanged,
// accountExpires, pwdLastSet, userAccountControl, memberOf joined by
// '\n'); an entry that parses re-encodes to attributes that parse to the
// same entry.
func FuzzParseEntry(f *testing.F) {
	f.Add("msp-nik", "514", "20261206175609.0Z", "134097348000000000", "0", "jitkey JIT account msp-nik", "CN=Domain Admins,DC=x")
	f.Add("msp-a", "-1", "19991231235959.0Z", "", "1", "", "")
	f.Fuzz(func(t *testing.T, name, uac, changed, expires, pwdLast, desc, member string) {
		attrs := map[string][]string{
			"sAMAccountName":     {name},
			"userAccountControl": {uac},
			"whenChanged":        {changed},
		}
		for k, v := range map[string]string{"accountExpires": expires, "pwdLastSet": pwdLast, "description": desc} {
			if v != "" {
				attrs[k] = []string{v}
			}
		}
		if member != "" {
			attrs["memberOf"] = strings.Split(member, "\n")
		}
		e, err := ParseEntry("CN=x", attrs)
		if err != nil {
			return
		}
		e2, err := ParseEntry("CN=x", e.Attrs())
		if err != nil {
			t.Fatalf("re-encoded entry: %v", err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip:\n%+v\n%+v", e, e2)
		}
	})
}
