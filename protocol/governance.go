package protocol

import (
	"errors"
	"regexp"
	"strings"
)

// Bounds of the justification a technician gives with an approval and of
// the policy's ticket pattern (SPEC.md 6.3, 6.4).
const (
	MaxReasonLen        = 512 // bytes of Approval.Reason
	MaxTicketLen        = 64  // bytes of Approval.Ticket
	MaxTicketPatternLen = 128 // bytes of Policy.TicketPattern
)

// ErrJustification is returned for an approval that lacks the reason or
// ticket its tenant's policy requires, whose ticket does not match the
// policy's pattern, or whose reason or ticket breaks its bound.
var ErrJustification = errors.New("protocol: approval lacks the reason or ticket the policy requires")

// CompileTicketPattern compiles a policy's ticket pattern: RE2 syntax
// (Go regexp), at most MaxTicketPatternLen bytes, anchored at both ends
// (the whole ticket must match). RE2 matches in time linear in the input,
// so no pattern can make the agent spin. An empty pattern compiles to nil:
// any ticket (or none) is accepted.
func CompileTicketPattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > MaxTicketPatternLen || !consoleText(p, MaxTicketPatternLen) {
		return nil, errors.New("protocol: ticket pattern too long or not printable")
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// checkJustification checks an approval's Reason and Ticket: within their
// bounds and printable always; for an approve decision also present when
// the policy requires them (a reason when requireReason, a ticket matching
// pattern when pattern is not empty).
func (a *Approval) checkJustification(requireReason bool, pattern string) error {
	if !consoleText(a.Reason, MaxReasonLen) || !consoleText(a.Ticket, MaxTicketLen) {
		return ErrJustification
	}
	if a.Decision != DecisionApprove {
		return nil
	}
	if requireReason && strings.TrimSpace(a.Reason) == "" {
		return ErrJustification
	}
	re, err := CompileTicketPattern(pattern)
	if err != nil {
		// A policy that passed Check always compiles; fail closed anyway.
		return ErrJustification
	}
	if re != nil && !re.MatchString(a.Ticket) {
		return ErrJustification
	}
	return nil
}

// EndReceipt is the agent's signed statement of what it did when a
// session ended (DocEndReceipt, signed with the agent's identity key,
// SPEC.md 6.6). It travels in the account.disabled audit record
// (AuditRecord.Receipt) and stands on its own: anyone holding the
// device certificate can check it.
type EndReceipt struct {
	DeviceID DeviceID  `cbor:"1,keyasint"`
	Session  SessionID `cbor:"2,keyasint"`
	Account  string    `cbor:"3,keyasint"`
	TechID   string    `cbor:"4,keyasint"`
	Username string    `cbor:"5,keyasint"`
	Started  int64     `cbor:"6,keyasint"` // Unix seconds
	Deadline int64     `cbor:"7,keyasint"` // Unix seconds: the hard cap
	Ended    int64     `cbor:"8,keyasint"` // Unix seconds
	Event    string    `cbor:"9,keyasint"` // session.ended, session.expired, agent.recovered, ...
	Reason   string    `cbor:"10,keyasint"`
	// What the agent did, each true only if it succeeded.
	Disabled        bool `cbor:"11,keyasint"`
	PasswordRotated bool `cbor:"12,keyasint"`
	ProcessesEnded  bool `cbor:"13,keyasint"` // false: kept for the same technician's next session
	AdminRemoved    bool `cbor:"14,keyasint"` // removed from the administrators group
}

// ErrReceiptMismatch is returned by VerifyEndReceipt for a receipt that
// names another device or account than the audit record carrying it.
var ErrReceiptMismatch = errors.New("protocol: end receipt does not match its audit record")

// VerifyEndReceipt decodes an encoded Signed end receipt, verifies it
// with the device's identity key as DocEndReceipt (ErrBadSignature: R-08,
// R-09) and checks that it names device and account (ErrReceiptMismatch,
//
func VerifyEndReceipt(b []byte, key IdentityKey, device DeviceID, account string) (EndReceipt, error) {
	var r EndReceipt
	s, err := DecodeSigned(b)
	if err != nil {
		return r, err
	}
	if err := s.VerifyEd25519(DocEndReceipt, key, &r); err != nil {
		return r, err
	}
	if r.DeviceID != device || r.Account != account {
		return r, ErrReceiptMismatch
	}
	return r, nil
}
