package push

import (
	"errors"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// TestUseCoApprovalSingleUse: a verified second approval is used
// once; the same one again is refused, as is none where the policy
// needs one.
func TestUseCoApprovalSingleUse(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	nik := msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	cara := msp.NewPhone(t, "cara", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	p := msp.Policy(1)
	p.SecondApprovers = []string{protocol.ShareAllAdmins}
	now := time.Now()
	co := &CoApproved{Approver: cara.Cert, Approval: protocol.CoApproval{Time: now.Unix()}, digest: [32]byte{1}}
	use := func(co *CoApproved) error {
		return a.Store.Update(t.Context(), func(tx *store.Tx) error {
			return UseCoApproval(tx, &p, co, &nik.Cert, &a.Device, now)
		})
	}
	if err := use(co); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := use(co); !errors.Is(err, ErrCoRequired) {
		t.Fatalf("second use: %v, want ErrCoRequired", err)
	}
	if err := use(nil); !errors.Is(err, ErrCoRequired) {
		t.Fatalf("no second approval: %v, want ErrCoRequired", err)
	}
	self := &CoApproved{Approver: nik.Cert, Approval: protocol.CoApproval{Time: now.Unix()}, digest: [32]byte{2}}
	if err := use(self); !errors.Is(err, protocol.ErrSelfApproval) {
		t.Fatalf("self approval: %v, want ErrSelfApproval", err)
	}
	p.SecondApprovers = nil
	if err := use(nil); err != nil {
		t.Fatalf("not needed: %v", err)
	}
}
