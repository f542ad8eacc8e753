package pipe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/winhelper/internal/wine"
)

// TestWine cross-compiles this package's tests for Windows and runs them
// under Wine 8 (make deps installs wine64 and mingw-w64): the real
// CreateNamedPipe with DefaultSDDL, ImpersonateNamedPipeClient, the token
// user and groups, and CreateFile with ClientAccess, classified by
// Classify (pipe_windows_test.go). Wine does not enforce a pipe's DACL,
// so the descriptor itself is checked by TestSDDL, not here.
func TestWine(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out := wine.RunTests(ctx, t, "^(TestUserPeerOverPipe|TestSystemOnlyRefusesUser)$")
	for _, want := range []string{"--- PASS: TestUserPeerOverPipe/default", "--- PASS: TestUserPeerOverPipe/listed", "--- PASS: TestSystemOnlyRefusesUser", "\nPASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
