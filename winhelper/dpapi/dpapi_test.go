package dpapi_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/winhelper/dpapi"
	"github.com/jitkey/jitkey/winhelper/dpapi/dpapitest"
)

var _ vault.Sealer = (*dpapi.Sealer)(nil)

func TestSealer(t *testing.T) {
	m := dpapitest.NewMachine()
	s := dpapi.NewWith(m)
	secret := []byte("offline code key 0123456789abcdef")
	sealed, err := s.Seal(secret, []byte("tenant/acme"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value holds the plaintext")
	}
	got, err := s.Open(sealed, []byte("tenant/acme"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	altered := bytes.Clone(sealed)
	altered[len(altered)-1] ^= 1
	for name, c := range map[string]struct {
		s       *dpapi.Sealer
		blob    []byte
		context string
	}{
		"other context":  {s, sealed, "tenant/other"},
		"altered":        {s, altered, "tenant/acme"},
		"other computer": {dpapi.NewWith(dpapitest.NewMachine()), sealed, "tenant/acme"},
		"empty":          {s, nil, "tenant/acme"},
	} {
		if _, err := c.s.Open(c.blob, []byte(c.context)); !errors.Is(err, dpapi.ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", name, err)
		}
	}
	for _, f := range m.Flags() {
		if f != dpapi.FlagLocalMachine|dpapi.FlagUIForbidden {
			t.Fatalf("flags %#x, want CRYPTPROTECT_LOCAL_MACHINE|CRYPTPROTECT_UI_FORBIDDEN", f)
		}
	}
}

func TestEntropyIsDomainSeparated(t *testing.T) {
	e := dpapi.Entropy([]byte("x"))
	if !bytes.HasPrefix(e, []byte("jitkey/v1/agent/vault\x00")) || !bytes.HasSuffix(e, []byte("x")) {
		t.Fatalf("entropy %q", e)
	}
}
