package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"regexp"
	"testing"

	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

func TestNoiseKeyCheck(t *testing.T) {
	f := newFixture(t)
	var good NoiseKey
	copy(good[:], f.agent.Public)
	tests := []struct {
		name string
		key  NoiseKey
		want error
	}{
		{"valid", good, nil},
		{"zero", NoiseKey{}, ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.key.Check(), tt.want) })
	}
}

func TestIdentityKey(t *testing.T) {
	priv := detrand.Ed25519("id")
	pub := priv.Public().(ed25519.PublicKey)
	k, err := IdentityKeyOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Public(), pub) {
		t.Fatal("Public differs")
	}
	msg := []byte("message")
	sig := ed25519.Sign(priv, msg)
	tests := []struct {
		name string
		msg  []byte
		sig  []byte
		ok   bool
	}{
		{"valid", msg, sig, true},
		{"other message", []byte("massage"), sig, false},
		{"short signature", msg, sig[:63], false},
		{"long signature", msg, append(bytes.Clone(sig), 0), false},
		{"flipped bit", msg, flip(sig, 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.Verify(tt.msg, tt.sig); got != tt.ok {
				t.Fatalf("Verify = %v", got)
			}
		})
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := IdentityKeyOf(make([]byte, n)); err == nil {
			t.Errorf("IdentityKeyOf accepted %d bytes", n)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestApprovalKeyEncoding(t *testing.T) {
	s := detrand.P256("ak")
	k, err := ApprovalKeyOf(&s.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if k[0] != 4 {
		t.Fatalf("not uncompressed: %x", k[0])
	}
	pub, err := k.Public()
	if err != nil || !pub.Equal(&s.Key.PublicKey) {
		t.Fatalf("Public: %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApprovalKeyOf(&p384.PublicKey); err == nil {
		t.Error("ApprovalKeyOf accepted a P-384 key")
	}
	if _, err := ApprovalKeyOf(nil); err == nil {
		t.Error("ApprovalKeyOf accepted nil")
	}

	offCurve := k
	offCurve[64] ^= 1
	compressed := k
	compressed[0] = 2
	tests := []struct {
		name string
		key  ApprovalKey
	}{
		{"zero", ApprovalKey{}},
		{"point off the curve", offCurve},
		{"wrong prefix", compressed},
		{"infinity prefix", ApprovalKey{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.key.Public(); err == nil {
				t.Fatal("bad point accepted")
			}
			wantErr(t, func() error { _, err := tt.key.Public(); return err }(), ErrBadKey)
			if tt.key.Verify([]byte("m"), make([]byte, 64)) {
				t.Fatal("Verify with a bad key succeeded")
			}
		})
	}
}

func TestApprovalSignatures(t *testing.T) {
	s := detrand.P256("ak")
	k, _ := ApprovalKeyOf(&s.Key.PublicKey)
	msg := []byte("approve")
	h := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, s.Key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ApprovalSigFromASN1(der)
	if err != nil || len(raw) != ApprovalSigLen {
		t.Fatalf("convert: %v", err)
	}
	detDER, err := s.Sign(nil, h[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	detRaw, err := ApprovalSigFromASN1(detDER)
	if err != nil {
		t.Fatal(err)
	}
	zeroR := bytes.Clone(raw)
	clear(zeroR[:32])
	tests := []struct {
		name string
		msg  []byte
		sig  []byte
		ok   bool
	}{
		{"from SignASN1", msg, raw, true},
		{"deterministic signer", msg, detRaw, true},
		{"other message", []byte("deny"), raw, false},
		{"DER form on the wire", msg, der, false},
		{"short", msg, raw[:63], false},
		{"zero r", msg, zeroR, false},
		{"all zero", msg, make([]byte, 64), false},
		{"all ones", msg, bytes.Repeat([]byte{0xff}, 64), false},
		{"flipped", msg, flip(raw, 40), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.Verify(tt.msg, tt.sig); got != tt.ok {
				t.Fatalf("Verify = %v", got)
			}
		})
	}
}

func TestApprovalSigFromASN1(t *testing.T) {
	// r = 1, s = 2 in a minimal DER SEQUENCE.
	good := []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}
	raw, err := ApprovalSigFromASN1(good)
	if err != nil || raw[31] != 1 || raw[63] != 2 || !bytes.Equal(raw[:31], make([]byte, 31)) {
		t.Fatalf("got %x, %v", raw, err)
	}
	big := append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, make([]byte, 32)...) // 257-bit r
	big = append(big, 0x02, 0x01, 0x01)
	tests := []struct {
		name string
		der  []byte
	}{
		{"empty", nil},
		{"trailing", append(bytes.Clone(good), 0)},
		{"zero r", []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x02}},
		{"negative s", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0xff}},
		{"missing s", []byte{0x30, 0x03, 0x02, 0x01, 0x01}},
		{"extra integer", []byte{0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03}},
		{"r too large", big},
		{"not a sequence", []byte{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}},
		{"non-minimal integer", []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ApprovalSigFromASN1(tt.der); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestFingerprints(t *testing.T) {
	var n NoiseKey
	var i IdentityKey
	var a ApprovalKey
	fps := []Fingerprint{n.Fingerprint(), i.Fingerprint(), a.Fingerprint()}
	if fps[0] == fps[1] || fps[1] == fps[2] || fps[0] == fps[2] {
		t.Fatal("fingerprints of different kinds collide")
	}
	// Known answer: SHA-256("jitkey/v1/fingerprint/noise" || 0 || 32 zero bytes)[:16].
	h := sha256.Sum256(append([]byte("jitkey/v1/fingerprint/noise\x00"), make([]byte, 32)...))
	if !bytes.Equal(fps[0][:], h[:16]) {
		t.Fatal("noise fingerprint layout")
	}
	s := fps[0].String()
	if !regexp.MustCompile(`^[a-z2-7]{6}(-[a-z2-7]{1,6}){4}$`).MatchString(s) {
		t.Fatalf("fingerprint text %q", s)
	}
}
