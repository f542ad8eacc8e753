package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

func open(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), path, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s := open(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	for _, c := range []struct {
		pragma string
		want   any
	}{
		{"journal_mode", "wal"},
		{"synchronous", int64(2)}, // FULL
		{"user_version", int64(store.SchemaVersion)},
	} {
		var got any
		if err := s.DB().QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %v (%T), want %v", c.pragma, got, got, c.want)
		}
	}
	// Reopening applies no migration twice.
	s.Close()
	open(t, path)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s := open(t, path)
	if _, err := s.DB().Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := store.Open(t.Context(), path, store.Config{}); !errors.Is(err, store.ErrTooNew) {
		t.Fatalf("Open = %v, want ErrTooNew", err)
	}
}

func TestOpenRefusesCorruptDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s := open(t, path)
	err := s.Update(t.Context(), func(tx *store.Tx) error {
		for i := range 200 {
			if err := tx.AppendAudit(store.AuditRow{Seq: uint64(i + 1), Record: make([]byte, 500)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = 0x5a
	}
	if _, err := f.WriteAt(junk, 4096*3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := store.Open(t.Context(), path, store.Config{}); err == nil {
		t.Fatal("Open of a corrupt database succeeded")
	}
}

// TestDiskFull fills a database capped with max_page_count (SQLite's
// SQLITE_FULL, as on a full disk) and checks the failed transaction left
// nothing behind.
func TestDiskFull(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	var pages int
	if err := s.DB().QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("PRAGMA max_page_count = " + itoa(pages+2)); err != nil {
		t.Fatal(err)
	}
	err := s.Update(t.Context(), func(tx *store.Tx) error {
		if err := tx.SetMeta("a", []byte("x")); err != nil {
			return err
		}
		for i := range 100 {
			if err := tx.AppendAudit(store.AuditRow{Seq: uint64(i + 1), Record: make([]byte, 2000)}); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("Update = %v, want ErrFull", err)
	}
	err = s.View(t.Context(), func(tx *store.Tx) error {
		if _, err := tx.Meta("a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("meta after failed update: %v", err)
		}
		seq, _, err := tx.LastAudit()
		if seq != 0 {
			t.Errorf("audit seq %d after failed update", seq)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestBeforeCommitAborts(t *testing.T) {
	fail := errors.New("injected")
	s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "agent.db"), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var on bool
	s, err = store.Open(t.Context(), filepath.Join(t.TempDir(), "b.db"), store.Config{BeforeCommit: func() error {
		if on {
			return fail
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	on = true
	if err := s.Update(t.Context(), func(tx *store.Tx) error { return tx.SetMeta("k", []byte("v")) }); !errors.Is(err, fail) {
		t.Fatalf("Update = %v", err)
	}
	on = false
	_ = s.View(t.Context(), func(tx *store.Tx) error {
		if _, err := tx.Meta("k"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("write survived an aborted commit: %v", err)
		}
		return nil
	})
}

func TestAccountsAndApprovals(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	a := store.Account{Name: "msp-nik", Owner: "tech:1", State: store.StateActive, Session: protocol.SessionID{1}, TechID: "1",
		Username: "nik", Action: 1, Started: now, Deadline: now.Add(time.Hour), Updated: now, SystemID: "1001",
		TechCert: []byte{0xa1, 0x01, 0x02}}
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.PutAccount(a) }); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx *store.Tx) error {
		b := a
		b.Name = "msp-other"
		if err := tx.PutAccount(b); err == nil {
			t.Error("two accounts with one owner")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(ctx, func(tx *store.Tx) error {
		for _, get := range []func() (store.Account, error){
			func() (store.Account, error) { return tx.Account("msp-nik") },
			func() (store.Account, error) { return tx.AccountByOwner("tech:1") },
			func() (store.Account, error) { return tx.AccountBySession(protocol.SessionID{1}) },
		} {
			got, err := get()
			if err != nil || !reflect.DeepEqual(got, a) {
				t.Errorf("got %+v, %v; want %+v", got, err, a)
			}
		}
		return nil
	})
	id := []byte("approval-1")
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.UseApproval(id, now, now.Add(time.Minute)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.UseApproval(id, now, now.Add(time.Minute)) }); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("second use = %v, want ErrReplay", err)
	}
}
