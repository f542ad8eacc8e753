package protocol

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Actions a login request can ask for.
const (
	ActionLogon   uint8 = 1 // sign in at the login screen
	ActionUnlock  uint8 = 2 // unlock a locked session
	ActionElevate uint8 = 3 // UAC / macOS authorization right
	ActionSudo    uint8 = 4 // Linux sudo / PAM
	// ActionConsole signs an MSP admin in to the web console: shown by the
	// console in a login QR with a zero device id, approved like a login
	// (SPEC.md 11.12). It is not a device action: ActionName does not name
	// it, so no agent shows or accepts it.
	ActionConsole uint8 = 5
)

// ActionName returns the SPEC name of an action ("" if unknown).
func ActionName(a uint8) string {
	switch a {
	case ActionLogon:
		return "logon"
	case ActionUnlock:
		return "unlock"
	case ActionElevate:
		return "elevate"
	case ActionSudo:
		return "sudo"
	}
	return ""
}

// Account kinds a technician can choose in an approval.
const (
	AccountDefault uint8 = 0 // the tenant's mode: named or shared local account
	AccountLocal   uint8 = 1 // selective login: a local account
	AccountDomain  uint8 = 2 // selective login: a domain account
)

// Decisions in an approval. Approve and deny encode to the same length.
const (
	DecisionApprove uint8 = 1
	DecisionDeny    uint8 = 2
)

// Login methods recorded in audit.
const (
	MethodQR   = "qr"
	MethodPush = "push"
	MethodOTP  = "otp"
)

// Approval is the technician's signed decision on one login request, signed
// with the phone's approval key (DocApproval). It is bound to the Noise
// handshake of the session in which it is sent, so it cannot be replayed in
// another session, and to the session, device, action and account choice
// the phone showed.
type Approval struct {
	Serial        uint64    `cbor:"1,keyasint"` // technician certificate serial
	DeviceID      DeviceID  `cbor:"2,keyasint"`
	Session       SessionID `cbor:"3,keyasint"`
	HandshakeHash []byte    `cbor:"4,keyasint"` // 32 bytes, Noise handshake hash h
	Action        uint8     `cbor:"5,keyasint"`
	Account       uint8     `cbor:"6,keyasint"` // AccountDefault, AccountLocal, AccountDomain
	Decision      uint8     `cbor:"7,keyasint"`
	Time          int64     `cbor:"8,keyasint"`  // phone clock, Unix seconds
	Number        uint16    `cbor:"9,keyasint"`  // push number matching; 0 for QR
	Nonce         [16]byte  `cbor:"10,keyasint"` // random per approval
	// Target is the RDP target of a remote domain logon from DeviceID
	// (SPEC.md 11.7); zero, and then omitted, for every other login.
	Target DeviceID `cbor:"11,keyasint,omitzero"`
	// Reason is the technician's free-text justification and Ticket the
	// ticket reference, entered on the phone; required by the tenant's
	// policy (RequireReason, TicketPattern) and recorded in the audit
	// (SPEC.md 6.4). Omitted when empty.
	Reason string `cbor:"12,keyasint,omitempty"`
	Ticket string `cbor:"13,keyasint,omitempty"`
}

// MaxApprovalSkew is how far an approval's time may differ from the
// verifier's clock.
const MaxApprovalSkew = 120 * time.Second

// ErrApprovalMismatch is returned when an approval does not match the
// request it answers. Peers see only a generic refusal.
var ErrApprovalMismatch = errors.New("protocol: approval does not match the request")

// ErrStale is returned for a timestamp outside the accepted window.
var ErrStale = errors.New("protocol: stale or future timestamp")

// ApprovalExpect is what a verifier knows about the request it sent.
type ApprovalExpect struct {
	Serial        uint64
	DeviceID      DeviceID
	Session       SessionID
	HandshakeHash []byte
	Action        uint8
	Number        uint16
	AllowAccount  func(uint8) bool // nil: only AccountDefault
	Target        DeviceID         // RDP target asked for; zero for a local login
	Now           time.Time
	// RequireReason and TicketPattern are the tenant policy's (6.3): an
	// approve decision must then carry a reason, and a ticket matching
	// the pattern.
	RequireReason bool
	TicketPattern string
}

