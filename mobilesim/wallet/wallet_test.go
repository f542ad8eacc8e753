package wallet

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitkey/jitkey/mobilesim/biometric"
)

func newWallet(t *testing.T) *Wallet {
	t.Helper()
	key, err := biometric.Generate(context.Background(), &biometric.Fixed{}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(filepath.Join(t.TempDir(), "s"), "relay:1", [][32]byte{{1}}, key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestCreateOpen(t *testing.T) {
	w := newWallet(t)
	if _, err := Create(w.Dir(), "relay:1", nil, nil, rand.Reader); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	again, err := Open(w.Dir())
	if err != nil {
		t.Fatal(err)
	}
	p, q := w.Phone(), again.Phone()
	if p.Addr() != q.Addr() || p.NoiseKey() != q.NoiseKey() || p.Pins()[0] != [32]byte{1} {
		t.Fatal("reopened phone differs")
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("open empty: %v", err)
	}
	if _, err := w.Current(); !errors.Is(err, ErrNoOrg) {
		t.Fatalf("current: %v", err)
	}
	k, err := w.ApprovalKey(&biometric.Fixed{})
	if err != nil || k.Public() == ([65]byte{}) {
		t.Fatalf("approval key: %v", err)
	}
}

func TestOrgs(t *testing.T) {
	w := newWallet(t)
	a := &Org{Name: "Acme MSP", MSPKey: []byte{1}}
	b := &Org{Name: "ACME msp!", MSPKey: []byte{2}} // same id base, other MSP
	a2 := &Org{Name: "Acme MSP (renamed)", MSPKey: []byte{1}}
	for _, o := range []*Org{a, b, a2} {
		if err := w.AssignID(o); err != nil {
			t.Fatal(err)
		}
		if err := w.SaveOrg(o); err != nil {
			t.Fatal(err)
		}
	}
	if a.ID != "acme-msp" || b.ID != "acme-msp-2" || a2.ID != "acme-msp" {
		t.Fatalf("ids %q %q %q", a.ID, b.ID, a2.ID)
	}
	orgs, err := w.Orgs()
	if err != nil || len(orgs) != 2 || orgs[0].Name != "Acme MSP (renamed)" {
		t.Fatalf("orgs %v %v", orgs, err)
	}
	if cur, err := w.Current(); err != nil || cur.ID != "acme-msp" {
		t.Fatalf("current %v %v", cur, err)
	}
	if o, err := w.FindOrg("acme MSP!"); err != nil || o.ID != "acme-msp-2" {
		t.Fatalf("find by name: %v %v", o, err)
	}
	for _, bad := range []string{"nope", "../phone", ""} {
		if _, err := w.FindOrg(bad); !errors.Is(err, ErrUnknownOrg) {
			t.Errorf("find %q: %v", bad, err)
		}
	}
	if err := w.SetCurrent("acme-msp-2"); err != nil {
		t.Fatal(err)
	}
	again, _ := Open(w.Dir())
	if again.Phone().Current != "acme-msp-2" {
		t.Fatal("current not persisted")
	}
	// Every file is 0600 and no temporary file is left behind.
	filepath.Walk(w.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want || filepath.Base(p)[0] == '.' {
			t.Errorf("%s: mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
}

func TestOrgID(t *testing.T) {
	for in, want := range map[string]string{"Acme MSP": "acme-msp", "  --Ünïcode--  ": "n-code", "": "org", "A/../B": "a-b"} {
		if got := OrgID(in); got != want {
			t.Errorf("OrgID(%q) = %q, want %q", in, got, want)
		}
	}
}
