package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RecoveryCode is one generation of the device's break-glass recovery
// code (SPEC.md 11.15). The store never holds the code in the clear: only
// its salt and verifier, and until the console acknowledged its escrow,
// the code sealed by package vault.
type RecoveryCode struct {
	Generation uint64
	Salt       []byte
	Verifier   []byte
	Created    time.Time
	Used       time.Time // zero: not used
	Sealed     []byte    // nil once escrowed
}

// RecoveryCodes returns the stored generations, newest first.
func (t *Tx) RecoveryCodes() ([]RecoveryCode, error) {
	rows, err := t.tx.Query(`SELECT generation, salt, verifier, created, used, sealed FROM breakglass_codes ORDER BY generation DESC`)
	if err != nil {
		return nil, fmt.Errorf("store: recovery codes: %w", classify(err))
	}
	defer rows.Close()
	var out []RecoveryCode
	for rows.Next() {
		var c RecoveryCode
		var created, used int64
		if err := rows.Scan(&c.Generation, &c.Salt, &c.Verifier, &created, &used, &c.Sealed); err != nil {
			return nil, fmt.Errorf("store: recovery codes: %w", err)
		}
		c.Created, c.Used = msTime(created), msTime(used)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recovery codes: %w", classify(err))
	}
	return out, nil
}

// AddRecoveryCode stores a new generation; it must be above every stored
// one.
func (t *Tx) AddRecoveryCode(c RecoveryCode) error {
	var top uint64
	if err := t.tx.QueryRow(`SELECT COALESCE(MAX(generation), 0) FROM breakglass_codes`).Scan(&top); err != nil {
		return fmt.Errorf("store: recovery codes: %w", classify(err))
	}
	if c.Generation <= top {
		return fmt.Errorf("store: recovery code generation %d is not above %d", c.Generation, top)
	}
	return t.exec(`INSERT INTO breakglass_codes (generation, salt, verifier, created, used, sealed) VALUES (?, ?, ?, ?, 0, ?)`,
		c.Generation, c.Salt, c.Verifier, msInt(c.Created), c.Sealed)
}

// UseRecoveryCode marks a generation used at the given time. It fails if
// the generation is unknown or already used, so a code is used once even
// if two attempts race.
func (t *Tx) UseRecoveryCode(generation uint64, at time.Time) error {
	res, err := t.tx.Exec(`UPDATE breakglass_codes SET used = ? WHERE generation = ? AND used = 0`, max(msInt(at), 1), generation)
	if err != nil {
		return fmt.Errorf("store: use recovery code: %w", classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("store: recovery code generation %d unknown or already used", generation)
	}
	return nil
}

// RecoveryEscrowed forgets the sealed code of a generation the console
// acknowledged; an unknown generation changes nothing.
func (t *Tx) RecoveryEscrowed(generation uint64) error {
	return t.exec(`UPDATE breakglass_codes SET sealed = NULL WHERE generation = ?`, generation)
}

// PruneRecoveryCodes deletes the generations below keep. Their verifiers
// are no longer needed to tell a used code from a wrong one.
func (t *Tx) PruneRecoveryCodes(keep uint64) error {
	return t.exec(`DELETE FROM breakglass_codes WHERE generation < ?`, keep)
}

// RecoveryState is the break-glass failure count and lockout (SPEC.md
// 11.15), persisted so that a restart changes nothing.
type RecoveryState struct {
	Failures    int
	LockedUntil time.Time
}

// RecoveryState returns the state (zero if none was recorded).
func (t *Tx) RecoveryState() (RecoveryState, error) {
	var s RecoveryState
	var locked int64
	err := t.tx.QueryRow(`SELECT failures, locked_until FROM breakglass_state WHERE id = 1`).Scan(&s.Failures, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("store: recovery state: %w", classify(err))
	}
	s.LockedUntil = msTime(locked)
	return s, nil
}

// PutRecoveryState records the state.
func (t *Tx) PutRecoveryState(s RecoveryState) error {
	return t.exec(`INSERT INTO breakglass_state (id, failures, locked_until) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`,
		s.Failures, msInt(s.LockedUntil))
}
