package protocol

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Key lengths on the wire.
const (
	NoiseKeyLen     = 32 // X25519 public key
	IdentityKeyLen  = 32 // Ed25519 public key
	ApprovalKeyLen  = 65 // P-256 public key, SEC 1 uncompressed: 0x04 || X (32) || Y (32)
	ApprovalSigLen  = 64 // P-256 ECDSA signature over SHA-256, r (32) || s (32), big-endian
	IdentitySigLen  = ed25519.SignatureSize
	FingerprintSize = 16
)

// ErrBadKey is returned for a key that is not a valid encoding of its type.
var ErrBadKey = errors.New("protocol: invalid key")

// NoiseKey is a peer's Noise static public key (X25519).
type NoiseKey [NoiseKeyLen]byte

// IdentityKey is a peer's Ed25519 identity public key: relay authentication,
// document and audit signatures.
type IdentityKey [IdentityKeyLen]byte

// ApprovalKey is a technician phone's approval public key: ECDSA P-256,
// SEC 1 uncompressed encoding. Phones keep the private half in secure
// hardware behind biometrics.
type ApprovalKey [ApprovalKeyLen]byte

// Check reports whether k is a usable X25519 public key (not all zero).
func (k NoiseKey) Check() error {
	if k == (NoiseKey{}) {
		return fmt.Errorf("%w: zero noise key", ErrBadKey)
	}
	if _, err := ecdh.X25519().NewPublicKey(k[:]); err != nil {
		return fmt.Errorf("%w: noise key: %v", ErrBadKey, err)
	}
	return nil
}

// Public returns k as an ed25519.PublicKey.
func (k IdentityKey) Public() ed25519.PublicKey { return ed25519.PublicKey(k[:]) }

// IdentityKeyOf converts an Ed25519 public key.
func IdentityKeyOf(pub ed25519.PublicKey) (IdentityKey, error) {
	var k IdentityKey
	if len(pub) != IdentityKeyLen {
		return k, fmt.Errorf("%w: identity key length %d", ErrBadKey, len(pub))
	}
	copy(k[:], pub)
	return k, nil
}

// Verify checks an Ed25519 signature by k over msg.
func (k IdentityKey) Verify(msg, sig []byte) bool {
	return len(sig) == IdentitySigLen && ed25519.Verify(k.Public(), msg, sig)
}

// ApprovalKeyOf encodes a P-256 public key.
func ApprovalKeyOf(pub *ecdsa.PublicKey) (ApprovalKey, error) {
	var k ApprovalKey
	if pub == nil || pub.Curve != elliptic.P256() {
		return k, fmt.Errorf("%w: approval key is not P-256", ErrBadKey)
	}
	b, err := pub.Bytes()
	if err != nil || len(b) != ApprovalKeyLen {
		return k, fmt.Errorf("%w: approval key: %v", ErrBadKey, err)
	}
	copy(k[:], b)
	return k, nil
}

// Public parses k, checking that the point is on the curve.
func (k ApprovalKey) Public() (*ecdsa.PublicKey, error) {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), k[:])
	if err != nil {
		return nil, fmt.Errorf("%w: approval key: %v", ErrBadKey, err)
	}
	return pub, nil
}

// Verify checks a raw r||s P-256 signature over SHA-256(msg).
func (k ApprovalKey) Verify(msg, sig []byte) bool {
	if len(sig) != ApprovalSigLen {
		return false
	}
	pub, err := k.Public()
	if err != nil {
		return false
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(sig[:32]))
		b.AddASN1BigInt(new(big.Int).SetBytes(sig[32:]))
	})
	der, err := b.Bytes()
	if err != nil {
		return false
	}
	h := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(pub, h[:], der)
}

// ApprovalSigFromASN1 converts an ASN.1 DER ECDSA signature (what
// ecdsa.SignASN1 and phone keystores produce) to the wire form r||s.
func ApprovalSigFromASN1(der []byte) ([]byte, error) {
	var r, s big.Int
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() ||
		r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 256 || s.BitLen() > 256 {
		return nil, errors.New("protocol: malformed ECDSA signature")
	}
	out := make([]byte, ApprovalSigLen)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// Fingerprint is a short, human-comparable digest of a public key:
//
//	SHA-256("jitkey/v1/fingerprint/" || kind || 0x00 || key)[:16]
//
// shown as four groups of base32 (Fingerprint.String).
type Fingerprint [FingerprintSize]byte

func fingerprint(kind string, key []byte) Fingerprint {
	h := sha256.New()
	h.Write([]byte("jitkey/v1/fingerprint/" + kind))
	h.Write([]byte{0})
	h.Write(key)
	var f Fingerprint
	copy(f[:], h.Sum(nil))
	return f
}

// Fingerprint of a Noise static key.
func (k NoiseKey) Fingerprint() Fingerprint { return fingerprint("noise", k[:]) }

// Fingerprint of an identity key.
func (k IdentityKey) Fingerprint() Fingerprint { return fingerprint("identity", k[:]) }

// Fingerprint of an approval key.
func (k ApprovalKey) Fingerprint() Fingerprint { return fingerprint("approval", k[:]) }

// String renders a fingerprint as lowercase base32 in groups of 6.
func (f Fingerprint) String() string {
	s := strings.ToLower(b32.EncodeToString(f[:]))
	var out strings.Builder
	for i := 0; i < len(s); i += 6 {
		if i > 0 {
			out.WriteByte('-')
		}
		out.WriteString(s[i:min(i+6, len(s))])
	}
	return out.String()
}
