package console

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// MaxAuditBatch bounds the records of one audit batch.
const MaxAuditBatch = 256

// Alarm kinds.
const (
	AlarmGap          = "gap"           // a sequence number was skipped
	AlarmBrokenChain  = "broken-chain"  // Prev is not the hash of the stored predecessor
	AlarmBadSignature = "bad-signature" // not signed by the device's identity key
	AlarmConflict     = "conflict"      // a different record under a stored sequence number
	AlarmWrongDevice  = "wrong-device"  // a record naming another device
	// AlarmPushReported: a technician answered a push login with "this
	// was not me" (SPEC.md 11.5); the record itself is stored as usual.
	AlarmPushReported = "push-reported"
	// AlarmReceiptForged: an account.disabled record carries an end
	// receipt that does not verify with the device's identity key or
	// names another device or account (SPEC.md 6.6, R-62).
	AlarmReceiptForged = "receipt-forged"
	// AlarmReceiptMissing: a session the console saw begin has no end
	// receipt ReceiptGrace after its hard cap (SPEC.md 6.6, R-62).
	AlarmReceiptMissing = "receipt-missing"
)

// IngestResult says what an audit batch did.
type IngestResult struct {
	Ack     protocol.AuditAck
	Stored  int
	Dupes   int
	Alarm   *store.Alarm // the problem that stopped the batch, if any
	Device  *store.Device
	Pending bool // the device holds an older policy than the latest
}

