// Package biometric simulates the phone's biometric gate and the approval
// key that sits behind it. On a real phone the P-256 approval key lives in
// secure hardware (Secure Enclave, StrongBox) and every signature needs a
// fresh biometric check; here the gate is an interface and the key is a
// crypto.Signer that asks the gate before each signature.
package biometric

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/jitkey/jitkey/protocol"
)

// Errors a gate returns. Callers branch on them to tell the technician why
// nothing was signed.
var (
	ErrBiometricFailed    = errors.New("biometric: check failed")
	ErrBiometricCancelled = errors.New("biometric: cancelled by the user")
)

// Gate asks the technician to prove presence before a key use. reason is
// the text the phone shows in the biometric prompt.
type Gate interface {
	Authorize(ctx context.Context, reason string) error
}

// Fixed is a gate with a scripted outcome, as the simulator's --biometric
// flag selects: nil error (ok), ErrBiometricFailed or ErrBiometricCancelled.
type Fixed struct {
	Err error
	// Prompts records every reason shown, for tests and for the CLI's output.
	Prompts []string
}

// Authorize records the prompt and returns the scripted outcome.
func (f *Fixed) Authorize(ctx context.Context, reason string) error {
	f.Prompts = append(f.Prompts, reason)
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.Err
}

// Mode names of the --biometric flag.
const (
	ModeOK     = "ok"
	ModeFail   = "fail"
	ModeCancel = "cancel"
)

// ParseMode returns the fixed gate of a --biometric mode.
func ParseMode(mode string) (*Fixed, error) {
	switch mode {
	case ModeOK, "":
		return &Fixed{}, nil
	case ModeFail:
		return &Fixed{Err: ErrBiometricFailed}, nil
	case ModeCancel:
		return &Fixed{Err: ErrBiometricCancelled}, nil
	}
	return nil, fmt.Errorf("biometric: unknown mode %q (want ok, fail or cancel)", mode)
}

// Key is the approval key. Its private half is unexported: it can only sign
// through Signer, which passes the gate first.
type Key struct {
	priv *ecdsa.PrivateKey
	gate Gate
}

// Generate creates a new approval key behind gate. Creating the key is a
// key use on a real phone too, so the gate is asked first.
func Generate(ctx context.Context, gate Gate, rand io.Reader) (*Key, error) {
	if err := gate.Authorize(ctx, "create the jitkey approval key"); err != nil {
		return nil, err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("biometric: generate approval key: %w", err)
	}
	return &Key{priv: priv, gate: gate}, nil
}

// Parse loads a PKCS#8 encoded P-256 key (as Marshal wrote it) behind gate.
func Parse(der []byte, gate Gate) (*Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("biometric: parse approval key: %w", err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("biometric: approval key is not P-256")
	}
	return &Key{priv: priv, gate: gate}, nil
}

// Marshal returns the PKCS#8 encoding of the private key, for the
// simulator's storage. A real phone cannot export it; the simulator keeps it
// in a 0600 file (see package wallet).
func (k *Key) Marshal() ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k.priv) }

// Public returns the public half in its wire encoding.
func (k *Key) Public() protocol.ApprovalKey {
	pub, err := protocol.ApprovalKeyOf(&k.priv.PublicKey)
	if err != nil {
		panic("biometric: P-256 key does not encode: " + err.Error()) // cannot happen: checked at creation
	}
	return pub
}

// Signer returns a crypto.Signer that asks the gate with reason before each
// signature. ctx bounds the biometric prompt.
func (k *Key) Signer(ctx context.Context, reason string) crypto.Signer {
	return &gatedSigner{ctx: ctx, key: k, reason: reason}
}

// SignRaw signs SHA-256(msg) through the gate and returns the wire form
// r||s (protocol.ApprovalKey.Verify checks it).
func (k *Key) SignRaw(ctx context.Context, reason string, msg []byte, rand io.Reader) ([]byte, error) {
	s := k.Signer(ctx, reason)
	h := sha256.Sum256(msg)
	der, err := s.Sign(rand, h[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return protocol.ApprovalSigFromASN1(der)
}

type gatedSigner struct {
	ctx    context.Context
	key    *Key
	reason string
}

func (s *gatedSigner) Public() crypto.PublicKey { return &s.key.priv.PublicKey }

func (s *gatedSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 || len(digest) != 32 {
		return nil, errors.New("biometric: approval key signs SHA-256 digests only")
	}
	if err := s.key.gate.Authorize(s.ctx, s.reason); err != nil {
		return nil, err
	}
	return ecdsa.SignASN1(rand, s.key.priv, digest)
}
