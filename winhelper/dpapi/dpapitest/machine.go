// Package dpapitest is a fake of DPAPI's CryptProtectData and
// CryptUnprotectData for dpapi.Protector: each Machine has its own key
// (as DPAPI's machine master key), the optional entropy must match, an
// altered blob does not open, and every call's flags are recorded.
package dpapitest

import (
	"crypto/rand"
	"errors"
	"slices"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrDecrypt is what Unprotect returns for anything that does not open
// (CryptUnprotectData fails with ERROR_INVALID_DATA or NTE_BAD_DATA;
// the fake does not tell which).
var ErrDecrypt = errors.New("dpapitest: CryptUnprotectData failed")

// Machine is one computer's DPAPI. It is safe for concurrent use.
type Machine struct {
	key [chacha20poly1305.KeySize]byte

	mu    sync.Mutex
	flags []uint32
}

// NewMachine returns a Machine with a random key.
func NewMachine() *Machine {
	m := &Machine{}
	_, _ = rand.Read(m.key[:])
	return m
}

// Flags returns the flags of every call so far.
func (m *Machine) Flags() []uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.flags)
}

func (m *Machine) record(f uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flags = append(m.flags, f)
}

// Protect implements dpapi.Protector.
func (m *Machine) Protect(data, entropy []byte, flags uint32) ([]byte, error) {
	m.record(flags)
	aead, err := chacha20poly1305.NewX(m.key[:])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(data)+aead.Overhead())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, data, entropy), nil
}

// Unprotect implements dpapi.Protector.
func (m *Machine) Unprotect(blob, entropy []byte, flags uint32) ([]byte, error) {
	m.record(flags)
	aead, err := chacha20poly1305.NewX(m.key[:])
	if err != nil {
		return nil, err
	}
	if len(blob) < aead.NonceSize() {
		return nil, ErrDecrypt
	}
	out, err := aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], entropy)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}
