package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// TestDomainRecords: the DC agent's records round-trip, a live session
// keeps its workstation key, ending it clears both, and the workstation
// list is replaced whole.
func TestDomainRecords(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "a.db"))
	ctx := t.Context()
	now := time.UnixMilli(1_790_000_000_123)
	live := store.DomainAccount{Name: "msp-nik", TechID: "tech-nik", LastUse: now, Expires: now.Add(time.Hour)}
	live.Session[0], live.Workstation[0] = 1, 2
	err := s.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutDomainAccount(live); err != nil {
			return err
		}
		return tx.PutDomainAccount(store.DomainAccount{Name: "msp-old", LastUse: now.Add(-time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx *store.Tx) error {
		got, err := tx.DomainAccount("msp-nik")
		if err != nil {
			return err
		}
		if got != live || !got.Live() {
			t.Fatalf("got %+v, want %+v", got, live)
		}
		got.Session, got.Workstation, got.Expires = protocol.SessionID{}, protocol.NoiseKey{}, time.Time{}
		if err := tx.PutDomainAccount(got); err != nil {
			return err
		}
		all, err := tx.DomainAccounts()
		if err != nil {
			return err
		}
		if len(all) != 2 || all[0].Name != "msp-nik" || all[0].Live() || all[1].Name != "msp-old" {
			t.Fatalf("all %+v", all)
		}
		if err := tx.DeleteDomainAccount("msp-old"); err != nil {
			return err
		}
		if _, err := tx.DomainAccount("msp-old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted: %v", err)
		}
		w := store.DomainWorkstation{Cert: []byte{1, 2, 3}}
		w.Mailbox[0], w.Noise[0] = 7, 8
		if err := tx.SetDomainWorkstations([]store.DomainWorkstation{w}); err != nil {
			return err
		}
		if got, err := tx.DomainWorkstation(w.Mailbox); err != nil || got.Noise != w.Noise || string(got.Cert) != string(w.Cert) {
			t.Fatalf("workstation %+v %v", got, err)
		}
		if err := tx.SetDomainWorkstations(nil); err != nil {
			return err
		}
		if _, err := tx.DomainWorkstation(w.Mailbox); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after replace: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
