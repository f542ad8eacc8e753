package vault

import (
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// FromKey returns a Sealer (the same sealing as OpenFileKey's) under a
// 32-byte key that a platform keeps elsewhere: the macOS System keychain
// (macos/keychain). key is copied; rnd nil means crypto/rand.
func FromKey(key []byte, rnd io.Reader) (*FileKey, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("vault: key of %d bytes, want %d", len(key), chacha20poly1305.KeySize)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	k := &FileKey{rand: rnd}
	copy(k.key[:], key)
	return k, nil
}
