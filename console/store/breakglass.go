package store

import (
	"fmt"

	"github.com/jitkey/jitkey/protocol"
)

// RecoveryCode is a device's escrowed break-glass recovery code (SPEC.md
// 11.15), sealed under the console's escrow key.
type RecoveryCode struct {
	DeviceID   protocol.DeviceID
	Generation uint64
	Sealed     []byte
	Received   int64 // Unix seconds
	Used       int64 // Unix seconds the agent's breakglass.used arrived; 0: not used
}

// PutRecoveryCode stores an escrowed generation. The same generation
// again keeps the first (an escrow sent again before its
// acknowledgement arrived).
func (t *Tx) PutRecoveryCode(c *RecoveryCode) error {
	_, err := t.exec(`INSERT INTO breakglass_codes(device_id, generation, sealed, received) VALUES (?,?,?,?)
		ON CONFLICT (device_id, generation) DO NOTHING`, c.DeviceID[:], c.Generation, c.Sealed, c.Received)
	if err != nil {
		return fmt.Errorf("store: escrow recovery code: %w", err)
	}
	return nil
}

// LatestRecoveryCode returns the device's newest escrowed generation, or
// ErrNotFound.
func (t *Tx) LatestRecoveryCode(id protocol.DeviceID) (*RecoveryCode, error) {
	c := RecoveryCode{DeviceID: id}
	err := t.row(`SELECT generation, sealed, received, used FROM breakglass_codes WHERE device_id = ?
		ORDER BY generation DESC LIMIT 1`, id[:]).Scan(&c.Generation, &c.Sealed, &c.Received, &c.Used)
	if err != nil {
		return nil, notFound(err, "recovery code")
	}
	return &c, nil
}

// MarkRecoveryCodeUsed records that the agent reported using generation
// (at Unix seconds at). A generation the console never received is left
// as it is: there is no row to mark.
func (t *Tx) MarkRecoveryCodeUsed(id protocol.DeviceID, generation uint64, at int64) error {
	_, err := t.exec(`UPDATE breakglass_codes SET used = ? WHERE device_id = ? AND generation = ? AND used = 0`,
		at, id[:], generation)
	if err != nil {
		return fmt.Errorf("store: mark recovery code used: %w", err)
	}
	return nil
}

// RecoveryReveal is one showing of a recovery code to an administrator.
type RecoveryReveal struct {
	DeviceID   protocol.DeviceID
	Generation uint64
	Admin      string
	Time       int64 // Unix seconds
}

// InsertRecoveryReveal records a reveal.
func (t *Tx) InsertRecoveryReveal(r *RecoveryReveal) error {
	_, err := t.exec(`INSERT INTO breakglass_reveals(device_id, generation, admin, time) VALUES (?,?,?,?)`,
		r.DeviceID[:], r.Generation, r.Admin, r.Time)
	if err != nil {
		return fmt.Errorf("store: record reveal: %w", err)
	}
	return nil
}

// RecoveryReveals returns the reveals of a device's codes, oldest first.
func (t *Tx) RecoveryReveals(id protocol.DeviceID) ([]RecoveryReveal, error) {
	rows, err := t.query(`SELECT generation, admin, time FROM breakglass_reveals WHERE device_id = ? ORDER BY id`, id[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RecoveryReveal
	for rows.Next() {
		r := RecoveryReveal{DeviceID: id}
		if err := rows.Scan(&r.Generation, &r.Admin, &r.Time); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