// Match checks a decoded approval against what the verifier expects. It
// does not check the signature (Signed.VerifyP256 does) nor replay (the
// caller's single-use store does).
func (a *Approval) Match(e ApprovalExpect) error {
	ok := a.Serial == e.Serial &&
		a.DeviceID == e.DeviceID &&
		subtle.ConstantTimeCompare(a.Session[:], e.Session[:]) == 1 &&
		len(e.HandshakeHash) == 32 && bytes.Equal(a.HandshakeHash, e.HandshakeHash) &&
		a.Action == e.Action &&
		a.Number == e.Number &&
		a.Target == e.Target &&
		(a.Decision == DecisionApprove || a.Decision == DecisionDeny)
	if ok {
		if e.AllowAccount == nil {
			ok = a.Account == AccountDefault
		} else {
			ok = e.AllowAccount(a.Account)
		}
	}
	if !ok {
		return ErrApprovalMismatch
	}
	d := e.Now.Sub(time.Unix(a.Time, 0))
	if d > MaxApprovalSkew || d < -MaxApprovalSkew {
		return ErrStale
	}
	return a.checkJustification(e.RequireReason, e.TicketPattern)
}

// AuditRecord is one entry of an agent's hash-chained audit log, signed
// with the agent's identity key (DocAudit). Prev is the Signed.Hash of the
// previous record (zero for Seq 1).
type AuditRecord struct {
	DeviceID DeviceID `cbor:"1,keyasint"`
	Seq      uint64   `cbor:"2,keyasint"` // 1, 2, 3, ... without gaps
	Prev     [32]byte `cbor:"3,keyasint"`
	Time     int64    `cbor:"4,keyasint"` // Unix milliseconds
	Event    string   `cbor:"5,keyasint"` // e.g. "login.approved", "account.disabled"
	TechID   string   `cbor:"6,keyasint,omitempty"`
	Username string   `cbor:"7,keyasint,omitempty"`
	Account  string   `cbor:"8,keyasint,omitempty"`
	Method   string   `cbor:"9,keyasint,omitempty"` // MethodQR, MethodPush, MethodOTP
	Online   bool     `cbor:"10,keyasint,omitempty"`
	Action   uint8    `cbor:"11,keyasint,omitempty"`
	Reason   string   `cbor:"12,keyasint,omitempty"` // why a request was denied
	Detail   string   `cbor:"13,keyasint,omitempty"`
	// Justification and Ticket are the technician's reason and ticket
	// reference from the approval of a login (SPEC.md 6.4, 6.5).
	Justification string `cbor:"14,keyasint,omitempty"`
	Ticket        string `cbor:"15,keyasint,omitempty"`
	// Receipt is the encoded Signed EndReceipt (DocEndReceipt) of the
	// session an account.disabled record ends (SPEC.md 6.6).
	Receipt []byte `cbor:"16,keyasint,omitempty"`
}

// ErrBrokenChain is returned by VerifyAuditChain for a record that does
// not extend the chain: another device, a Seq other than the next, or a
// Prev other than the hash of the record before it.
var ErrBrokenChain = errors.New("protocol: audit record does not extend the chain")

// VerifyAuditChain checks consecutive audit records, oldest first, that
// follow the record with sequence number afterSeq and hash afterHash (0
// and all zero at the start of a device's log): each MUST verify with the
// device's identity key as DocAudit (ErrBadSignature), name the device,
// carry Seq = previous + 1 and Prev = Hash of the previous Signed record
// (ErrBrokenChain). It returns the records that passed, up to the first
// failure, and that failure (SPEC.md 11.8, R-42).
func VerifyAuditChain(key IdentityKey, device DeviceID, afterSeq uint64, afterHash [32]byte, records []Signed) ([]AuditRecord, error) {
	out := make([]AuditRecord, 0, len(records))
	seq, prev := afterSeq, afterHash
	for _, s := range records {
		var rec AuditRecord
		if err := s.VerifyEd25519(DocAudit, key, &rec); err != nil {
			return out, fmt.Errorf("audit record %d: %w", seq+1, err)
		}
		if rec.DeviceID != device || rec.Seq != seq+1 || rec.Prev != prev {
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
