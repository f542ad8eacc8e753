package keychain_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/macos/keychain"
	"github.com/jitkey/jitkey/macos/mactest"
)

// TestKeychainSealer runs against mactest's fake security(1).
func TestKeychainSealer(t *testing.T) {
	mac := mactest.New(mactest.Config{})
	ctx := t.Context()
	s, err := keychain.Open(ctx, keychain.Config{Runner: mac})
	if err != nil {
		t.Fatal(err)
	}
	item, ok := mac.KeychainItem(keychain.DefaultService, keychain.DefaultAccount)
	if !ok || len(item) != 64 {
		t.Fatalf("item %q", item)
	}
	for _, c := range mac.Calls() {
		if strings.Contains(strings.Join(c, " "), string(item)) {
			t.Fatalf("key in the arguments of %q", c)
		}
	}
	sealed, err := s.Seal([]byte("offline code key"), []byte("tech 1"))
	if err != nil {
		t.Fatal(err)
	}
	// A second Open (the agent restarted) finds the same key.
	s2, err := keychain.Open(ctx, keychain.Config{Runner: mac})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s2.Open(sealed, []byte("tech 1"))
	if err != nil || string(pt) != "offline code key" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := s2.Open(sealed, []byte("tech 2")); !errors.Is(err, vault.ErrOpen) {
		t.Fatalf("other context: %v", err)
	}
	if after, _ := mac.KeychainItem(keychain.DefaultService, keychain.DefaultAccount); !bytes.Equal(after, item) {
		t.Fatal("second Open replaced the key")
	}
}

func TestMalformedItemKept(t *testing.T) {
	mac := mactest.New(mactest.Config{})
	ctx := t.Context()
	// Store a malformed item through the fake's own interactive mode.
	if _, _, err := mac.Run(ctx, []byte("add-generic-password -U -s com.jitkey.agent -a vault-key -w nothex "+mactest.SystemKeychain+"\n"), "security", "-i"); err != nil {
		t.Fatal(err)
	}
	if _, err := keychain.Open(ctx, keychain.Config{Runner: mac}); !errors.Is(err, keychain.ErrBadItem) {
		t.Fatalf("Open: %v", err)
	}
	if item, _ := mac.KeychainItem("com.jitkey.agent", "vault-key"); string(item) != "nothex" {
		t.Fatal("malformed item overwritten")
	}
	if _, err := keychain.Open(ctx, keychain.Config{Runner: mac, Service: "bad name"}); err == nil {
		t.Fatal("service with a space accepted")
	}
	mac.FailNext("security -i", errors.New("keychain locked"))
	if _, err := keychain.Open(ctx, keychain.Config{Runner: mac, Account: "other"}); err == nil {
		t.Fatal("failed store accepted")
	}
}
