package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PushCounts is what the push limits read (SPEC.md 11.5): the pushes
// pending on the device and the technician's pushes started since a time.
type PushCounts struct {
	Pending int // pushes of any technician not ended
	Recent  int // pushes of the technician started at or after since
}

// PushCounts counts pending pushes and the technician's pushes started
// at or after since.
func (t *Tx) PushCounts(techID string, since time.Time) (PushCounts, error) {
	var c PushCounts
	if err := t.tx.QueryRow("SELECT count(*) FROM push_attempts WHERE ended = 0").Scan(&c.Pending); err != nil {
		return c, fmt.Errorf("store: push counts: %w", classify(err))
	}
	err := t.tx.QueryRow("SELECT count(*) FROM push_attempts WHERE tech_id = ? AND started >= ?", techID, msInt(since)).Scan(&c.Recent)
	if err != nil {
		return c, fmt.Errorf("store: push counts: %w", classify(err))
	}
	return c, nil
}

// StartPush records a push of the technician started at now, pending,
// and returns its id.
func (t *Tx) StartPush(techID string, now time.Time) (int64, error) {
	r, err := t.tx.Exec("INSERT INTO push_attempts (tech_id, started) VALUES (?, ?)", techID, msInt(now))
	if err != nil {
		return 0, fmt.Errorf("store: start push: %w", classify(err))
	}
	id, err := r.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store: start push: %w", err)
	}
	return id, nil
}

// EndPush marks a push as no longer pending (it still counts for the
// hourly limit).
func (t *Tx) EndPush(id int64, now time.Time) error {
	return t.exec("UPDATE push_attempts SET ended = ? WHERE id = ? AND ended = 0", max(msInt(now), 1), id)
}

// EndPendingPushes marks every pending push as ended: at the agent's
// start, when none can still be answered.
func (t *Tx) EndPendingPushes(now time.Time) error {
	return t.exec("UPDATE push_attempts SET ended = ? WHERE ended = 0", max(msInt(now), 1))
}

// PrunePushes forgets ended pushes started before before (they no longer
// count for any limit).
func (t *Tx) PrunePushes(before time.Time) error {
	return t.exec("DELETE FROM push_attempts WHERE ended != 0 AND started < ?", msInt(before))
}

// PushBlockedUntil returns when the technician's push block ends (zero:
// not blocked since a report).
func (t *Tx) PushBlockedUntil(techID string) (time.Time, error) {
	var until int64
	err := t.tx.QueryRow("SELECT until FROM push_blocks WHERE tech_id = ?", techID).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: push block: %w", classify(err))
	}
	return msTime(until), nil
}

// BlockPush blocks the technician's push logins until until, or later if
// a block already runs longer.
func (t *Tx) BlockPush(techID string, until time.Time) error {
	return t.exec(`INSERT INTO push_blocks (tech_id, until) VALUES (?, ?)
		ON CONFLICT (tech_id) DO UPDATE SET until = max(until, excluded.until)`, techID, msInt(until))
}

// PushTicket returns the technician's latest sealed push ticket, or
// ErrNotFound.
func (t *Tx) PushTicket(techID string) ([]byte, error) {
	var ticket []byte
	err := t.tx.QueryRow("SELECT ticket FROM push_tickets WHERE tech_id = ?", techID).Scan(&ticket)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: push ticket", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: push ticket: %w", classify(err))
	}
	return ticket, nil
}

// PutPushTicket keeps the technician's sealed push ticket, replacing an
// older one.
func (t *Tx) PutPushTicket(techID string, ticket []byte, now time.Time) error {
	return t.exec(`INSERT INTO push_tickets (tech_id, ticket, updated) VALUES (?, ?, ?)
		ON CONFLICT (tech_id) DO UPDATE SET ticket = excluded.ticket, updated = excluded.updated`, techID, ticket, msInt(now))
}
