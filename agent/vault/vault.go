// Package vault keeps the agent's secrets at rest (offline code keys, the
// shared-mode tenant secret) sealed under a key that the platform
// protects. The core uses the Sealer interface; a platform provides it:
// on Linux a 32-byte key file, mode 0600, owned by the agent, in its state
// directory (FileKey); on Windows DPAPI with machine scope and on macOS
// the System keychain, which their issues add in winhelper/ and macos/.
//
// Sealing is XChaCha20-Poly1305 (golang.org/x/crypto) with a random nonce
// and the caller's context as associated data, so a sealed value copied
// to another row (another technician, another purpose) does not open.
package vault

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sealer seals and opens small secrets. Context names what the secret is
// (and whose); Open fails unless given the context it was sealed with.
type Sealer interface {
	Seal(plaintext, context []byte) ([]byte, error)
	Open(sealed, context []byte) ([]byte, error)
}

// KeyFile is the name of the Linux key file in the state directory.
const KeyFile = "vault.key"

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// adPrefix domain-separates the associated data.
const adPrefix = "jitkey/v1/agent/vault\x00"

// Errors of the vault.
var (
	// ErrOpen: a sealed value does not open (other key, other context,
	// altered). It says nothing more.
	ErrOpen = errors.New("vault: sealed secret does not open")
	// ErrKeyFile: the key file is missing where it must exist, or its
	// size, owner or mode is wrong.
	ErrKeyFile = errors.New("vault: key file unusable")
)

// FileKey is a Sealer under a key held in a file only its owner can read.
type FileKey struct {
	key  [chacha20poly1305.KeySize]byte
	rand io.Reader
}

// OpenFileKey loads the key file in dir, creating it (from rnd, mode
// 0600) if it does not exist yet. An existing file must be a regular
// file of 32 bytes, owned by this process's user, readable by nobody else.
func OpenFileKey(dir string, rnd io.Reader) (*FileKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	path := filepath.Join(dir, KeyFile)
	k := &FileKey{rand: rnd}
	b, err := readKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if _, err := io.ReadFull(rnd, k.key[:]); err != nil {
			return nil, fmt.Errorf("vault: new key: %w", err)
		}
		if err := writeKeyFile(path, k.key[:]); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	copy(k.key[:], b)
	clear(b)
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if !fi.Mode().IsRegular() || !privateMode(fi.Mode()) || fi.Size() != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("%w: %s must be a regular file of %d bytes, mode 0600 (is %v, %d bytes)",
			ErrKeyFile, path, chacha20poly1305.KeySize, fi.Mode(), fi.Size())
	}
	if !ownedBySelf(fi) {
		return nil, fmt.Errorf("%w: %s is not owned by the agent's user", ErrKeyFile, path)
	}
	b := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("vault: read %s: %w", path, err)
	}
	return b, nil
}

func writeKeyFile(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return fmt.Errorf("vault: create %s: %w", path, err)
	}
	_, werr := f.Write(key)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return fmt.Errorf("vault: write %s: %w", path, err)
	}
	return nil
}

func ad(context []byte) []byte {
	return append([]byte(adPrefix), context...)
}

// Seal seals plaintext for context: version u8 || nonce (24) || ciphertext.
func (k *FileKey) Seal(plaintext, context []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.key[:])
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(k.rand, out[1:]); err != nil {
		return nil, fmt.Errorf("vault: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, ad(context)), nil
}

// Open opens a value Seal made with the same key and context.
func (k *FileKey) Open(sealed, context []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.key[:])
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Wipe clears the key from memory; the FileKey is unusable afterwards.
func (k *FileKey) Wipe() { clear(k.key[:]) }
