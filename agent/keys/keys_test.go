package keys_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/keys"
)

// fixedRand returns a deterministic randomness source.
func fixedRand() *rand.ChaCha8 { return rand.NewChaCha8([32]byte{'j', 'i', 't', 'k', 'e', 'y'}) }

func generate(t *testing.T) (string, *keys.Keys) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	k, err := keys.Generate(dir, fixedRand())
	if err != nil {
		t.Fatal(err)
	}
	return dir, k
}

func TestGenerateModes(t *testing.T) {
	dir, _ := generate(t)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Fatalf("state dir: %v %v", fi.Mode(), err)
	}
	for _, name := range []string{keys.IdentityFile, keys.NoiseFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode() != 0o600 || fi.Size() != 32 {
			t.Errorf("%s: mode %v, %d bytes, %v", name, fi.Mode(), fi.Size(), err)
		}
	}
	// An existing directory with a looser mode is tightened.
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Generate(loose, fixedRand()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(loose); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("existing dir: %v %v", fi.Mode(), err)
	}
}

func TestLoadGivesSameKeys(t *testing.T) {
	dir, k := generate(t)
	l, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Identity.Equal(l.Identity) || !bytes.Equal(k.Noise.Private, l.Noise.Private) || !bytes.Equal(k.Noise.Public, l.Noise.Public) {
		t.Fatal("loaded keys differ from the generated ones")
	}
	if k.IdentityPublic() != l.IdentityPublic() || k.NoisePublic() != l.NoisePublic() || k.Mailbox() != l.Mailbox() {
		t.Fatal("public keys or mailbox differ after reload")
	}
	// Same randomness, same keys; and the two keys are distinct.
	_, k2 := generate(t)
	if !k.Identity.Equal(k2.Identity) {
		t.Fatal("Generate is not a function of its randomness")
	}
	if bytes.Equal(k.Identity.Seed(), k.Noise.Private) {
		t.Fatal("identity seed and noise scalar are the same bytes")
	}
}

func TestGenerateRefusesExisting(t *testing.T) {
	dir, k := generate(t)
	if _, err := keys.Generate(dir, fixedRand()); !errors.Is(err, keys.ErrExist) {
		t.Fatalf("second Generate: %v, want ErrExist", err)
	}
	l, err := keys.Load(dir)
	if err != nil || !k.Identity.Equal(l.Identity) {
		t.Fatalf("keys changed by a refused Generate: %v", err)
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		setup func(t *testing.T, path string)
		want  error
	}{
		{"group-readable identity", keys.IdentityFile, chmod(0o640), keys.ErrUnsafeMode},
		{"world-readable noise", keys.NoiseFile, chmod(0o604), keys.ErrUnsafeMode},
		{"group-writable identity", keys.IdentityFile, chmod(0o620), keys.ErrUnsafeMode},
		{"directory in place of a key", keys.NoiseFile, func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, keys.ErrUnsafeMode},
		{"missing", keys.IdentityFile, func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist},
		{"short", keys.NoiseFile, func(t *testing.T, path string) {
			if err := os.WriteFile(path, make([]byte, 31), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"long", keys.IdentityFile, func(t *testing.T, path string) {
			if err := os.WriteFile(path, make([]byte, 64), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := generate(t)
			tt.setup(t, filepath.Join(dir, tt.file))
			_, err := keys.Load(dir)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Load: %v, want %v", err, tt.want)
			}
		})
	}
}

func chmod(mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogValue checks that logging Keys shows no private key bytes in any
// common rendering (hex, base64, decimal list).
func TestLogValue(t *testing.T) {
	_, k := generate(t)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "keys", k)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "keys", k)
	out := buf.String()
	if !strings.Contains(out, k.Mailbox().String()) || !strings.Contains(out, "REDACTED") {
		t.Fatalf("log %q: want the mailbox and REDACTED", out)
	}
	for _, priv := range [][]byte{k.Identity.Seed(), k.Noise.Private} {
		head := priv[:6]
		for _, leak := range []string{
			hex.EncodeToString(head),
			strings.ToUpper(hex.EncodeToString(head)),
			base64.StdEncoding.EncodeToString(head),
			strings.Trim(fmt.Sprint(head), "[]"),
			strings.ReplaceAll(strings.Trim(fmt.Sprint(head), "[]"), " ", ","),
		} {
			if strings.Contains(out, leak) {
				t.Errorf("private key bytes %q in log %q", leak, out)
			}
		}
	}
}
