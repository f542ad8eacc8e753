package biometric

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

func TestGateBeforeEverySignature(t *testing.T) {
	ctx := context.Background()
	gate := &Fixed{}
	key, err := Generate(ctx, gate, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"ok", nil},
		{"fail", ErrBiometricFailed},
		{"cancel", ErrBiometricCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate.Err = tc.err
			before := len(gate.Prompts)
			sig, err := key.SignRaw(ctx, "approve "+tc.name, []byte("msg"), rand.Reader)
			if len(gate.Prompts) != before+1 || gate.Prompts[before] != "approve "+tc.name {
				t.Fatalf("gate prompts %q", gate.Prompts)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if tc.err == nil && !key.Public().Verify([]byte("msg"), sig) {
				t.Fatal("signature does not verify")
			}
			if tc.err != nil && sig != nil {
				t.Fatal("signature despite a failed gate")
			}
			// SignP256 goes through the same gate.
			_, err = protocol.SignP256(protocol.DocApproval, &protocol.Approval{}, key.Signer(ctx, "doc"), rand.Reader)
			if !errors.Is(err, tc.err) {
				t.Fatalf("SignP256 err %v, want %v", err, tc.err)
			}
		})
	}
}

func TestRoundTripAndModes(t *testing.T) {
	ctx := context.Background()
	if _, err := Generate(ctx, &Fixed{Err: ErrBiometricFailed}, rand.Reader); !errors.Is(err, ErrBiometricFailed) {
		t.Fatalf("generate behind a failing gate: %v", err)
	}
	key, _ := Generate(ctx, &Fixed{}, rand.Reader)
	der, err := key.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(der, &Fixed{})
	if err != nil || again.Public() != key.Public() {
		t.Fatalf("parse: %v", err)
	}
	if _, err := Parse(der[:10], &Fixed{}); err == nil {
		t.Fatal("truncated key parsed")
	}
	for mode, want := range map[string]error{"ok": nil, "": nil, "fail": ErrBiometricFailed, "cancel": ErrBiometricCancelled} {
		g, err := ParseMode(mode)
		if err != nil || !errors.Is(g.Authorize(ctx, "x"), want) || (want == nil && g.Authorize(ctx, "x") != nil) {
			t.Errorf("mode %q: %v", mode, err)
		}
	}
	if _, err := ParseMode("maybe"); err == nil {
		t.Error("unknown mode accepted")
	}
}
