// Package store keeps the console's state in one SQLite file: tenants,
// technicians and their certificates, pairing codes, enrollment tokens,
// devices and share lists, signed tenant policies and the audit trail that
// agents ship home.
//
// The database runs in WAL mode with synchronous=FULL and foreign keys on;
// the schema is versioned (PRAGMA user_version) and migrated at Open, which
// also runs an integrity check. Every change happens in one transaction
// (Update), begun IMMEDIATE so that the command-line tool and a running
// `serve` can share the file: one waits (busy timeout) for the other
// instead of failing half-way.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrExists        = errors.New("store: already exists")
	ErrPolicyVersion = errors.New("store: policy version must increase")
	ErrCorrupt       = errors.New("store: database failed its integrity check")
)

// DB is an open console database.
type DB struct {
	db *sql.DB
}

// migrations[i] moves the schema from version i to i+1.
var migrations = []string{
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;

CREATE TABLE tenants (
	name            TEXT PRIMARY KEY,
	login_mode      TEXT NOT NULL CHECK (login_mode IN ('named', 'shared')),
	shared_account  TEXT NOT NULL UNIQUE,
	push_login      INTEGER NOT NULL,
	otp_online      INTEGER NOT NULL,
	selective_login INTEGER NOT NULL,
	domain_accounts INTEGER NOT NULL,
	digits          INTEGER NOT NULL,
	period          INTEGER NOT NULL,
	skew            INTEGER NOT NULL,
	max_failures    INTEGER NOT NULL,
	lockout_base    INTEGER NOT NULL,
	lockout_limit   INTEGER NOT NULL,
	max_session     INTEGER NOT NULL,
	inactivity_days INTEGER NOT NULL,
	offline_secret  BLOB NOT NULL,
	created         INTEGER NOT NULL
) STRICT;

-- serials hands out certificate serials; AUTOINCREMENT never reuses one.
CREATE TABLE serials (
	serial  INTEGER PRIMARY KEY AUTOINCREMENT,
	kind    TEXT NOT NULL,
	created INTEGER NOT NULL
);

CREATE TABLE techs (
	id           TEXT PRIMARY KEY,
	username     TEXT NOT NULL UNIQUE,
	email        TEXT NOT NULL,
	global_admin INTEGER NOT NULL,
	removed      INTEGER NOT NULL DEFAULT 0,
	created      INTEGER NOT NULL
) STRICT;

CREATE TABLE grants (
	tech_id TEXT NOT NULL REFERENCES techs(id),
	tenant  TEXT NOT NULL REFERENCES tenants(name),
	role    TEXT NOT NULL CHECK (role IN ('admin', 'read-only')),
	PRIMARY KEY (tech_id, tenant)
) STRICT;

CREATE TABLE tech_certs (
	serial    INTEGER PRIMARY KEY REFERENCES serials(serial),
	tech_id   TEXT NOT NULL REFERENCES techs(id),
	cert      BLOB NOT NULL,
	mailbox   BLOB NOT NULL,
	noise_key BLOB NOT NULL,
	label     TEXT NOT NULL,
	not_after INTEGER NOT NULL,
	revoked   INTEGER NOT NULL DEFAULT 0,
	created   INTEGER NOT NULL
) STRICT;
CREATE INDEX tech_certs_mailbox ON tech_certs(mailbox);

CREATE TABLE pairings (
	code_id    BLOB PRIMARY KEY,
	session_id BLOB NOT NULL UNIQUE,
	psk        BLOB NOT NULL,
	tech_id    TEXT NOT NULL REFERENCES techs(id),
	expires    INTEGER NOT NULL,
	used       INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
	token_id   BLOB PRIMARY KEY,
	session_id BLOB NOT NULL UNIQUE,
	psk        BLOB NOT NULL,
	tenant     TEXT NOT NULL REFERENCES tenants(name),
	expires    INTEGER NOT NULL,
	uses       INTEGER NOT NULL,
	uses_left  INTEGER NOT NULL CHECK (uses_left >= 0),
	created    INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
	id            BLOB PRIMARY KEY,
	tenant        TEXT NOT NULL REFERENCES tenants(name),
	name          TEXT NOT NULL,
	os            TEXT NOT NULL,
	domain_joined INTEGER NOT NULL,
	dc            INTEGER NOT NULL,
	serial        INTEGER NOT NULL UNIQUE REFERENCES serials(serial),
	cert          BLOB NOT NULL,
	noise_key     BLOB NOT NULL,
	identity_key  BLOB NOT NULL,
	mailbox       BLOB NOT NULL UNIQUE,
	relay         TEXT NOT NULL,
	enrolled      INTEGER NOT NULL,
	last_seen     INTEGER NOT NULL,
	acked_version INTEGER NOT NULL DEFAULT 0,
	custom_share  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE shares (
	device_id BLOB NOT NULL REFERENCES devices(id),
	entry     TEXT NOT NULL,
	PRIMARY KEY (device_id, entry)
) STRICT;

CREATE TABLE policies (
	tenant  TEXT NOT NULL REFERENCES tenants(name),
	version INTEGER NOT NULL CHECK (version > 0),
	signed  BLOB NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (tenant, version)
) STRICT;

-- A tenant's policy versions only ever grow, and a published policy is
-- never changed: the database refuses anything else, whatever the caller.
CREATE TRIGGER policies_monotonic BEFORE INSERT ON policies
WHEN NEW.version <= COALESCE((SELECT MAX(version) FROM policies WHERE tenant = NEW.tenant), 0)
BEGIN SELECT RAISE(ABORT, 'policy version must increase'); END;
CREATE TRIGGER policies_immutable BEFORE UPDATE ON policies
BEGIN SELECT RAISE(ABORT, 'published policies are immutable'); END;

CREATE TABLE phone_acks (
	serial  INTEGER NOT NULL REFERENCES tech_certs(serial),
	tenant  TEXT NOT NULL REFERENCES tenants(name),
	version INTEGER NOT NULL,
	PRIMARY KEY (serial, tenant)
) STRICT;

CREATE TABLE audit (
	device_id BLOB NOT NULL REFERENCES devices(id),
	seq       INTEGER NOT NULL,
	hash      BLOB NOT NULL,
	record    BLOB NOT NULL,
	time      INTEGER NOT NULL,
	event     TEXT NOT NULL,
	tech_id   TEXT NOT NULL,
	username  TEXT NOT NULL,
	received  INTEGER NOT NULL,
	PRIMARY KEY (device_id, seq)
) STRICT;
CREATE INDEX audit_time ON audit(time);
CREATE TRIGGER audit_immutable BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are immutable'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are never deleted'); END;

CREATE TABLE alarms (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id BLOB NOT NULL REFERENCES devices(id),
	seq       INTEGER NOT NULL,
	kind      TEXT NOT NULL,
	detail    TEXT NOT NULL,
	time      INTEGER NOT NULL,
	UNIQUE (device_id, seq, kind)
) STRICT;
`,
	// Device removal (SPEC.md 11.10): a removed device keeps its row for
	// the audit trail; removed is the time of the removal (0: enrolled),
	// removed_version the tenant policy version that revoked it, the only
	// one the console still sends it. from_removed marks audit records
	// that arrived after the removal.
	`
ALTER TABLE devices ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN removed_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN from_removed INTEGER NOT NULL DEFAULT 0;
`,
	// Offline login (SPEC.md 11.6): the TOTP algorithm ('' for SHA-1 or
	// 'SHA256'), the offline login and day limits (0: the protocol's
	// defaults), and the generation of the shared-mode offline secret,
	// which counts from 1 and grows at each rotation; existing tenants
	// hold their first secret.
	`
ALTER TABLE tenants ADD COLUMN otp_algorithm TEXT NOT NULL DEFAULT '' CHECK (otp_algorithm IN ('', 'SHA256'));
ALTER TABLE tenants ADD COLUMN offline_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN offline_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN offline_generation INTEGER NOT NULL DEFAULT 1 CHECK (offline_generation >= 1);
CREATE TRIGGER tenants_generation_monotonic BEFORE UPDATE OF offline_generation ON tenants
WHEN NEW.offline_generation < OLD.offline_generation
BEGIN SELECT RAISE(ABORT, 'offline secret generation must not decrease'); END;
`,
	// Push login limits (SPEC.md 6.3, 11.5): 0 means the protocol's
	// defaults, which is what existing tenants had.
	`
ALTER TABLE tenants ADD COLUMN push_max_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN push_per_hour INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN push_block INTEGER NOT NULL DEFAULT 0;
`,
	// Access governance (SPEC.md 6.3): a required reason and the ticket
	// pattern of approvals, the warning before the hard session cap
	// (seconds; 0: none), and the sessions the console saw begin
	// (account.enabled) with the verified end receipt that closed each
	// (SPEC.md 6.6; NULL: none yet).
	`
ALTER TABLE tenants ADD COLUMN require_reason INTEGER NOT NULL DEFAULT 0 CHECK (require_reason IN (0, 1));
ALTER TABLE tenants ADD COLUMN ticket_pattern TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN warn_before INTEGER NOT NULL DEFAULT 300 CHECK (warn_before BETWEEN 0 AND 86400);
ALTER TABLE tenants ADD COLUMN end_user_notice INTEGER NOT NULL DEFAULT 0 CHECK (end_user_notice IN (0, 1));
CREATE TABLE session_receipts (
	device_id   BLOB NOT NULL REFERENCES devices(id),
	enabled_seq INTEGER NOT NULL,
	account     TEXT NOT NULL,
	deadline    INTEGER NOT NULL,
	receipt_seq INTEGER,
	receipt     BLOB,
	PRIMARY KEY (device_id, enabled_seq)
) STRICT;
CREATE INDEX session_receipts_open ON session_receipts(receipt_seq, deadline);
`,
	// Second approvers (SPEC.md 6.3, 11.14): a tenant's list (device_id
	// empty) and per-device overrides; entries comma-separated, sorted.
	`
CREATE TABLE second_approvers (
	tenant    TEXT NOT NULL REFERENCES tenants(name),
	device_id BLOB NOT NULL,
	entries   TEXT NOT NULL,
	PRIMARY KEY (tenant, device_id)
) STRICT;
`,
	// 7: break-glass recovery codes escrowed by
	// agents (SPEC.md 11.15), sealed under the console's escrow key, one
	// row per device and generation (used: when the agent's
	// breakglass.used record arrived, 0: not yet), and every reveal of
	// one to an administrator (who, when).
	`
CREATE TABLE breakglass_codes (
	device_id  BLOB NOT NULL REFERENCES devices(id),
	generation INTEGER NOT NULL CHECK (generation >= 1),
	sealed     BLOB NOT NULL,
	received   INTEGER NOT NULL,
	used       INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (device_id, generation)
) STRICT;
CREATE TABLE breakglass_reveals (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id  BLOB NOT NULL REFERENCES devices(id),
	generation INTEGER NOT NULL,
	admin      TEXT NOT NULL,
	time       INTEGER NOT NULL
) STRICT;
CREATE TRIGGER breakglass_reveals_no_update BEFORE UPDATE ON breakglass_reveals
BEGIN SELECT RAISE(ABORT, 'reveals are immutable'); END;
CREATE TRIGGER breakglass_reveals_no_delete BEFORE DELETE ON breakglass_reveals
BEGIN SELECT RAISE(ABORT, 'reveals are never deleted'); END;
`,
	// Break-glass switch (SPEC.md 6.3 field 28, 11.15): 1 turns
	// break-glass off on the tenant's devices; existing tenants keep it
	// on.
	`
ALTER TABLE tenants ADD COLUMN breakglass_off INTEGER NOT NULL DEFAULT 0 CHECK (breakglass_off IN (0, 1));
`,
}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = len(migrations)

// Open opens (creating if needed) the database at path, migrates it and
// checks its integrity. The file is created 0600.
func Open(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: create %s: %w", path, err)
		}
		f.Close()
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	d := &DB{db: sdb}
	if err := d.check(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	if err := d.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

func (d *DB) check(ctx context.Context) error {
	var res string
	if err := d.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if res != "ok" {
		return fmt.Errorf("%w: %s", ErrCorrupt, res)
	}
	var fk int
	if err := d.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		return fmt.Errorf("store: foreign keys are not enforced")
	}
	return nil
}

func (d *DB) migrate(ctx context.Context) error {
	return d.Update(ctx, func(tx *Tx) error {
		var v int
		if err := tx.tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("store: schema version %d is newer than this program (%d)", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("store: migration %d: %w", v+1, err)
			}
			if _, err := tx.tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tx is one transaction. Its methods are the only way state changes.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
}

// Update runs fn in one write transaction, committed if fn returns nil.
func (d *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	return d.run(ctx, false, fn)
}

// View runs fn in a read-only transaction.
func (d *DB) View(ctx context.Context, fn func(*Tx) error) error {
	return d.run(ctx, true, fn)
}

func (d *DB) run(ctx context.Context, ro bool, fn func(*Tx) error) error {
	stx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: ro})
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(&Tx{ctx: ctx, tx: stx}); err != nil {
		stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(t.ctx, q, args...)
}

func (t *Tx) query(q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.ctx, q, args...)
}

func (t *Tx) row(q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(t.ctx, q, args...)
}

// Exec runs raw SQL; tests use it to show what the schema itself refuses.
func (t *Tx) Exec(q string, args ...any) error {
	_, err := t.exec(q, args...)
	return err
}

// SetMeta stores a configuration value.
func (t *Tx) SetMeta(key string, value []byte) error {
	_, err := t.exec(`INSERT INTO meta(key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("store: set %s: %w", key, err)
	}
	return nil
}

// Meta returns a configuration value, or ErrNotFound.
func (t *Tx) Meta(key string) ([]byte, error) {
	var v []byte
	err := t.row(`SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: setting %s", ErrNotFound, key)
	}
	return v, err
}

// NewSerial allocates a certificate serial that was never used before.
func (t *Tx) NewSerial(kind string, now int64) (uint64, error) {
	res, err := t.exec(`INSERT INTO serials(kind, created) VALUES (?, ?)`, kind, now)
	if err != nil {
		return 0, fmt.Errorf("store: new serial: %w", err)
	}
	id, err := res.LastInsertId()
	return uint64(id), err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return err
}
