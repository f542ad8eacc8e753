//go:build linux

package linux_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// hostFiles must be byte-identical before and after the package's tests:
// everything runs in sandboxes.
var hostFiles = []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/var/log/lastlog"}

func TestMain(m *testing.M) {
	before := snapshot()
	code := m.Run()
	after := snapshot()
	for _, f := range hostFiles {
		if !bytes.Equal(before[f], after[f]) {
			fmt.Fprintf(os.Stderr, "FAIL: host file %s changed during the tests\n", f)
			code = 1
		}
	}
	os.Exit(code)
}

func snapshot() map[string][]byte {
	m := map[string][]byte{}
	for _, f := range hostFiles {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "read %s: %v\n", f, err)
			os.Exit(1)
		}
		m[f] = b
	}
	return m
}
