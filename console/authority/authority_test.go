package authority

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

func TestKeysSealedAndPlain(t *testing.T) {
	for _, pass := range []string{"", "correct horse"} {
		t.Run("pass="+pass, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			a, p, err := Create(dir, Options{Passphrase: []byte(pass), ScryptLogN: 10, Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(dir)
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("dir mode %v", fi.Mode().Perm())
			}
			for _, f := range []string{MSPKeyFile, IdentityFile, NoiseFile} {
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %v: %v", f, fi.Mode().Perm(), err)
				}
			}
			if _, _, err := Create(dir, Options{Rand: rand.Reader}); !errors.Is(err, ErrExists) {
				t.Errorf("second create: %v", err)
			}
			sealed, _ := IsSealed(dir)
			if sealed != (pass != "") {
				t.Errorf("sealed = %v", sealed)
			}
			got, err := LoadAuthority(dir, []byte(pass))
			if err != nil || got.Public() != a.Public() {
				t.Fatalf("load: %v", err)
			}
			if pass != "" {
				if _, err := LoadAuthority(dir, []byte("wrong")); !errors.Is(err, ErrPassphrase) {
					t.Errorf("wrong passphrase: %v", err)
				}
				if _, err := LoadAuthority(dir, nil); !errors.Is(err, ErrNeedPass) {
					t.Errorf("no passphrase: %v", err)
				}
				b, _ := os.ReadFile(filepath.Join(dir, MSPKeyFile))
				b[len(b)-1] ^= 1
				os.WriteFile(filepath.Join(dir, MSPKeyFile), b, 0o600)
				if _, err := LoadAuthority(dir, []byte(pass)); !errors.Is(err, ErrPassphrase) {
					t.Errorf("tampered key file: %v", err)
				}
			}
			p2, err := LoadPeer(dir)
			if err != nil || p2.NoisePublic() != p.NoisePublic() || p2.Mailbox() != p.Mailbox() {
				t.Fatalf("peer: %v", err)
			}
			os.Chmod(filepath.Join(dir, IdentityFile), 0o644)
			if _, err := LoadPeer(dir); err == nil {
				t.Error("a world-readable identity key was accepted")
			}
		})
	}
}

// TestSignPolicyTooLarge: a policy that no message could carry is refused
// at signing time with an explanation, whether it is just over
// protocol.PageBudget or beyond what even encodes.
func TestSignPolicyTooLarge(t *testing.T) {
	a, _, err := Create(filepath.Join(t.TempDir(), "state"), Options{Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	p := protocol.Policy{
		Tenant: "acme", Version: 1, LoginMode: protocol.ModeNamed, MaxSession: 3600,
		Offline: protocol.OfflineParams{Digits: 6, Period: 30, MaxFailures: 5, LockoutBase: 30, LockoutLimit: 3600},
		Console: strings.Repeat("a", 52) + "@relay.example.com:4433",
		Revoked: []uint64{}, Roster: []protocol.RosterEntry{},
	}
	shares := func(n int) []protocol.DeviceShare {
		out := make([]protocol.DeviceShare, n)
		for i := range out {
			out[i].DeviceID[0], out[i].DeviceID[1] = byte(i>>8), byte(i)
			out[i].Entries = []string{"jsmith", "mlopez"}
		}
		return out
	}
	for _, tc := range []struct {
		devices int
		ok      bool
	}{{0, true}, {1500, true}, {1700, false}, {4000, false}} {
		t.Run(fmt.Sprint(tc.devices, " custom shares"), func(t *testing.T) {
			p.Shares = shares(tc.devices)
			s, err := a.SignPolicy(&p)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := s.Encode()
				if len(b) > protocol.PageBudget {
					t.Fatalf("signed %d bytes", len(b))
				}
				return
			}
			if !errors.Is(err, ErrPolicyTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("lists %d devices with a custom share list", tc.devices)) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
