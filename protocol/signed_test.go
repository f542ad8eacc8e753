package protocol

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

func TestSigningInput(t *testing.T) {
	got := SigningInput(DocPolicy, []byte{0xa0})
	if want := append([]byte("jitkey/v1/sig/policy\x00"), 0xa0); !bytes.Equal(got, want) {
		t.Fatalf("%q", got)
	}
	names := map[string]bool{}
	for ty := DocType(0); ty < 10; ty++ {
		if names[ty.String()] {
			t.Fatalf("type name %q twice", ty)
		}
		names[ty.String()] = true
	}
}

func TestSignedEd25519(t *testing.T) {
	f := newFixture(t)
	tc, err := SignEd25519(DocTechCert, &f.tech, f.msp)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := IdentityKeyOf(detrand.Ed25519("other").Public().(ed25519.PublicKey))

	relabelled := tc
	relabelled.Type = DocPolicy
	tampered := tc
	tampered.Body = flip(tc.Body, len(tc.Body)-1)
	short := tc
	short.Sig = tc.Sig[:32]
	tests := []struct {
		name string
		s    Signed
		ty   DocType
		key  IdentityKey
		doc  any
		want error
	}{
		{"valid", tc, DocTechCert, f.mspPub, &TechCert{}, nil},
		{"wrong key", tc, DocTechCert, other, &TechCert{}, ErrBadSignature},
		{"tech cert presented as policy", tc, DocPolicy, f.mspPub, &Policy{}, ErrBadSignature},
		{"type byte relabelled", relabelled, DocPolicy, f.mspPub, &Policy{}, ErrBadSignature},
		{"tech cert presented as device cert", tc, DocDeviceCert, f.mspPub, &DeviceCert{}, ErrBadSignature},
		{"tampered body", tampered, DocTechCert, f.mspPub, &TechCert{}, ErrBadSignature},
		{"short signature", short, DocTechCert, f.mspPub, &TechCert{}, ErrBadSignature},
		{"valid signature, wrong body type", tc, DocTechCert, f.mspPub, &Policy{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.s.VerifyEd25519(tt.ty, tt.key, tt.doc), tt.want)
		})
	}
	var got TechCert
	if err := tc.VerifyEd25519(DocTechCert, f.mspPub, &got); err != nil || got.Username != "nik" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

func TestSignedP256(t *testing.T) {
	f := newFixture(t)
	ap := Approval{Serial: 42, HandshakeHash: make([]byte, 32), Action: ActionLogon, Decision: DecisionApprove}
	s, err := SignP256(DocApproval, &ap, f.approval, nil)
	if err != nil {
		t.Fatal(err)
	}
	// *ecdsa.PrivateKey path with real randomness.
	s2, err := SignP256(DocApproval, &ap, f.approval.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPK, _ := ApprovalKeyOf(&detrand.P256("other").Key.PublicKey)
	asAudit := s
	asAudit.Type = DocAudit
	tests := []struct {
		name string
		s    Signed
		ty   DocType
		key  ApprovalKey
		want error
	}{
		{"valid deterministic", s, DocApproval, f.approvalPK, nil},
		{"valid ecdsa key", s2, DocApproval, f.approvalPK, nil},
		{"wrong key", s, DocApproval, otherPK, ErrBadSignature},
		{"type confusion", asAudit, DocAudit, f.approvalPK, ErrBadSignature},
		{"tampered", Signed{Type: DocApproval, Body: flip(s.Body, 3), Sig: s.Sig}, DocApproval, f.approvalPK, ErrBadSignature},
		{"zero key", s, DocApproval, ApprovalKey{}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Approval
			wantErr(t, tt.s.VerifyP256(tt.ty, tt.key, &got), tt.want)
		})
	}
	// An Ed25519 signature checked as P-256 and vice versa fails.
	tc, _ := SignEd25519(DocApproval, &ap, f.msp)
	wantErr(t, tc.VerifyP256(DocApproval, f.approvalPK, &Approval{}), ErrBadSignature)
}

func TestDecodeSigned(t *testing.T) {
	f := newFixture(t)
	tc, _ := SignEd25519(DocTechCert, &f.tech, f.msp)
	enc, err := tc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSigned(enc)
	if err != nil || got.Type != DocTechCert || !bytes.Equal(got.Body, tc.Body) {
		t.Fatalf("round trip: %v", err)
	}
	h1, _ := tc.Hash()
	h2, _ := got.Hash()
	if h1 != h2 {
		t.Fatal("hash differs after round trip")
	}
	bad := func(s Signed) []byte {
		b, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"63-byte signature", bad(Signed{Type: DocTechCert, Body: tc.Body, Sig: tc.Sig[:63]})},
		{"no signature", bad(Signed{Type: DocTechCert, Body: tc.Body})},
		{"empty body", bad(Signed{Type: DocTechCert, Body: []byte{}, Sig: tc.Sig})},
		{"trailing", append(bytes.Clone(enc), 0)},
		{"truncated", enc[:len(enc)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSigned(tt.in)
			wantErr(t, err, ErrMalformed)
		})
	}
}
