package protocol

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// DocType identifies the kind of a signed document. It is part of what is
// signed, so a signature over one kind can never be presented as another.
type DocType uint8

// Document types. The signing input of a document is
//
//	"jitkey/v1/sig/" || name || 0x00 || body
//
// where name is DocType.String() and body the document's canonical CBOR.
const (
	DocTechCert   DocType = 1 // signed by the MSP authority key (Ed25519)
	DocDeviceCert DocType = 2 // signed by the MSP authority key (Ed25519)
	DocPolicy     DocType = 3 // signed by the MSP authority key (Ed25519)
	DocApproval   DocType = 4 // signed by the technician's approval key (P-256)
	DocAudit      DocType = 5 // signed by the recording agent's identity key (Ed25519)
	DocEndReceipt DocType = 6 // signed by the agent's identity key (Ed25519), SPEC.md 6.6
	DocCoApproval DocType = 7 // signed by the second approver's approval key (P-256), SPEC.md 11.14
)

func (t DocType) String() string {
	switch t {
	case DocTechCert:
		return "tech-cert"
	case DocDeviceCert:
		return "device-cert"
	case DocPolicy:
		return "policy"
	case DocApproval:
		return "approval"
	case DocAudit:
		return "audit"
	case DocEndReceipt:
		return "end-receipt"
	case DocCoApproval:
		return "co-approval"
	}
	return fmt.Sprintf("doctype(%d)", uint8(t))
}

// ErrBadSignature is returned for any signature or document-type mismatch.
// It deliberately carries no detail.
var ErrBadSignature = errors.New("protocol: signature verification failed")

// Signed is a document with its signature, on the wire:
//
//	map {
//	  1: DocType (uint)
//	  2: body (bytes, canonical CBOR of the document)
//	  3: signature (bytes; 64, Ed25519 or P-256 r||s)
//	}
type Signed struct {
	Type DocType `cbor:"1,keyasint"`
	Body []byte  `cbor:"2,keyasint"`
	Sig  []byte  `cbor:"3,keyasint"`
}

// SigningInput returns the bytes a signature of the given type covers.
func SigningInput(t DocType, body []byte) []byte {
	name := t.String()
	in := make([]byte, 0, len("jitkey/v1/sig/")+len(name)+1+len(body))
	in = append(in, "jitkey/v1/sig/"...)
	in = append(in, name...)
	in = append(in, 0)
	return append(in, body...)
}

// SignEd25519 encodes doc and signs it with an Ed25519 key.
func SignEd25519(t DocType, doc any, key ed25519.PrivateKey) (Signed, error) {
	body, err := Marshal(doc)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Type: t, Body: body, Sig: ed25519.Sign(key, SigningInput(t, body))}, nil
}

// SignP256 encodes doc and signs it with a P-256 key (the approval key).
// signer may be an *ecdsa.PrivateKey or any crypto.Signer over P-256 that
// returns ASN.1 signatures, such as a hardware-backed key.
func SignP256(t DocType, doc any, signer crypto.Signer, rand io.Reader) (Signed, error) {
	body, err := Marshal(doc)
	if err != nil {
		return Signed{}, err
	}
	h := sha256.Sum256(SigningInput(t, body))
	var der []byte
	if k, ok := signer.(*ecdsa.PrivateKey); ok {
		der, err = ecdsa.SignASN1(rand, k, h[:])
	} else {
		der, err = signer.Sign(rand, h[:], crypto.SHA256)
	}
	if err != nil {
		return Signed{}, fmt.Errorf("protocol: sign %s: %w", t, err)
	}
	sig, err := ApprovalSigFromASN1(der)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Type: t, Body: body, Sig: sig}, nil
}

// VerifyEd25519 checks s's type and signature and decodes its body into doc.
func (s Signed) VerifyEd25519(t DocType, key IdentityKey, doc any) error {
	if s.Type != t || !key.Verify(SigningInput(t, s.Body), s.Sig) {
		return ErrBadSignature
	}
	return Unmarshal(s.Body, doc)
}

// VerifyP256 checks s's type and P-256 signature and decodes its body.
func (s Signed) VerifyP256(t DocType, key ApprovalKey, doc any) error {
	if s.Type != t || !key.Verify(SigningInput(t, s.Body), s.Sig) {
		return ErrBadSignature
	}
	return Unmarshal(s.Body, doc)
}

// Encode returns the canonical CBOR of s.
func (s Signed) Encode() ([]byte, error) { return Marshal(s) }

// DecodeSigned decodes a Signed envelope (without verifying it).
func DecodeSigned(b []byte) (Signed, error) {
	var s Signed
	if err := Unmarshal(b, &s); err != nil {
		return Signed{}, err
	}
	if len(s.Sig) != 64 || len(s.Body) == 0 {
		return Signed{}, fmt.Errorf("%w: signed envelope", ErrMalformed)
	}
	return s, nil
}

// Hash returns SHA-256 of the canonical encoding of s; audit records chain
// by it.
func (s Signed) Hash() ([32]byte, error) {
	b, err := Marshal(s)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}
