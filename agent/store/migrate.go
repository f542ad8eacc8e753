package store

import (
	"context"
	"fmt"
)

// migrations are applied in order; the database's user_version is the
// number applied. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: initial schema.
	`CREATE TABLE meta (
		k TEXT PRIMARY KEY,
		v BLOB NOT NULL
	);
	CREATE TABLE policy (
		tenant  TEXT PRIMARY KEY,
		version INTEGER NOT NULL,
		signed  BLOB NOT NULL,
		applied INTEGER NOT NULL
	);
	CREATE TABLE accounts (
		name     TEXT PRIMARY KEY,
		owner    TEXT NOT NULL UNIQUE,
		state    TEXT NOT NULL,
		session  BLOB,
		tech_id  TEXT NOT NULL DEFAULT '',
		username TEXT NOT NULL DEFAULT '',
		action   INTEGER NOT NULL DEFAULT 0,
		started  INTEGER NOT NULL DEFAULT 0,
		deadline INTEGER NOT NULL DEFAULT 0,
		updated  INTEGER NOT NULL
	);
	CREATE TABLE used_approvals (
		id      BLOB PRIMARY KEY,
		expires INTEGER NOT NULL
	);
	CREATE TABLE audit (
		seq    INTEGER PRIMARY KEY,
		hash   BLOB NOT NULL,
		record BLOB NOT NULL,
		acked  INTEGER NOT NULL DEFAULT 0
	);`,
	// 2: the operating system's id of the account jitkey created.
	`ALTER TABLE accounts ADD COLUMN system_id TEXT NOT NULL DEFAULT '';`,
	// 3: the technician certificate a session was granted under, so the
	// access rule can be decided again when a new policy arrives.
	`ALTER TABLE accounts ADD COLUMN tech_cert BLOB;`,
	// 4: offline codes (SPEC.md 11.6): named-mode keys, sealed (package
	// vault), and each technician's verification state.
	`CREATE TABLE offline_keys (
		tech_id TEXT PRIMARY KEY,
		sealed  BLOB NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE offline_state (
		tech_id          TEXT PRIMARY KEY,
		last_step        INTEGER NOT NULL DEFAULT 0,
		failures         INTEGER NOT NULL DEFAULT 0,
		locked_until     INTEGER NOT NULL DEFAULT 0,
		used_offline     INTEGER NOT NULL DEFAULT 0,
		used_generation  INTEGER NOT NULL DEFAULT 0,
		spent_generation INTEGER NOT NULL DEFAULT 0
	);`,
	// 5: push login (SPEC.md 11.5): every push started (the limits count
	// them; ended is 0 while pending), the blocks after a "this was not
	// me" report, and each technician's sealed push ticket (12.6).
	`CREATE TABLE push_attempts (
		id      INTEGER PRIMARY KEY,
		tech_id TEXT NOT NULL,
		started INTEGER NOT NULL,
		ended   INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX push_attempts_tech ON push_attempts (tech_id, started);
	CREATE TABLE push_blocks (
		tech_id TEXT PRIMARY KEY,
		until   INTEGER NOT NULL
	);
	CREATE TABLE push_tickets (
		tech_id TEXT PRIMARY KEY,
		ticket  BLOB NOT NULL,
		updated INTEGER NOT NULL
	);`,
	// 6: domain JIT accounts on a DC agent (SPEC.md 11.7): the last
	// session granted per account (jitkey's own "last use") and the live
	// session, with the KK static key of the workstation that opened it;
	// and the domain-joined workstations whose FlowDomain it accepts
	// (mailbox -> Noise static key, from their device certificates).
	`CREATE TABLE domain_accounts (
		name        TEXT PRIMARY KEY,
		tech_id     TEXT NOT NULL DEFAULT '',
		last_use    INTEGER NOT NULL,
		session     BLOB,
		workstation BLOB,
		expires     INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE domain_workstations (
		mailbox BLOB PRIMARY KEY,
		noise   BLOB NOT NULL,
		cert    BLOB NOT NULL
	);`,
	// 8 (reserved for break-glass this session; appended as one
	// self-contained entry): break-glass recovery codes (SPEC.md 11.15).
	// One row per generation: the salt and verifier of the code (never
	// the code), when it was used (0: not yet), and the code sealed
	// (package vault) until the console acknowledged its escrow (NULL
	// after). breakglass_state holds the failure count and lockout.
	`CREATE TABLE breakglass_codes (
		generation INTEGER PRIMARY KEY CHECK (generation >= 1),
		salt       BLOB NOT NULL,
		verifier   BLOB NOT NULL,
		created    INTEGER NOT NULL,
		used       INTEGER NOT NULL DEFAULT 0,
		sealed     BLOB
	);
	CREATE TRIGGER breakglass_used_once BEFORE UPDATE OF used ON breakglass_codes
	WHEN OLD.used != 0 AND NEW.used != OLD.used
	BEGIN SELECT RAISE(ABORT, 'a used recovery code stays used'); END;
	CREATE TABLE breakglass_state (
		id           INTEGER PRIMARY KEY CHECK (id = 1),
		failures     INTEGER NOT NULL,
		locked_until INTEGER NOT NULL
	);`,
}

// SchemaVersion is the schema version this agent writes.
var SchemaVersion = len(migrations)

func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("store: schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: version %d > %d", ErrTooNew, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := s.Update(ctx, func(tx *Tx) error {
			if err := tx.exec(migrations[i]); err != nil {
				return err
			}
			return tx.exec(fmt.Sprintf("PRAGMA user_version = %d", i+1))
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", i+1, err)
		}
	}
	return nil
}
