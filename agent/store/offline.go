package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OfflineKey is a named-mode offline key of one technician on this
// device (SPEC.md 11.6), sealed by package vault.
type OfflineKey struct {
	TechID  string
	Sealed  []byte
	Created time.Time
}

// OfflineKey returns the technician's named-mode key, or ErrNotFound.
func (t *Tx) OfflineKey(techID string) (OfflineKey, error) {
	k := OfflineKey{TechID: techID}
	var created int64
	err := t.tx.QueryRow("SELECT sealed, created FROM offline_keys WHERE tech_id = ?", techID).Scan(&k.Sealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("%w: offline key", ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("store: offline key: %w", classify(err))
	}
	k.Created = msTime(created)
	return k, nil
}

// PutOfflineKey inserts or replaces a technician's named-mode key.
func (t *Tx) PutOfflineKey(k OfflineKey) error {
	return t.exec(`INSERT INTO offline_keys (tech_id, sealed, created) VALUES (?, ?, ?)
		ON CONFLICT (tech_id) DO UPDATE SET sealed = excluded.sealed, created = excluded.created`,
		k.TechID, k.Sealed, msInt(k.Created))
}

// DeleteOfflineKey removes a technician's named-mode key (no error if
// there is none).
func (t *Tx) DeleteOfflineKey(techID string) error {
	return t.exec("DELETE FROM offline_keys WHERE tech_id = ?", techID)
}

// OfflineState is a technician's offline verification state on this
// device, persisted so that a restart changes nothing.
type OfflineState struct {
	TechID string
	// LastStep is the highest TOTP step accepted; steps at or below it
	// are refused.
	LastStep uint64
	// Failures counts consecutive wrong codes; LockedUntil is when the
	// lockout they caused ends.
	Failures    int
	LockedUntil time.Time
	// UsedOffline is set by an offline login and cleared at the next
	// contact with the console, which replaces the key that was used.
	UsedOffline bool
	// UsedGeneration is the highest shared-mode secret generation whose
	// code key was used offline since the last contact (0: none).
	UsedGeneration uint64
	// SpentGeneration: shared-mode codes derived from the tenant secret
	// of this generation or older are refused (the technician used one
	// offline, and the console has been told).
	SpentGeneration uint64
}

// OfflineState returns a technician's state (zero if none was recorded).
func (t *Tx) OfflineState(techID string) (OfflineState, error) {
	s := OfflineState{TechID: techID}
	var locked int64
	var used int
	err := t.tx.QueryRow(`SELECT last_step, failures, locked_until, used_offline, used_generation, spent_generation
		FROM offline_state WHERE tech_id = ?`, techID).Scan(&s.LastStep, &s.Failures, &locked, &used, &s.UsedGeneration, &s.SpentGeneration)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("store: offline state: %w", classify(err))
	}
	s.LockedUntil, s.UsedOffline = msTime(locked), used != 0
	return s, nil
}

// PutOfflineState records a technician's state.
func (t *Tx) PutOfflineState(s OfflineState) error {
	used := 0
	if s.UsedOffline {
		used = 1
	}
	return t.exec(`INSERT INTO offline_state (tech_id, last_step, failures, locked_until, used_offline, used_generation, spent_generation)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tech_id) DO UPDATE SET last_step = excluded.last_step,
		failures = excluded.failures, locked_until = excluded.locked_until, used_offline = excluded.used_offline,
		used_generation = excluded.used_generation, spent_generation = excluded.spent_generation`,
		s.TechID, s.LastStep, s.Failures, msInt(s.LockedUntil), used, s.UsedGeneration, s.SpentGeneration)
}

// UsedOffline returns the states of the technicians who logged in offline
// since the last contact with the console.
func (t *Tx) UsedOffline() ([]OfflineState, error) {
	rows, err := t.tx.Query("SELECT tech_id FROM offline_state WHERE used_offline = 1 ORDER BY tech_id")
	if err != nil {
		return nil, fmt.Errorf("store: offline state: %w", classify(err))
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: offline state: %w", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("store: offline state: %w", err)
	}
	out := make([]OfflineState, 0, len(ids))
	for _, id := range ids {
		s, err := t.OfflineState(id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// OfflineSecret is the shared-mode tenant's offline secret, sealed, with
// its generation.
type OfflineSecret struct {
	Sealed     []byte `cbor:"1,keyasint"`
	Generation uint64 `cbor:"2,keyasint"`
}

// OfflineSecret returns the tenant's offline secret, or ErrNotFound.
func (t *Tx) OfflineSecret() (OfflineSecret, error) {
	var s OfflineSecret
	return s, t.metaCBOR("offline_secret", &s)
}

// SetOfflineSecret records the tenant's offline secret.
func (t *Tx) SetOfflineSecret(s OfflineSecret) error { return t.setMetaCBOR("offline_secret", &s) }

// Contact is when the agent last heard from the console, and how many
// offline logins it accepted since.
type Contact struct {
	Last   int64 `cbor:"1,keyasint"` // Unix milliseconds
	Logins int   `cbor:"2,keyasint"`
}

// Contact returns the contact record, or ErrNotFound before the first.
func (t *Tx) Contact() (Contact, error) {
	var c Contact
	return c, t.metaCBOR("contact", &c)
}

// SetContact records c.
func (t *Tx) SetContact(c Contact) error { return t.setMetaCBOR("contact", &c) }
