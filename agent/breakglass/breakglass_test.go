package breakglass_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/breakglass"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/protocol"
)

func codes(t *testing.T, st *store.Store) []store.RecoveryCode {
	t.Helper()
	var out []store.RecoveryCode
	if err := st.View(t.Context(), func(tx *store.Tx) error {
		var err error
		out, err = tx.RecoveryCodes()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeeper: Ensure makes generation 1 once; Next makes the next and
// prunes all but the one before; Match finds a code's generation only
// with the code; the sealed copy opens only under its generation's
// context and is dropped by RecoveryEscrowed; a used generation cannot be
// used again.
func TestKeeper(t *testing.T) {
	m := agenttest.NewMSP(t, "acme")
	pol := m.Policy(1)
	a := agenttest.NewAgent(t, m, &pol, store.Config{})
	v, err := vault.OpenFileKey(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := breakglass.New(breakglass.Config{Store: a.Store, Vault: v})
	for range 2 {
		if err := k.Ensure(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	cs := codes(t, a.Store)
	if len(cs) != 1 || cs[0].Generation != 1 || cs[0].Sealed == nil {
		t.Fatalf("after Ensure twice: %+v", cs)
	}
	if pending, err := k.Pending(t.Context()); err != nil || !pending {
		t.Fatalf("Pending = %v %v", pending, err)
	}
	raw, err := v.Open(cs[0].Sealed, breakglass.SealContext(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open(cs[0].Sealed, breakglass.SealContext(2)); err == nil {
		t.Fatal("sealed code opens under another generation's context")
	}
	var c1 protocol.RecoveryCode
	copy(c1[:], raw)
	if got, ok := breakglass.Match(cs, c1); !ok || got.Generation != 1 {
		t.Fatalf("Match = %+v %v", got, ok)
	}
	other := c1
	other[15] ^= 1
	if _, ok := breakglass.Match(cs, other); ok {
		t.Fatal("a code one bit off matched")
	}

	for gen := uint64(1); gen <= 3; gen++ {
		if err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
			if err := tx.UseRecoveryCode(gen, time.Now()); err != nil {
				return err
			}
			_, err := k.Next(tx, gen)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	cs = codes(t, a.Store)
	if len(cs) != 2 || cs[0].Generation != 4 || cs[1].Generation != 3 || cs[1].Used.IsZero() || !cs[0].Used.IsZero() {
		t.Fatalf("after three uses: %+v", cs)
	}
	if _, ok := breakglass.Match(cs, c1); ok {
		t.Fatal("generation 1 still matches after pruning")
	}
	err = a.Store.Update(t.Context(), func(tx *store.Tx) error { return tx.UseRecoveryCode(3, time.Now()) })
	if err == nil {
		t.Fatal("a used generation used again")
	}
	if err := a.Store.Update(t.Context(), func(tx *store.Tx) error { return tx.RecoveryEscrowed(4) }); err != nil {
		t.Fatal(err)
	}
	if pending, err := k.Pending(t.Context()); err != nil || pending {
		t.Fatalf("Pending after the escrow = %v %v", pending, err)
	}
	if cs := codes(t, a.Store); cs[0].Sealed != nil || bytes.Equal(cs[0].Verifier, cs[1].Verifier) {
		t.Fatalf("after the escrow: %+v", cs[0])
	}
}
