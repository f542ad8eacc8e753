// Package audit appends the agent's hash-chained, signed audit records and
// ships them to the console.
//
// A record is a protocol.AuditRecord signed with the agent's identity key
// (protocol.DocAudit). Record n carries Seq n and Prev = the hash of record
// n-1, and is written in the same store transaction as the state change it
// describes, so a change is never committed without its record and a
// record never describes a change that did not happen. Records stay in the
// store until the console acknowledges them, and stay in the chain after.
package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// Events, as listed in docs/flows.md.
const (
	LoginApproved   = "login.approved"
	LoginDenied     = "login.denied"
	LoginCancelled  = "login.cancelled"
	AccountCreated  = "account.created"
	AccountEnabled  = "account.enabled"
	AccountDisabled = "account.disabled"
	AccountDeleted  = "account.deleted"
	SessionEnded    = "session.ended"
	SessionExpired  = "session.expired"
	PolicyApplied   = "policy.applied"
	PolicyRejected  = "policy.rejected"
	AgentRecovered  = "agent.recovered"
	DeviceRemoved   = "device.removed" // a policy revokes this device's certificate (SPEC.md 11.10)
	// SessionWarned: the account's user was told that the hard cap will
	// end the session (SPEC.md 11.13).
	SessionWarned = "session.warned"
	// SessionAnnounced: the computer's users were told that a technician
	// session started (Policy.EndUserNotice, SPEC.md 11.13).
	SessionAnnounced = "session.announced"
	// OfflineKeyReplaced: back in contact with the console after an
	// offline login, the agent retired the key that was used (SPEC.md 11.6).
	OfflineKeyReplaced = "offline.key.replaced"
)

// Recorder signs and chains records.
type Recorder struct {
	key    ed25519.PrivateKey
	device protocol.DeviceID
	now    func() time.Time
}

// NewRecorder returns a Recorder signing with key for device. now nil means
// time.Now.
func NewRecorder(key ed25519.PrivateKey, device protocol.DeviceID, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{key: key, device: device, now: now}
}

// MaxFieldLen bounds, in bytes, each text field of a record that can carry
// text from outside the agent's code: TechID, Username, Account, Reason
// and Detail. Longer text is cut at a character boundary and ends with
// Truncated, so that every record fits an AuditBatch with room to spare
// (one record is at most about 5.5 KiB) and a backlog always drains.
const MaxFieldLen = 1024

// Truncated ends a text field that Append shortened to MaxFieldLen bytes.
const Truncated = "...[truncated]"

// clip returns s as valid UTF-8 (invalid bytes become U+FFFD, which the
// strict decoder would otherwise reject) of at most MaxFieldLen bytes.
func clip(s string) string { return clipTo(s, MaxFieldLen) }

// MaxReceiptFieldLen bounds each text field of an end receipt, so that the
// account.disabled record carrying it stays about as small as any other.
const MaxReceiptFieldLen = 128

// clipTo is clip with the bound n.
func clipTo(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len(Truncated)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Truncated
}

// Append adds rec to the log inside tx. It fills DeviceID, Seq, Prev and
// Time, and clips the text fields to MaxFieldLen.
func (r *Recorder) Append(tx *store.Tx, rec protocol.AuditRecord) error {
	for _, f := range []*string{&rec.TechID, &rec.Username, &rec.Account, &rec.Reason, &rec.Detail, &rec.Justification, &rec.Ticket} {
		*f = clip(*f)
	}
	seq, prev, err := tx.LastAudit()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	rec.DeviceID, rec.Seq, rec.Prev, rec.Time = r.device, seq+1, prev, r.now().UnixMilli()
	s, err := protocol.SignEd25519(protocol.DocAudit, &rec, r.key)
	if err != nil {
		return fmt.Errorf("audit: sign: %w", err)
	}
	h, err := s.Hash()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	b, err := s.Encode()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := tx.AppendAudit(store.AuditRow{Seq: rec.Seq, Hash: h, Record: b}); err != nil {
		return fmt.Errorf("audit: append %s: %w", rec.Event, err)
	}
	return nil
}

// Receipt signs an end receipt (SPEC.md 6.6) for this device: it fills
// DeviceID (and Ended, if zero, with now), clips the text fields like
// Append but to MaxReceiptFieldLen, and returns the encoded Signed envelope for
// AuditRecord.Receipt.
func (r *Recorder) Receipt(rc protocol.EndReceipt) ([]byte, error) {
	for _, f := range []*string{&rc.Account, &rc.TechID, &rc.Username, &rc.Event, &rc.Reason} {
		*f = clipTo(*f, MaxReceiptFieldLen)
	}
	rc.DeviceID = r.device
	if rc.Ended == 0 {
		rc.Ended = r.now().Unix()
	}
	s, err := protocol.SignEd25519(protocol.DocEndReceipt, &rc, r.key)
	if err != nil {
		return nil, fmt.Errorf("audit: sign receipt: %w", err)
	}
	return s.Encode()
}

// ErrBrokenChain is returned by Verify for a record that does not extend
// the chain.
var ErrBrokenChain = errors.New("audit: broken chain")

// Verify checks records (consecutive, oldest first) against the signing
// key, starting after a record with sequence number afterSeq and hash
// afterHash (0 and zero for the start of the log). It returns the decoded
// records. The console runs the same check.
func Verify(key protocol.IdentityKey, afterSeq uint64, afterHash [32]byte, records []protocol.Signed) ([]protocol.AuditRecord, error) {
	out := make([]protocol.AuditRecord, 0, len(records))
	seq, prev := afterSeq, afterHash
	for _, s := range records {
		var rec protocol.AuditRecord
		if err := s.VerifyEd25519(protocol.DocAudit, key, &rec); err != nil {
			return out, fmt.Errorf("audit: record %d: %w", seq+1, err)
		}
		if rec.Seq != seq+1 || rec.Prev != prev {
			return out, fmt.Errorf("%w at record %d", ErrBrokenChain, seq+1)
		}
		h, err := s.Hash()
		if err != nil {
			return out, err
		}
		seq, prev = rec.Seq, h
		out = append(out, rec)
	}
	return out, nil
}

// Decode returns the signed envelopes of stored rows.
func Decode(rows []store.AuditRow) ([]protocol.Signed, error) {
	out := make([]protocol.Signed, 0, len(rows))
	for _, r := range rows {
		s, err := protocol.DecodeSigned(r.Record)
		if err != nil {
			return nil, fmt.Errorf("audit: record %d: %w", r.Seq, err)
		}
		out = append(out, s)
	}
	return out, nil
}
