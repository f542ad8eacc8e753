package store

import (
	"github.com/jitkey/jitkey/protocol"
)

// SessionSeen records that a device enabled account at audit record seq
// (account.enabled) for a session whose hard cap is deadline (Unix
// seconds); its end receipt is still due.
func (t *Tx) SessionSeen(device protocol.DeviceID, seq uint64, account string, deadline int64) error {
	_, err := t.exec(`INSERT OR IGNORE INTO session_receipts(device_id, enabled_seq, account, deadline) VALUES (?,?,?,?)`,
		device[:], seq, account, deadline)
	return err
}

// CloseSessions stores a verified end receipt (encoded Signed), found in
// audit record seq, against every session of account on device seen
// before seq that had none, and returns how many it closed.
func (t *Tx) CloseSessions(device protocol.DeviceID, account string, seq uint64, receipt []byte) (int64, error) {
	res, err := t.exec(`UPDATE session_receipts SET receipt_seq = ?, receipt = ?
		WHERE device_id = ? AND account = ? AND receipt_seq IS NULL AND enabled_seq < ?`, seq, receipt, device[:], account, seq)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// OpenSession is a session the console saw begin whose end receipt is
// overdue.
type OpenSession struct {
	DeviceID   protocol.DeviceID
	EnabledSeq uint64
	Account    string
	Deadline   int64
	Tenant     string
	DeviceName string
}

// OverdueSessions returns the sessions without an end receipt whose
// deadline is before `before` (Unix seconds).
func (t *Tx) OverdueSessions(before int64) ([]OpenSession, error) {
	rows, err := t.query(`SELECT s.device_id, s.enabled_seq, s.account, s.deadline, d.tenant, d.name
		FROM session_receipts s JOIN devices d ON d.id = s.device_id
		WHERE s.receipt_seq IS NULL AND s.deadline < ? ORDER BY s.deadline`, before)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OpenSession
	for rows.Next() {
		var o OpenSession
		var id []byte
		if err := rows.Scan(&id, &o.EnabledSeq, &o.Account, &o.Deadline, &o.Tenant, &o.DeviceName); err != nil {
			return nil, err
		}
		copy(o.DeviceID[:], id)
		out = append(out, o)
	}
	return out, rows.Err()
}
