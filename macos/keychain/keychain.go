// Package keychain keeps the agent's vault key (agent/vault) in the macOS
// System keychain, as a generic password item, through security(1):
// `security find-generic-password -s SERVICE -a ACCOUNT -w KEYCHAIN` reads
// it, and `security -i` (commands on stdin, so the key never appears in a
// process's arguments) runs `add-generic-password -U` to store it. The
// System keychain is unlocked by the system key, readable by root only;
// the item's access list trusts /usr/bin/security, which created it.
//
// Secrets are sealed as by vault.FileKey (XChaCha20-Poly1305 with the
// caller's context as associated data) under that key: the keychain holds
// one 32-byte key, not every secret.
//
// It has been tested only against mactest's fake `security`; the
// commands are those security(1) documents.
package keychain

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/macos/command"
)

// Defaults of Config.
const (
	// SystemKeychain is the keychain file.
	SystemKeychain = "/Library/Keychains/System.keychain"
	// DefaultService and DefaultAccount name the item.
	DefaultService = "com.jitkey.agent"
	DefaultAccount = "vault-key"
)

// exitItemNotFound is security's exit status for errSecItemNotFound.
const exitItemNotFound = 44

// ErrBadItem: the keychain item exists but is not a hex-encoded 32-byte
// key. It is left alone (never overwritten: secrets sealed under the old
// key would be lost).
var ErrBadItem = errors.New("keychain: vault key item is malformed")

// Config configures Open.
type Config struct {
	// Runner runs security(1). Required.
	Runner command.Runner
	// Service and Account name the item; "" means the defaults.
	Service, Account string
	// Keychain is the keychain file; "" means SystemKeychain.
	Keychain string
	// Rand makes a new key and the nonces; nil means crypto/rand.
	Rand io.Reader
}

// Open returns a vault.Sealer under the key in the keychain, creating the
// key (and the item) if there is none yet.
func Open(ctx context.Context, cfg Config) (vault.Sealer, error) {
	if cfg.Runner == nil {
		return nil, errors.New("keychain: config has no Runner")
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if cfg.Account == "" {
		cfg.Account = DefaultAccount
	}
	if cfg.Keychain == "" {
		cfg.Keychain = SystemKeychain
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	for _, s := range []string{cfg.Service, cfg.Account, cfg.Keychain} {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"'\\") {
			return nil, fmt.Errorf("keychain: invalid item name %q", s)
		}
	}
	key, err := read(ctx, cfg)
	if errors.Is(err, errNotFound) {
		key, err = create(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return vault.FromKey(key, cfg.Rand)
}

var errNotFound = errors.New("keychain: no vault key item")

func read(ctx context.Context, cfg Config) ([]byte, error) {
	out, _, err := cfg.Runner.Run(ctx, nil, "security", "find-generic-password", "-s", cfg.Service, "-a", cfg.Account, "-w", cfg.Keychain)
	defer clear(out)
	if command.ExitCode(err) == exitItemNotFound {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("keychain: read vault key: %w", err)
	}
	h := bytes.TrimSpace(out)
	key := make([]byte, 32)
	if n, err := hex.Decode(key, h); err != nil || n != 32 || len(h) != 64 {
		clear(key)
		return nil, ErrBadItem
	}
	return key, nil
}

func create(ctx context.Context, cfg Config) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := io.ReadFull(cfg.Rand, key); err != nil {
		return nil, fmt.Errorf("keychain: new key: %w", err)
	}
	h := make([]byte, 64)
	hex.Encode(h, key)
	line := make([]byte, 0, 200)
	line = append(line, "add-generic-password -U -s "+cfg.Service+" -a "+cfg.Account+" -w "...)
	line = append(line, h...)
	line = append(line, " "+cfg.Keychain+"\n"...)
	_, stderr, err := cfg.Runner.Run(ctx, line, "security", "-i")
	clear(line)
	clear(h)
	if err == nil && len(bytes.TrimSpace(stderr)) > 0 {
		err = fmt.Errorf("security -i: %s", bytes.TrimSpace(stderr))
	}
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("keychain: store vault key: %w", err)
	}
	// Read it back: what is stored is what later runs will use.
	got, err := read(ctx, cfg)
	if err != nil || !bytes.Equal(got, key) {
		clear(key)
		clear(got)
		return nil, fmt.Errorf("keychain: vault key not stored as written: %v", err)
	}
	clear(got)
	return key, nil
}
