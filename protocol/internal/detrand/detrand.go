// Package detrand provides deterministic randomness and deterministic P-256
// signing for jitkey's test vectors, tests and benchmarks. It is for tests
// only: nothing it produces is secret.
package detrand

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Reader is a deterministic byte stream: block i is
//
//	SHA-256(seed || 0x00 || u64 big-endian i)
type Reader struct {
	seed  []byte
	ctr   uint64
	block []byte
}

// New returns the stream for seed.
func New(seed string) *Reader { return &Reader{seed: []byte(seed)} }

// Read fills p from the stream; it never fails.
func (r *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.block) == 0 {
			h := sha256.New()
			h.Write(r.seed)
			h.Write([]byte{0})
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], r.ctr)
			h.Write(c[:])
			r.ctr++
			r.block = h.Sum(nil)
		}
		k := copy(p[n:], r.block)
		r.block = r.block[k:]
		n += k
	}
	return n, nil
}

// Bytes returns n bytes of the stream for seed.
func Bytes(seed string, n int) []byte {
	b := make([]byte, n)
	New(seed).Read(b)
	return b
}

// Ed25519 returns the Ed25519 key whose seed is Bytes(seed, 32).
func Ed25519(seed string) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(Bytes(seed, 32)) }

// P256 returns a P-256 key derived from seed, wrapped in a deterministic
// signer.
func P256(seed string) *Signer {
	for i := 0; ; i++ {
		d := Bytes(seed+"/p256/"+string(rune('a'+i)), 32)
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err == nil {
			return &Signer{Key: k}
		}
	}
}

// Signer is a crypto.Signer over P-256 whose signatures are a function of
// the key and the digest only (the nonce is HMAC-SHA256(d, digest || i),
// in the spirit of RFC 6979). Go's ecdsa package ignores caller-supplied
// randomness, so vectors that must regenerate byte-for-byte use this.
type Signer struct {
	Key *ecdsa.PrivateKey
}

// Public returns the public key.
func (s *Signer) Public() crypto.PublicKey { return &s.Key.PublicKey }

var p256N = elliptic.P256().Params().N

// Sign returns an ASN.1 DER ECDSA signature of the 32-byte digest.
func (s *Signer) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	if len(digest) != 32 {
		return nil, errors.New("detrand: digest must be 32 bytes")
	}
	dBytes, err := s.Key.Bytes()
	if err != nil {
		return nil, err
	}
	d := new(big.Int).SetBytes(dBytes)
	e := new(big.Int).SetBytes(digest)
	for i := byte(0); ; i++ {
		m := hmac.New(sha256.New, dBytes)
		m.Write(digest)
		m.Write([]byte{i})
		kb := m.Sum(nil)
		k := new(big.Int).SetBytes(kb)
		if k.Sign() == 0 || k.Cmp(p256N) >= 0 {
			continue
		}
		kp, err := ecdh.P256().NewPrivateKey(k.FillBytes(make([]byte, 32)))
		if err != nil {
			continue
		}
		pt := kp.PublicKey().Bytes() // 0x04 || X || Y
		r := new(big.Int).SetBytes(pt[1:33])
		r.Mod(r, p256N)
		if r.Sign() == 0 {
			continue
		}
		sv := new(big.Int).Mul(r, d)
		sv.Add(sv, e)
		sv.Mul(sv, new(big.Int).ModInverse(k, p256N))
		sv.Mod(sv, p256N)
		if sv.Sign() == 0 {
			continue
		}
		var b cryptobyte.Builder
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(r)
			b.AddASN1BigInt(sv)
		})
		return b.Bytes()
	}
}
