// Package dpapi is the agent's vault.Sealer on Windows: secrets at rest
// are protected with DPAPI (CryptProtectData) in machine scope
// (CRYPTPROTECT_LOCAL_MACHINE), so a copy of the agent's database opens on
// no other computer, with the vault context as DPAPI's "optional
// entropy", so a value copied to another row (another purpose, another
// technician) does not open.
//
// Machine scope means any process on this computer that can read a
// sealed value and knows its context can open it: the sealed values live
// in the agent's database, whose directory the installer restricts to
// SYSTEM and Administrators. Where DPAPI is missing (not Windows), New
// returns errors.ErrUnsupported.
package dpapi

import (
	"errors"
	"fmt"
)

// Flags passed to CryptProtectData / CryptUnprotectData (wincrypt.h).
const (
	// FlagUIForbidden: CRYPTPROTECT_UI_FORBIDDEN; the agent is a service.
	FlagUIForbidden = 0x1
	// FlagLocalMachine: CRYPTPROTECT_LOCAL_MACHINE, machine scope.
	FlagLocalMachine = 0x4
)

// entropyPrefix domain-separates jitkey's entropy from other DPAPI users
// on the computer (the same string as the Linux vault's associated data).
const entropyPrefix = "jitkey/v1/agent/vault\x00"

// Protector is DPAPI's pair of calls: Protect is CryptProtectData(data,
// NULL description, entropy, NULL, NULL, flags), Unprotect is
// CryptUnprotectData with the same entropy and flags. Both return a
// fresh slice the caller owns.
type Protector interface {
	Protect(data, entropy []byte, flags uint32) ([]byte, error)
	Unprotect(blob, entropy []byte, flags uint32) ([]byte, error)
}

// ErrOpen: a sealed value does not open (another computer, another
// context, altered). It says nothing more.
var ErrOpen = errors.New("dpapi: sealed secret does not open")

// Sealer implements vault.Sealer with DPAPI.
type Sealer struct {
	p Protector
}

// NewWith returns a Sealer over p (the system's, or a fake in tests).
func NewWith(p Protector) *Sealer { return &Sealer{p: p} }

// New returns the Sealer over the system's DPAPI, or
// errors.ErrUnsupported where there is none.
func New() (*Sealer, error) {
	p, err := systemProtector()
	if err != nil {
		return nil, err
	}
	return NewWith(p), nil
}

// Entropy returns DPAPI's optional entropy for a vault context.
func Entropy(context []byte) []byte {
	return append([]byte(entropyPrefix), context...)
}

const flags = FlagLocalMachine | FlagUIForbidden

// Seal implements vault.Sealer.
func (s *Sealer) Seal(plaintext, context []byte) ([]byte, error) {
	out, err := s.p.Protect(plaintext, Entropy(context), flags)
	if err != nil {
		return nil, fmt.Errorf("dpapi: seal: %w", err)
	}
	return out, nil
}

// Open implements vault.Sealer. Any failure is ErrOpen (the cause goes
// nowhere: a wrong context and an altered blob look the same).
func (s *Sealer) Open(sealed, context []byte) ([]byte, error) {
	out, err := s.p.Unprotect(sealed, Entropy(context), flags)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
