package ipcserver

import (
	"testing"

	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/protocol"
)

// TestDenialOfBreakGlassOff: a recovery code typed while the policy turns
// break-glass off is answered Denied (refused) with the reason SPEC.md
// 11.15 gives, not the generic "account could not be made ready".
func TestDenialOfBreakGlassOff(t *testing.T) {
	d := offlineDenial(offline.ErrBreakGlassOff)
	if d.Code != protocol.CodeRefused || d.Reason != "break-glass is turned off for this computer" {
		t.Fatalf("offlineDenial(ErrBreakGlassOff) = %+v", d)
	}
}
