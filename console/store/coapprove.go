package store

import (
	"bytes"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/protocol"
)

// SecondApprovers returns a tenant's list of second approvers (SPEC.md
// 6.3, Policy 26; nil when none) and its per-device lists (Policy 27),
// sorted by device id.
func (t *Tx) SecondApprovers(tenant string) ([]string, []protocol.DeviceShare, error) {
	rows, err := t.query(`SELECT device_id, entries FROM second_approvers WHERE tenant = ?`, tenant)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var list []string
	var devs []protocol.DeviceShare
	for rows.Next() {
		var id []byte
		var entries string
		if err := rows.Scan(&id, &entries); err != nil {
			return nil, nil, err
		}
		es := []string{}
		if entries != "" {
			es = strings.Split(entries, ",")
		}
		if len(id) == 0 {
			list = es
			continue
		}
		var d protocol.DeviceShare
		copy(d.DeviceID[:], id)
		d.Entries = es
		devs = append(devs, d)
	}
	slices.SortFunc(devs, func(a, b protocol.DeviceShare) int { return bytes.Compare(a.DeviceID[:], b.DeviceID[:]) })
	return list, devs, rows.Err()
}

// SetSecondApprovers sets the list of second approvers of a tenant
// (device nil) or of one of its devices. entries must be sorted without
// duplicates; nil removes the list (a tenant then needs no second
// approver, a device follows its tenant's list).
func (t *Tx) SetSecondApprovers(tenant string, device *protocol.DeviceID, entries []string) error {
	id := []byte{}
	if device != nil {
		id = device[:]
	}
	if entries == nil || (device == nil && len(entries) == 0) {
		_, err := t.exec(`DELETE FROM second_approvers WHERE tenant = ? AND device_id = ?`, tenant, id)
		return err
	}
	_, err := t.exec(`INSERT INTO second_approvers (tenant, device_id, entries) VALUES (?, ?, ?)
		ON CONFLICT (tenant, device_id) DO UPDATE SET entries = excluded.entries`, tenant, id, strings.Join(entries, ","))
	return err
}
