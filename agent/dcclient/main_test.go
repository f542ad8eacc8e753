//go:build linux

package dcclient_test

import (
	"os"
	"testing"

	"github.com/jitkey/jitkey/agent/domain/sambatest"
)

// testDC is the package's Samba DC (shared with other packages' tests
// through sambatest's lock).
var testDC *sambatest.DC

func TestMain(m *testing.M) { os.Exit(sambatest.Main(m, &testDC, nil)) }
