package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func addTenant(t *testing.T, db *DB, name string) {
	t.Helper()
	err := db.Update(context.Background(), func(tx *Tx) error {
		return tx.InsertTenant(&Tenant{Name: name, LoginMode: "named", SharedAccount: "msp-" + name, OfflineSecret: []byte{1}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func pol(tenant string, v uint64) *PolicyRow {
	return &PolicyRow{Tenant: tenant, Version: v, Signed: protocol.Signed{Type: protocol.DocPolicy, Body: []byte{0xa0}, Sig: make([]byte, 64)}}
}

func TestPolicyVersionNeverGoesBackwards(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	addTenant(t, db, "acme")
	addTenant(t, db, "other")
	for _, v := range []uint64{1, 2, 5} {
		if err := db.Update(ctx, func(tx *Tx) error { return tx.InsertPolicy(pol("acme", v)) }); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	for _, v := range []uint64{5, 4, 1} {
		err := db.Update(ctx, func(tx *Tx) error { return tx.InsertPolicy(pol("acme", v)) })
		if !errors.Is(err, ErrPolicyVersion) {
			t.Errorf("version %d after 5: %v, want ErrPolicyVersion", v, err)
		}
	}
	// The schema itself refuses, even for a caller bypassing InsertPolicy.
	err := db.Update(ctx, func(tx *Tx) error {
		return tx.Exec(`INSERT INTO policies(tenant, version, signed, created) VALUES ('acme', 3, x'00', 0)`)
	})
	if err == nil {
		t.Error("raw insert of version 3 after 5 succeeded")
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.Exec(`UPDATE policies SET version = 9`) }); err == nil {
		t.Error("a published policy could be changed")
	}
	// Versions are per tenant.
	if err := db.Update(ctx, func(tx *Tx) error { return tx.InsertPolicy(pol("other", 1)) }); err != nil {
		t.Fatal(err)
	}
	var v uint64
	db.View(ctx, func(tx *Tx) (err error) { v, err = tx.PolicyVersion("acme"); return })
	if v != 5 {
		t.Fatalf("acme at version %d, want 5", v)
	}
}

func TestFailedTransactionLeavesNothing(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.InsertTenant(&Tenant{Name: "acme", LoginMode: "named", SharedAccount: "msp-1", OfflineSecret: []byte{1}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := db.View(ctx, func(tx *Tx) error { _, err := tx.Tenant("acme"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tenant of a rolled-back transaction: %v", err)
	}
}

func TestTokenUsesCannotGoNegative(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	addTenant(t, db, "acme")
	id := []byte("0123456789abcdef")
	if err := db.Update(ctx, func(tx *Tx) error {
		return tx.InsertToken(&Token{ID: id, PSK: make([]byte, 32), Tenant: "acme", Uses: 1, UsesLeft: 1})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.UseToken(id) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.UseToken(id) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}
}

func TestOpenMigratesAndChecks(t *testing.T) {
	db, path := openTest(t)
	db.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v: %v", fi.Mode().Perm(), err)
	}
	db2, err := Open(context.Background(), path) // re-open: no migration runs twice
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	db2.View(context.Background(), func(tx *Tx) error { return tx.row("PRAGMA journal_mode").Scan(&mode) })
	db2.Close()
	if mode != "wal" {
		t.Fatalf("journal mode %q", mode)
	}
	if err := os.WriteFile(path, []byte("not a database at all, just some bytes that are long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	if _, err := Open(context.Background(), path); err == nil {
		t.Fatal("a damaged database opened")
	}
}
