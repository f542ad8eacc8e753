package vault_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitkey/jitkey/agent/vault"
)

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	k, err := vault.OpenFileKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, vault.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("key file %v %v", fi, err)
	}
	secret := []byte("offline key of nik on W11")
	sealed, err := k.Seal(secret, []byte("otp-named\x00tech-nik"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value holds the plaintext")
	}
	// The same key file opens it after a restart.
	k2, err := vault.OpenFileKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k2.Open(sealed, []byte("otp-named\x00tech-nik"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q %v", got, err)
	}
	// Another context, an altered byte, another key: no.
	if _, err := k2.Open(sealed, []byte("otp-named\x00tech-sam")); !errors.Is(err, vault.ErrOpen) {
		t.Errorf("other context: %v", err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := k2.Open(bad, []byte("otp-named\x00tech-nik")); !errors.Is(err, vault.ErrOpen) {
			t.Fatalf("byte %d altered: %v", i, err)
		}
	}
	other, err := vault.OpenFileKey(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(sealed, []byte("otp-named\x00tech-nik")); !errors.Is(err, vault.ErrOpen) {
		t.Errorf("other key: %v", err)
	}
	if _, err := k2.Open(sealed[:10], nil); !errors.Is(err, vault.ErrOpen) {
		t.Errorf("truncated: %v", err)
	}
}

// TestKeyFileChecks: a key file readable by others, of the wrong size, or
// a symbolic link is refused, not used.
func TestKeyFileChecks(t *testing.T) {
	for name, setup := range map[string]func(dir string) error{
		"group readable": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, vault.KeyFile), make([]byte, 32), 0o640)
		},
		"short": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, vault.KeyFile), make([]byte, 31), 0o600)
		},
		"symlink": func(dir string) error {
			target := filepath.Join(dir, "elsewhere")
			if err := os.WriteFile(target, make([]byte, 32), 0o600); err != nil {
				return err
			}
			return os.Symlink(target, filepath.Join(dir, vault.KeyFile))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := setup(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := vault.OpenFileKey(dir, nil); err == nil {
				t.Fatal("unsafe key file accepted")
			}
		})
	}
}
