package audit_test

import (
	"errors"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

func appendN(t *testing.T, a *agenttest.Agent, n int) []protocol.Signed {
	t.Helper()
	for i := range n {
		err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
			return a.Audit.Append(tx, protocol.AuditRecord{Event: audit.LoginDenied, Reason: string(rune('a' + i))})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows []store.AuditRow
	_ = a.Store.View(t.Context(), func(tx *store.Tx) error { rows, _ = tx.Audit(0, 100, false); return nil })
	s, err := audit.Decode(rows)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChain(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	recs := appendN(t, a, 4)
	key := a.Keys.IdentityPublic()
	got, err := audit.Verify(key, 0, [32]byte{}, recs)
	if err != nil || len(got) != 4 || got[3].Seq != 4 || got[0].DeviceID != a.Device.DeviceID {
		t.Fatalf("Verify: %v %+v", err, got)
	}
	// Resuming after record 2.
	h2, _ := recs[1].Hash()
	if _, err := audit.Verify(key, 2, h2, recs[2:]); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]protocol.Signed{
		"gap":           {recs[0], recs[2]},
		"reordered":     {recs[1], recs[0]},
		"dropped first": recs[1:],
	}
	for name, rs := range tests {
		if _, err := audit.Verify(key, 0, [32]byte{}, rs); !errors.Is(err, audit.ErrBrokenChain) {
			t.Errorf("%s: %v, want ErrBrokenChain", name, err)
		}
	}
	tampered := recs[0]
	tampered.Body = append([]byte(nil), tampered.Body...)
	tampered.Body[len(tampered.Body)-1] ^= 1
	if _, err := audit.Verify(key, 0, [32]byte{}, []protocol.Signed{tampered}); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
	other := agenttest.NewAgent(t, msp, nil, store.Config{})
	if _, err := audit.Verify(other.Keys.IdentityPublic(), 0, [32]byte{}, recs); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("other key: %v", err)
	}
}
