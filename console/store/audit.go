package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jitkey/jitkey/protocol"
)

// AuditRow is a verified audit record as stored.
type AuditRow struct {
	DeviceID protocol.DeviceID
	Seq      uint64
	Hash     [32]byte
	Signed   protocol.Signed
	Record   protocol.AuditRecord
	Received int64
	// FromRemoved: the record arrived after the MSP had removed the
	// device (SPEC.md 11.10); it is verified and kept like any other.
	FromRemoved bool
	// Filled by Audit from the device table.
	Tenant     string
	DeviceName string
}

// AuditHead returns the last stored record's sequence number and hash for
// a device (0 and the zero hash when none).
func (t *Tx) AuditHead(id protocol.DeviceID) (uint64, [32]byte, error) {
	var seq uint64
	var h []byte
	var out [32]byte
	err := t.row(`SELECT seq, hash FROM audit WHERE device_id = ? ORDER BY seq DESC LIMIT 1`, id[:]).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, out, nil
	}
	copy(out[:], h)
	return seq, out, err
}

// AuditRecordBytes returns the stored encoding of one record, or ErrNotFound.
func (t *Tx) AuditRecordBytes(id protocol.DeviceID, seq uint64) ([]byte, error) {
	var b []byte
	err := t.row(`SELECT record FROM audit WHERE device_id = ? AND seq = ?`, id[:], seq).Scan(&b)
	if err != nil {
		return nil, notFound(err, "audit record")
	}
	return b, nil
}

// InsertAudit stores one verified record.
func (t *Tx) InsertAudit(r *AuditRow) error {
	enc, err := r.Signed.Encode()
	if err != nil {
		return err
	}
	_, err = t.exec(`INSERT INTO audit(device_id, seq, hash, record, time, event, tech_id, username, received, from_removed)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, r.DeviceID[:], r.Seq, r.Hash[:], enc, r.Record.Time, r.Record.Event,
		r.Record.TechID, r.Record.Username, r.Received, b2i(r.FromRemoved))
	if err != nil {
		return fmt.Errorf("store: insert audit record: %w", err)
	}
	return nil
}

// AuditFilter selects audit records; zero fields select everything.
type AuditFilter struct {
	Tenant   string
	Username string // technician username as recorded
	Device   *protocol.DeviceID
	SinceMs  int64 // record time, Unix milliseconds
	Limit    int
}

// Audit returns records matching f, oldest first.
func (t *Tx) Audit(f AuditFilter) ([]*AuditRow, error) {
	var where []string
	var args []any
	if f.Tenant != "" {
		where, args = append(where, "d.tenant = ?"), append(args, f.Tenant)
	}
	if f.Username != "" {
		where, args = append(where, "a.username = ?"), append(args, f.Username)
	}
	if f.Device != nil {
		where, args = append(where, "a.device_id = ?"), append(args, f.Device[:])
	}
	if f.SinceMs != 0 {
		where, args = append(where, "a.time >= ?"), append(args, f.SinceMs)
	}
	q := `SELECT a.device_id, a.seq, a.hash, a.record, a.received, a.from_removed, d.tenant, d.name
		FROM audit a JOIN devices d ON d.id = a.device_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY a.time, a.device_id, a.seq"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*AuditRow
	for rows.Next() {
		var r AuditRow
		var id, h, enc []byte
		if err := rows.Scan(&id, &r.Seq, &h, &enc, &r.Received, &r.FromRemoved, &r.Tenant, &r.DeviceName); err != nil {
			return nil, err
		}
		copy(r.DeviceID[:], id)
		copy(r.Hash[:], h)
		if r.Signed, err = protocol.DecodeSigned(enc); err != nil {
			return nil, err
		}
		if err := protocol.Unmarshal(r.Signed.Body, &r.Record); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// Alarm is a loud report of an audit chain problem.
type Alarm struct {
	ID         int64
	DeviceID   protocol.DeviceID
	Seq        uint64
	Kind       string // "gap", "broken-chain", "bad-signature", "conflict", "wrong-device", "push-reported"
	Detail     string
	Time       int64 // Unix seconds
	Tenant     string
	DeviceName string
}

// InsertAlarm records an alarm; the same (device, seq, kind) is kept once.
func (t *Tx) InsertAlarm(a *Alarm) error {
	_, err := t.exec(`INSERT OR IGNORE INTO alarms(device_id, seq, kind, detail, time) VALUES (?,?,?,?,?)`,
		a.DeviceID[:], a.Seq, a.Kind, a.Detail, a.Time)
	return err
}

// Alarms returns alarms, optionally of one tenant or device, oldest first.
func (t *Tx) Alarms(tenant string, device *protocol.DeviceID) ([]*Alarm, error) {
	q := `SELECT a.id, a.device_id, a.seq, a.kind, a.detail, a.time, d.tenant, d.name
		FROM alarms a JOIN devices d ON d.id = a.device_id WHERE 1 = 1`
	var args []any
	if tenant != "" {
		q, args = q+" AND d.tenant = ?", append(args, tenant)
	}
	if device != nil {
		q, args = q+" AND a.device_id = ?", append(args, device[:])
	}
	rows, err := t.query(q+" ORDER BY a.id", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Alarm
	for rows.Next() {
		var a Alarm
		var id []byte
		if err := rows.Scan(&a.ID, &id, &a.Seq, &a.Kind, &a.Detail, &a.Time, &a.Tenant, &a.DeviceName); err != nil {
			return nil, err
		}
		copy(a.DeviceID[:], id)
		out = append(out, &a)
	}
	return out, rows.Err()
}
