// Package keys creates and loads the agent's long-term keys: the Ed25519
// identity key (relay authentication, audit signatures) and the X25519
// Noise static key (end-to-end sessions). Each is a file holding the raw
// 32-byte private key (Ed25519 seed, X25519 scalar), mode 0600, in the
// agent's 0700 state directory. They never leave that directory.
package keys

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"

	"github.com/jitkey/jitkey/protocol"
)

// File names inside the state directory.
const (
	IdentityFile = "identity.key"
	NoiseFile    = "noise.key"
)

// Keys are the agent's key pairs.
type Keys struct {
	Identity ed25519.PrivateKey
	Noise    noise.DHKey
}

// IdentityPublic returns the identity public key in wire form.
func (k *Keys) IdentityPublic() protocol.IdentityKey {
	var p protocol.IdentityKey
	copy(p[:], k.Identity.Public().(ed25519.PublicKey))
	return p
}

// NoisePublic returns the Noise static public key in wire form.
func (k *Keys) NoisePublic() protocol.NoiseKey {
	var p protocol.NoiseKey
	copy(p[:], k.Noise.Public)
	return p
}

// LogValue implements slog.LogValuer: the keys log as their public halves
// (the identity key as its mailbox); the private keys never appear.
func (k *Keys) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mailbox", k.Mailbox().String()),
		slog.String("private", "REDACTED"),
	)
}

// Mailbox returns the relay mailbox of the identity key.
func (k *Keys) Mailbox() protocol.MailboxID {
	return protocol.MailboxFor(k.Identity.Public().(ed25519.PublicKey))
}

// ErrExist is returned by Generate when keys already exist.
var ErrExist = errors.New("keys: keys already exist")

// Generate creates both keys in dir (created 0700 if needed) from rand.
func Generate(dir string, rand io.Reader) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	var seed, scalar [32]byte
	defer clear(seed[:]) // fromBytes copies them, as Load's raw
	defer clear(scalar[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("keys: random: %w", err)
	}
	if _, err := io.ReadFull(rand, scalar[:]); err != nil {
		return nil, fmt.Errorf("keys: random: %w", err)
	}
	for _, kf := range []struct {
		name string
		b    []byte
	}{{IdentityFile, seed[:]}, {NoiseFile, scalar[:]}} {
		name, b := kf.name, kf.b
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return nil, ErrExist
		}
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("keys: write %s: %w", name, err)
		}
	}
	return fromBytes(seed[:], scalar[:])
}

// ErrUnsafeMode is returned by Load for a key file that is not a regular
// file or that anyone but its owner may read or write.
var ErrUnsafeMode = errors.New("keys: unsafe key file")

// Load reads both keys from dir. It refuses key files readable or writable
// by anyone but their owner.
func Load(dir string) (*Keys, error) {
	var raw [2][]byte
	for i, name := range []string{IdentityFile, NoiseFile} {
		b, err := readKey(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	k, err := fromBytes(raw[0], raw[1])
	clear(raw[0])
	clear(raw[1])
	return k, err
}

// readKey reads one 32-byte key file, checking the mode of the file it
// opened (not of whatever the path names a moment before or after).
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if !st.Mode().IsRegular() || !privateMode(st.Mode()) {
		return nil, fmt.Errorf("%w: %s has mode %v, want 0600", ErrUnsafeMode, path, st.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, 33))
	if err != nil {
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	if len(b) != 32 {
		clear(b)
		return nil, fmt.Errorf("keys: %s: %d bytes, want 32", path, len(b))
	}
	return b, nil
}

func fromBytes(seed, scalar []byte) (*Keys, error) {
	pub, err := curve25519.X25519(scalar, curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("keys: noise key: %w", err)
	}
	return &Keys{
		Identity: ed25519.NewKeyFromSeed(seed),
		Noise:    noise.DHKey{Private: append([]byte(nil), scalar...), Public: pub},
	}, nil
}
