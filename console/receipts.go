package console

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// ReceiptGrace is how long after a session's hard cap the console waits
// for its end receipt before it raises AlarmReceiptMissing: the agent
// ships its audit within seconds when it reaches the console, so a longer
// silence means the device is cut off, or its end was suppressed.
const ReceiptGrace = 10 * time.Minute

// trackReceipt follows the sessions of a stored audit record (SPEC.md
// 6.6): account.enabled opens one, due by the deadline its Detail states
// ("until RFC 3339"; the longest MaxSession when it states none); a record
// carrying an end receipt closes every open session of its account if
// the receipt verifies, and raises AlarmReceiptForged if not.
func (c *Console) trackReceipt(tx *store.Tx, d *store.Device, r *protocol.AuditRecord, now time.Time) error {
	if r.Event == "account.enabled" && r.Account != "" {
		deadline := r.Time/1000 + protocol.MaxSessionLimit
		if t, err := time.Parse(time.RFC3339, strings.TrimPrefix(r.Detail, "until ")); err == nil {
			deadline = t.Unix()
		}
		if err := tx.SessionSeen(d.ID, r.Seq, r.Account, deadline); err != nil {
			return err
		}
	}
	if len(r.Receipt) == 0 {
		return nil
	}
	if _, err := protocol.VerifyEndReceipt(r.Receipt, d.IdentityKey, d.ID, r.Account); err != nil {
		a := &store.Alarm{DeviceID: d.ID, Seq: r.Seq, Kind: AlarmReceiptForged, Time: now.Unix(), Tenant: d.Tenant, DeviceName: d.Name,
			Detail: fmt.Sprintf("end receipt of %s in record %d does not verify: %v", r.Account, r.Seq, err)}
		c.log.Error("END RECEIPT FORGED", "tenant", d.Tenant, "device", d.Name, "account", r.Account, "seq", r.Seq, "err", err)
		return tx.InsertAlarm(a)
	}
	_, err := tx.CloseSessions(d.ID, r.Account, r.Seq, r.Receipt)
	return err
}

// overdueReceipts raises AlarmReceiptMissing, once each, for every
// session whose end receipt is ReceiptGrace overdue, and returns how many
// sessions are overdue.
func (c *Console) overdueReceipts(tx *store.Tx, now time.Time) (int, error) {
	open, err := tx.OverdueSessions(now.Add(-ReceiptGrace).Unix())
	if err != nil {
		return 0, err
	}
	for _, o := range open {
		a := &store.Alarm{DeviceID: o.DeviceID, Seq: o.EnabledSeq, Kind: AlarmReceiptMissing, Time: now.Unix(), Tenant: o.Tenant, DeviceName: o.DeviceName,
			Detail: fmt.Sprintf("no end receipt for the session of %s enabled at record %d, due at %s", o.Account, o.EnabledSeq,
				time.Unix(o.Deadline, 0).UTC().Format(time.RFC3339))}
		if err := tx.InsertAlarm(a); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}

// CheckReceipts raises AlarmReceiptMissing for every session whose end
// receipt is overdue (ReceiptGrace after its hard cap) and returns how
// many are. Audit runs it, and so does every audit batch.
func (c *Console) CheckReceipts(ctx context.Context) (int, error) {
	n := 0
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		var err error
		n, err = c.overdueReceipts(tx, c.now())
		return err
	})
	return n, err
}