// IngestAudit verifies and stores an agent's audit batch in one
// transaction. Each record must be signed by the device's identity key,
// carry Seq = last+1 and Prev = hash of the last stored record. A record
// already stored with identical bytes is a harmless replay and skipped.
// Anything else stops the batch: the records before it are kept, an alarm
// is stored and logged at ERROR level, and the ack names the last good
// record. The batch's report updates the device's last-seen time, name,
// OS and acknowledged policy version. A removed device's records are
// verified and stored like any other, marked FromRemoved, so that no audit
// is lost; its acknowledgement carries at most the policy that revoked it
// (SPEC.md 11.10).
func (c *Console) IngestAudit(ctx context.Context, from protocol.MailboxID, b *protocol.AuditBatch) (*IngestResult, error) {
	if len(b.Records) > MaxAuditBatch {
		return nil, fmt.Errorf("%w: audit batch of %d records", ErrRefused, len(b.Records))
	}
	now := c.now()
	var res IngestResult
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		d, err := tx.DeviceByMailbox(from)
		if err != nil {
			return fmt.Errorf("%w: unknown device", ErrRefused)
		}
		res.Device = d
		last, lastHash, err := tx.AuditHead(d.ID)
		if err != nil {
			return err
		}
		alarm := func(seq uint64, kind, detail string) {
			res.Alarm = &store.Alarm{DeviceID: d.ID, Seq: seq, Kind: kind, Detail: detail, Time: now.Unix(),
				Tenant: d.Tenant, DeviceName: d.Name}
		}
		for _, s := range b.Records {
			var r protocol.AuditRecord
			if err := s.VerifyEd25519(protocol.DocAudit, d.IdentityKey, &r); err != nil {
				// The alarm sits where the chain stopped: an unverified
				// record's claimed seq could be anything, even one the
				// store cannot hold, which would roll back the batch.
				var claimed protocol.AuditRecord
				_ = protocol.Unmarshal(s.Body, &claimed)
				alarm(last+1, AlarmBadSignature, fmt.Sprintf("record (claiming seq %d) not signed by the device's identity key", claimed.Seq))
				break
			}
			if r.DeviceID != d.ID {
				alarm(last+1, AlarmWrongDevice, fmt.Sprintf("record (seq %d) names device %x", r.Seq, r.DeviceID))
				break
			}
			enc, err := s.Encode()
			if err != nil {
				return err
			}
			if r.Seq >= 1 && r.Seq <= last {
				stored, err := tx.AuditRecordBytes(d.ID, r.Seq)
				if err != nil {
					return err
				}
				if bytes.Equal(stored, enc) {
					res.Dupes++
					continue
				}
				alarm(r.Seq, AlarmConflict, "a different record was already stored under this sequence number")
				break
			}
			if r.Seq != last+1 {
				alarm(last+1, AlarmGap, fmt.Sprintf("expected seq %d, got %d", last+1, r.Seq))
				break
			}
			if r.Prev != lastHash {
				alarm(r.Seq, AlarmBrokenChain, "prev does not match the hash of the stored record before it")
				break
			}
			h, err := s.Hash()
			if err != nil {
				return err
			}
			row := &store.AuditRow{DeviceID: d.ID, Seq: r.Seq, Hash: h, Signed: s, Record: r, Received: now.Unix(),
				FromRemoved: d.Removed != 0}
			if err := tx.InsertAudit(row); err != nil {
				return err
			}
			last, lastHash = r.Seq, h
			res.Stored++
			if err := c.trackReceipt(tx, d, &r, now); err != nil {
				return err
			}
			if r.Event == protocol.EventPushReported {
				a := &store.Alarm{DeviceID: d.ID, Seq: r.Seq, Kind: AlarmPushReported, Time: now.Unix(), Tenant: d.Tenant, DeviceName: d.Name,
					Detail: fmt.Sprintf("%s reported a push login on %s they did not request (%s)", r.Username, d.Name, r.Detail)}
				if err := tx.InsertAlarm(a); err != nil {
					return err
				}
				c.log.Error("push login reported as fraud", "tenant", d.Tenant, "device", d.Name, "technician", r.Username)
			}
			if r.Event == protocol.EventBreakGlassUsed {
				if err := c.breakGlassUsed(tx, d, &r, now.Unix()); err != nil {
					return err
				}
			}
		}
		if res.Alarm != nil {
			if err := tx.InsertAlarm(res.Alarm); err != nil {
				return err
			}
		}
		if _, err := c.overdueReceipts(tx, now); err != nil {
			return err
		}
		name, os := b.Name, b.OS
		if !checkDeviceName(name) {
			name = ""
		}
		if !checkOS(os) {
			os = ""
		}
		if err := tx.TouchDevice(d.ID, name, os, now.Unix(), b.PolicyVersion); err != nil {
			return err
		}
		res.Ack.UpTo = last
		var pol *store.PolicyRow
		if d.Removed != 0 {
			// Only the policy that revoked it, never a later one
			// (SPEC.md 11.10).
			pol, err = tx.PolicyAt(d.Tenant, d.RemovedVersion)
		} else {
			pol, err = tx.LatestPolicy(d.Tenant)
		}
		if err != nil {
			return err
		}
		if pol.Version > b.PolicyVersion {
			res.Ack.Policy = &pol.Signed
			res.Pending = true
		}
		// An agent that reports an older offline secret gets the current
		// one, newer policy or not.
		secrets, err := tenantAgentSecrets(tx, d)
		if err != nil {
			return err
		}
		if len(secrets) == 1 && b.OfflineGeneration < secrets[0].Generation {
			res.Ack.OfflineSecrets = secrets
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d := res.Device; d.Removed != 0 && res.Stored > 0 {
		c.log.Warn("audit stored from a removed device", "device", d.Name, "tenant", d.Tenant,
			"device_id", fmt.Sprintf("%x", d.ID), "records", res.Stored)
	}
	if a := res.Alarm; a != nil {
		c.log.Error("AUDIT CHAIN BROKEN", "device", res.Device.Name, "tenant", res.Device.Tenant,
			"device_id", fmt.Sprintf("%x", a.DeviceID), "seq", a.Seq, "kind", a.Kind, "detail", a.Detail)
	}
	return &res, nil
}

// AuditQuery selects audit records for display.
type AuditQuery struct {
	Tenant   string
	Username string
	Device   string // device reference (name, TENANT/NAME or id prefix)
	SinceMs  int64
	Limit    int
}

// Audit returns matching records and every alarm of the selected tenant or
// device (alarms are never filtered by time: they stay loud).
func (c *Console) Audit(ctx context.Context, q AuditQuery) ([]*store.AuditRow, []*store.Alarm, error) {
	var rows []*store.AuditRow
	var alarms []*store.Alarm
	if _, err := c.CheckReceipts(ctx); err != nil {
		return nil, nil, err
	}
	err := c.db.View(ctx, func(tx *store.Tx) error {
		f := store.AuditFilter{Tenant: q.Tenant, Username: q.Username, SinceMs: q.SinceMs, Limit: q.Limit}
		if q.Tenant != "" {
			if _, err := tx.Tenant(q.Tenant); err != nil {
				return refuse("no tenant %q", q.Tenant)
			}
		}
		if q.Device != "" {
			d, err := findDevice(tx, deviceRef{ref: q.Device, removed: true})
			if err != nil {
				return err
			}
			f.Device = &d.ID
		}
		var err error
		if rows, err = tx.Audit(f); err != nil {
			return err
		}
		alarms, err = tx.Alarms(q.Tenant, f.Device)
		return err
	})
	return rows, alarms, err
}
