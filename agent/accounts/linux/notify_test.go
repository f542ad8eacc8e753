//go:build linux

package linux

import "testing"

// TestPrintable: no escape sequence of a notice reaches a terminal.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"ends at 15:04\nsave":     "ends at 15:04\nsave",
		"\x1b[2Jcleared\x07\r":    "[2Jcleared",
		"über\u202eevil\u0000end": "überevilend",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
