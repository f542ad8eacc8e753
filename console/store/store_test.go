package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// addTenantV1 adds a tenant with the columns of schema version 1.
func addTenantV1(t *testing.T, db *DB, name string) {
	t.Helper()
	err := db.Update(context.Background(), func(tx *Tx) error {
		return tx.Exec(`INSERT INTO tenants(name, login_mode, shared_account, push_login, otp_online,
			selective_login, domain_accounts, digits, period, skew, max_failures, lockout_base,
			lockout_limit, max_session, inactivity_days, offline_secret, created)
			VALUES (?, 'shared', ?, 0, 0, 0, 0, 6, 30, 1, 5, 30, 3600, 3600, 30, ?, 0)`, name, "msp-"+name, make([]byte, 32))
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

// TestDeviceRemovalMigrationAndQueries: a database of schema version 1
// (before device removal) migrates with its devices enrolled; a removed
// device leaves Devices but stays in AllDevices, Device and
// DeviceByMailbox (audit still names it), and cannot be removed twice.
func TestDeviceRemovalMigrationAndQueries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	old := migrations
	migrations = old[:1]
	db, err := Open(ctx, path)
	migrations = old
	if err != nil {
		t.Fatal(err)
	}
	addTenantV1(t, db, "acme")
	cert, err := (&protocol.Signed{Type: protocol.DocDeviceCert, Body: []byte{0xa0}, Sig: make([]byte, 64)}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(ctx, func(tx *Tx) error {
		for _, n := range []byte{1, 2} {
			if _, err := tx.NewSerial("device", 0); err != nil {
				return err
			}
			// The columns of schema version 1.
			if err := tx.Exec(`INSERT INTO devices(id, tenant, name, os, domain_joined, dc, serial, cert, noise_key,
				identity_key, mailbox, relay, enrolled, last_seen) VALUES (?, 'acme', ?, 'linux', 0, 0, ?, ?, x'00', x'00', ?, 'r:1', 0, 0)`,
				(&protocol.DeviceID{n})[:], "W"+string('0'+n), n, cert, (&protocol.MailboxID{n})[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(ctx, path); err != nil {
		t.Fatalf("migrate to version %d: %v", SchemaVersion, err)
	}
	defer db.Close()
	count := func(all bool) int {
		var ds []*Device
		db.View(ctx, func(tx *Tx) (err error) {
			if all {
				ds, err = tx.AllDevices("acme")
			} else {
				ds, err = tx.Devices("")
			}
			return err
		})
		return len(ds)
	}
	if count(false) != 2 || count(true) != 2 {
		t.Fatalf("after migration: %d enrolled, %d in all", count(false), count(true))
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.MarkDeviceRemoved(protocol.DeviceID{1}, 1000, 7) }); err != nil {
		t.Fatal(err)
	}
	if count(false) != 1 || count(true) != 2 {
		t.Fatalf("after removal: %d enrolled, %d in all", count(false), count(true))
	}
	var d *Device
	if err := db.View(ctx, func(tx *Tx) (err error) { d, err = tx.DeviceByMailbox(protocol.MailboxID{1}); return }); err != nil {
		t.Fatal(err)
	}
	if d.Removed != 1000 || d.RemovedVersion != 7 {
		t.Fatalf("removed device reads removed=%d version=%d", d.Removed, d.RemovedVersion)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.MarkDeviceRemoved(protocol.DeviceID{1}, 2000, 8) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second removal: %v, want ErrNotFound", err)
	}
}

// TestOfflineGenerationMigrationAndRotation: a tenant of schema version 2
// (before offline login) migrates holding its first secret (generation 1)
// and default offline limits; each rotation stores a new secret one
// generation up; the schema refuses a generation that goes down.
func TestOfflineGenerationMigrationAndRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	old := migrations
	migrations = old[:2]
	db, err := Open(ctx, path)
	migrations = old
	if err != nil {
		t.Fatal(err)
	}
	addTenantV1(t, db, "acme")
	db.Close()
	if db, err = Open(ctx, path); err != nil {
		t.Fatalf("migrate to version %d: %v", SchemaVersion, err)
	}
	defer db.Close()
	tenant := func() *Tenant {
		t.Helper()
		var tn *Tenant
		if err := db.View(ctx, func(tx *Tx) (err error) { tn, err = tx.Tenant("acme"); return err }); err != nil {
			t.Fatal(err)
		}
		return tn
	}
	tn := tenant()
	if tn.OfflineGeneration != 1 || tn.Offline.Algorithm != "" || tn.Offline.MaxLogins != 0 || tn.Offline.MaxDays != 0 {
		t.Fatalf("migrated tenant: generation %d, offline %+v", tn.OfflineGeneration, tn.Offline)
	}
	for want := uint64(2); want <= 3; want++ {
		secret := []byte(strings.Repeat(string(rune('a'+want)), 32))
		var gen uint64
		if err := db.Update(ctx, func(tx *Tx) (err error) { gen, err = tx.RotateOfflineSecret("acme", secret); return err }); err != nil {
			t.Fatal(err)
		}
		if tn := tenant(); gen != want || tn.OfflineGeneration != want || string(tn.OfflineSecret) != string(secret) {
			t.Fatalf("rotation %d: returned %d, stored generation %d", want, gen, tn.OfflineGeneration)
		}
	}
	if err := db.Update(ctx, func(tx *Tx) error { _, err := tx.RotateOfflineSecret("nope", make([]byte, 32)); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rotate an unknown tenant: %v", err)
	}
	if err := db.Update(ctx, func(tx *Tx) error { _, err := tx.RotateOfflineSecret("acme", make([]byte, 20)); return err }); err == nil {
		t.Fatal("a 20-byte tenant secret was stored")
	}
	err = db.Update(ctx, func(tx *Tx) error { return tx.Exec(`UPDATE tenants SET offline_generation = 2 WHERE name = 'acme'`) })
	if err == nil || tenant().OfflineGeneration != 3 {
		t.Fatal("the offline secret generation went down")
	}
	// Offline settings round-trip through UpdateTenant.
	tn = tenant()
	tn.Offline.Algorithm, tn.Offline.MaxLogins, tn.Offline.MaxDays = protocol.OTPSHA256, 3, 7
	if err := db.Update(ctx, func(tx *Tx) error { return tx.UpdateTenant(tn) }); err != nil {
		t.Fatal(err)
	}
	if got := tenant(); got.Offline != tn.Offline || got.OfflineGeneration != 3 {
		t.Fatalf("after update: %+v generation %d", got.Offline, got.OfflineGeneration)
	}
}
