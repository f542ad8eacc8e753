package ipcserver

import (
	"fmt"
	"testing"

	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/protocol"
)

// TestDenialOfSecondApproval: a login refused for its second approval
// (SPEC.md 11.14) tells the surface so, QR (login wraps the push error)
// and push alike.
func TestDenialOfSecondApproval(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   uint8
		reason string
	}{
		{fmt.Errorf("%w: %w", login.ErrDenied, push.ErrCoDenied), protocol.CodeDenied, "denied by the second approver"},
		{push.ErrCoDenied, protocol.CodeDenied, "denied by the second approver"},
		{fmt.Errorf("%w: %w", login.ErrRefused, push.ErrCoNoAnswer), protocol.CodeRefused, "no valid second approval"},
		{push.ErrCoRefused, protocol.CodeRefused, "no valid second approval"},
		{login.ErrDenied, protocol.CodeDenied, "denied by the technician"},
	} {
		if d := denialOf(tc.err); d.Code != tc.code || d.Reason != tc.reason {
			t.Errorf("denialOf(%v) = %+v, want %d %q", tc.err, d, tc.code, tc.reason)
		}
	}
}
