// Package password generates and holds the random passwords jitkey gives to
// just-in-time accounts.
//
// A Secret never prints itself: fmt, log/slog, encoding/json and
// encoding.TextMarshaler all see "REDACTED". The bytes are reachable only
// through Bytes, for the one place that must hand them to the operating
// system (a command's stdin, an LDAP modify, a login surface), and can be
// overwritten with Wipe once they have been used.
//
// Generate draws passwords from a caller-supplied random source (crypto/rand
// in production) by rejection sampling, so every character of the alphabet
// is equally likely and every password that meets the complexity rules is
// equally likely.
package password

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints in place of its bytes.
const Redacted = "REDACTED"

// Secret holds password bytes. The zero value is an empty secret.
//
// Copies of a Secret share the same bytes: Wipe on any copy wipes them all.
// The bytes sit two pointers deep so that even reflection-based printing of
// a struct holding a Secret in an unexported field (where fmt cannot call
// Format) shows at most an address, never the bytes.
type Secret struct {
	p *secretBytes
}

type secretBytes struct {
	b *[]byte
}

func newSecret(b []byte) Secret { return Secret{p: &secretBytes{b: &b}} }

// FromBytes returns a Secret holding a copy of b. The caller should wipe b
// when it no longer needs it.
func FromBytes(b []byte) Secret {
	if len(b) == 0 {
		return Secret{}
	}
	return newSecret(append([]byte(nil), b...))
}

// Bytes returns the secret's bytes. The slice is the Secret's own storage,
// not a copy: callers must not modify or retain it, and should copy it only
// into buffers they wipe themselves.
func (s Secret) Bytes() []byte {
	if s.p == nil {
		return nil
	}
	return *s.p.b
}

// Len returns the number of bytes in the secret.
func (s Secret) Len() int { return len(s.Bytes()) }

// IsZero reports whether the secret is empty (or has been wiped).
func (s Secret) IsZero() bool {
	for _, c := range s.Bytes() {
		if c != 0 {
			return false
		}
	}
	return true
}

// Clone returns an independent copy of s, which Wipe on s does not affect.
func (s Secret) Clone() Secret { return FromBytes(s.Bytes()) }

// Wipe overwrites the secret's bytes with zeros, in every copy of s.
func (s Secret) Wipe() {
	clear(s.Bytes())
}

// String returns "REDACTED".
func (s Secret) String() string { return Redacted }

// GoString returns "REDACTED", for the %#v verb.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter: every verb prints "REDACTED".
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer: the secret logs as "REDACTED".
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler with "REDACTED", so
// text-based encoders never see the bytes.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalJSON implements json.Marshaler with the JSON string "REDACTED".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// Equal reports, in time that depends only on the lengths, whether a and b
// hold the same bytes. Two empty secrets are equal.
func Equal(a, b Secret) bool {
	return subtle.ConstantTimeCompare(a.Bytes(), b.Bytes()) == 1
}
