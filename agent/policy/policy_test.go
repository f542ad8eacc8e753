package policy_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

func TestApply(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	other := agenttest.NewMSP(t, "acme")
	held := msp.Policy(5)
	tests := []struct {
		name   string
		signed func() protocol.Signed
		ok     bool
	}{
		{"newer", func() protocol.Signed { p := msp.Policy(6); return msp.Sign(t, protocol.DocPolicy, &p) }, true},
		{"same version", func() protocol.Signed { p := msp.Policy(5); return msp.Sign(t, protocol.DocPolicy, &p) }, false},
		{"older version", func() protocol.Signed { p := msp.Policy(4); return msp.Sign(t, protocol.DocPolicy, &p) }, false},
		{"other MSP key", func() protocol.Signed { p := other.Policy(7); return other.Sign(t, protocol.DocPolicy, &p) }, false},
		{"other tenant", func() protocol.Signed {
			p := msp.Policy(7)
			p.Tenant = "globex"
			return msp.Sign(t, protocol.DocPolicy, &p)
		}, false},
		{"inconsistent", func() protocol.Signed {
			p := msp.Policy(7)
			p.MaxSession = 0
			return msp.Sign(t, protocol.DocPolicy, &p)
		}, false},
		{"tampered", func() protocol.Signed {
			p := msp.Policy(7)
			s := msp.Sign(t, protocol.DocPolicy, &p)
			p.Revoked = nil
			p.LoginMode = protocol.ModeShared
			p.SharedAccount = "msp-x"
			b, _ := protocol.Marshal(&p)
			s.Body = b
			return s
		}, false},
		{"wrong document type", func() protocol.Signed { p := msp.Policy(7); return msp.Sign(t, protocol.DocDeviceCert, &p) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := agenttest.NewAgent(t, msp, &held, store.Config{})
			_, err := policy.Apply(t.Context(), a.Store, a.Audit, tc.signed(), time.Now())
			var cur protocol.Policy
			_ = a.Store.View(t.Context(), func(tx *store.Tx) error {
				var err error
				cur, _, err = policy.Current(tx)
				return err
			})
			events := agenttest.Events(a.Records(t))
			if tc.ok {
				if err != nil || cur.Version != 6 || !slices.Equal(events, []string{"policy.applied"}) {
					t.Fatalf("err %v version %d audit %v", err, cur.Version, events)
				}
				return
			}
			if !errors.Is(err, policy.ErrRejected) || cur.Version != 5 || !slices.Equal(events, []string{"policy.rejected"}) {
				t.Fatalf("err %v version %d audit %v", err, cur.Version, events)
			}
			if r := a.Records(t)[0]; r.Reason == "" {
				t.Fatal("rejection without a reason")
			}
		})
	}
}

func TestFirstPolicy(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	_ = a.Store.View(t.Context(), func(tx *store.Tx) error {
		if _, _, err := policy.Current(tx); !errors.Is(err, policy.ErrNoPolicy) {
			t.Errorf("Current = %v, want ErrNoPolicy", err)
		}
		return nil
	})
	p := msp.Policy(1)
	if _, err := policy.Apply(t.Context(), a.Store, a.Audit, msp.Sign(t, protocol.DocPolicy, &p), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestApplyRemoval (SPEC.md 11.10): a policy revoking the agent's own
// device certificate is applied and the removal recorded with it, once;
// a policy revoking other devices records nothing; a later policy does
// not undo the removal.
func TestApplyRemoval(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	held := msp.Policy(1)
	a := agenttest.NewAgent(t, msp, &held, store.Config{})
	apply := func(p protocol.Policy) {
		t.Helper()
		if _, err := policy.Apply(t.Context(), a.Store, a.Audit, msp.Sign(t, protocol.DocPolicy, &p), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	removal := func() (store.Removal, error) {
		var r store.Removal
		err := a.Store.View(t.Context(), func(tx *store.Tx) (err error) { r, err = tx.Removal(); return })
		return r, err
	}
	others := msp.Policy(2)
	others.RevokedDevices = []uint64{a.Device.Serial - 1, a.Device.Serial + 1}
	apply(others)
	if _, err := removal(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removal after a policy revoking other devices: %v", err)
	}
	self := msp.Policy(3)
	self.RevokedDevices = []uint64{a.Device.Serial - 1, a.Device.Serial}
	apply(self)
	r, err := removal()
	if err != nil || r.Serial != a.Device.Serial || r.Version != 3 || r.At == 0 {
		t.Fatalf("removal %+v, %v", r, err)
	}
	later := msp.Policy(4) // even one that forgets the serial
	apply(later)
	self.Version = 5
	apply(self)
	if r2, err := removal(); err != nil || r2 != r {
		t.Fatalf("removal after later policies %+v, %v; want %+v", r2, err, r)
	}
	recs := a.Records(t)
	want := []string{"policy.applied", "policy.applied", "device.removed", "policy.applied", "policy.applied"}
	if got := agenttest.Events(recs); !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}
	if d := recs[2].Detail; d != fmt.Sprintf("policy version 3 revokes this device's certificate, serial %d", a.Device.Serial) {
		t.Fatalf("device.removed detail %q", d)
	}
}

// TestCache: the cache returns the stored policy, follows a newer one,
// and still refuses one the pinned key did not sign.
func TestCache(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	p1 := msp.Policy(1)
	a := agenttest.NewAgent(t, msp, &p1, store.Config{})
	var c policy.Cache
	get := func() (protocol.Policy, error) {
		var p protocol.Policy
		err := a.Store.View(t.Context(), func(tx *store.Tx) error {
			var err error
			p, err = c.Current(tx)
			return err
		})
		return p, err
	}
	for range 2 {
		if p, err := get(); err != nil || p.Version != 1 {
			t.Fatalf("cached Current = %d %v", p.Version, err)
		}
	}
	put := func(s protocol.Signed, version uint64) {
		b, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
			return tx.PutPolicy(store.PolicyRow{Tenant: "acme", Version: version, Signed: b, Applied: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	p2 := msp.Policy(2)
	put(msp.Sign(t, protocol.DocPolicy, &p2), 2)
	if p, err := get(); err != nil || p.Version != 2 {
		t.Fatalf("after a new policy: %d %v", p.Version, err)
	}
	other := agenttest.NewMSP(t, "acme")
	p3 := other.Policy(3)
	put(other.Sign(t, protocol.DocPolicy, &p3), 3)
	if _, err := get(); err == nil {
		t.Fatal("a policy of another key is served")
	}
}
