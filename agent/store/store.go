// Package store is the agent's durable state: one SQLite database (WAL,
// synchronous=FULL) holding the enrollment (device certificate, pinned MSP
// key, console and relay), the applied tenant policy, the just-in-time
// accounts jitkey owns and their lifecycle state, the approvals already used
// (replay protection) and the hash-chained audit log with its shipping
// state.
//
// Every change goes through Update, which runs one IMMEDIATE transaction:
// a state change and the audit record describing it commit together or not
// at all. Open checks the database's integrity and applies versioned
// migrations before anything else reads it.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors callers branch on.
var (
	// ErrFull is returned when the disk (or the database's size limit) is
	// full: nothing of the failed transaction was written.
	ErrFull = errors.New("store: disk full")
	// ErrCorrupt is returned by Open when the integrity check fails.
	ErrCorrupt = errors.New("store: database integrity check failed")
	// ErrNotFound is returned for a missing row.
	ErrNotFound = errors.New("store: not found")
	// ErrReplay is returned by Tx.UseApproval for an approval seen before.
	ErrReplay = errors.New("store: approval already used")
	// ErrTooNew is returned by Open for a database written by a newer agent.
	ErrTooNew = errors.New("store: database schema newer than this agent")
)

// Config configures Open.
type Config struct {
	// BeforeCommit, if set, runs inside every Update just before COMMIT; an
	// error aborts the transaction as a failed disk write would. It exists
	// for fault-injection tests (disk full in the middle of a login).
	BeforeCommit func() error
}

// Store is an open agent database. Safe for concurrent use; writes are
// serialised.
type Store struct {
	db  *sql.DB
	cfg Config
}

// Open opens (creating if needed, mode 0600) the database at path, checks
// its integrity and migrates it to the current schema.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "secure_delete(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// One connection: the agent's writes are serialised anyway, and a single
	// connection makes every transaction see the previous one's result.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, cfg: cfg}
	if err := s.integrity(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying database, for tests that tamper with it.
func (s *Store) DB() *sql.DB { return s.db }

func (s *Store) integrity(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, classify(err))
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("%w: %v", ErrCorrupt, msgs)
	}
	return nil
}

// Tx is one transaction, valid only inside the function passed to Update
// or View.
type Tx struct {
	tx *sql.Tx
	s  *Store
}

// Update runs fn in one write transaction and commits it if fn returns
// nil. A failure to commit (disk full, I/O error) is returned and nothing
// of fn's writes persists.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", classify(err))
	}
	if err := fn(&Tx{tx: tx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	if s.cfg.BeforeCommit != nil {
		if err := s.cfg.BeforeCommit(); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: commit: %w", classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return fmt.Errorf("store: commit: %w", classify(err))
	}
	return nil
}

// View runs fn in a transaction that is rolled back afterwards.
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: begin: %w", classify(err))
	}
	defer tx.Rollback()
	return fn(&Tx{tx: tx, s: s})
}

// classify maps SQLite's "full" result codes to ErrFull.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

func (t *Tx) exec(q string, args ...any) error {
	if _, err := t.tx.Exec(q, args...); err != nil {
		return fmt.Errorf("store: %w", classify(err))
	}
	return nil
}
