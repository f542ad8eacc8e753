package protocol

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// MaxSecondApproverEntries bounds each list of second approvers in a
// policy (SPEC.md 6.3).
const MaxSecondApproverEntries = 64

// Errors of a second approval (SPEC.md 11.14). Peers see only a generic
// refusal.
var (
	// ErrSelfApproval: the second approval comes from the technician
	// who asked for the login: the same technician id, certificate
	// serial or approval key.
	ErrSelfApproval = errors.New("protocol: second approval by the technician who asked")
	// ErrNotCoApprover: the policy names no second approver for the
	// device, or not this one.
	ErrNotCoApprover = errors.New("protocol: not a second approver the policy permits")
)

// validEntries reports whether s is a list of second approvers: at most
// MaxSecondApproverEntries share-list entries, sorted, no duplicates.
func validEntries(s []string) bool {
	if len(s) > MaxSecondApproverEntries {
		return false
	}
	for i, e := range s {
		if e != ShareAllAdmins && e != ShareAllUsers && !ValidUsername(e) {
			return false
		}
		if i > 0 && s[i-1] >= e {
			return false
		}
	}
	return true
}

// SecondApproverList returns who may give the second approval of a login
// on device id, and whether one is needed: the device's own list in
// SecondApproverDevices (an empty one: none needed), else the tenant's
// SecondApprovers (SPEC.md 6.3).
func (p *Policy) SecondApproverList(id DeviceID) ([]string, bool) {
	for _, s := range p.SecondApproverDevices {
		if s.DeviceID == id {
			return s.Entries, len(s.Entries) > 0
		}
	}
	return p.SecondApprovers, len(p.SecondApprovers) > 0
}

// MaySecondApprove is the rule for second approvers: the device
// is the policy's and not removed; the approver is not the technician
// (another technician id, serial and approval key), not revoked,
// delegated to the tenant and named by the device's list of second
// approvers as a share list names technicians (ShareAllUsers: any
// delegated technician; ShareAllAdmins: the tenant's admins and global
// admins; a username). A global admin is permitted only where a list
// names them: unlike the access rule, no role approves by itself.
func (p *Policy) MaySecondApprove(approver, first *TechCert, d *DeviceCert) error {
	if err := p.CheckDevice(d); err != nil {
		return err
	}
	if approver.TechID == first.TechID || approver.Serial == first.Serial ||
		subtle.ConstantTimeCompare(approver.ApprovalKey[:], first.ApprovalKey[:]) == 1 {
		return ErrSelfApproval
	}
	if p.IsRevoked(approver.Serial) {
		return ErrRevoked
	}
	role := approver.RoleIn(d.Tenant)
	if role == "" {
		return ErrNotDelegated
	}
	list, need := p.SecondApproverList(d.DeviceID)
	if !need {
		return ErrNotCoApprover
	}
	for _, e := range list {
		switch {
		case e == ShareAllUsers,
			e == ShareAllAdmins && (role == RoleAdmin || role == RoleGlobalAdmin),
			e != ShareAllAdmins && e == approver.Username:
			return nil
		}
	}
	return ErrNotCoApprover
}

// CoApproval is a second approver's signed decision on another
// technician's login (DocCoApproval, signed with the second approver's
// approval key, SPEC.md 11.14). It is bound to the handshake of the
// session that carries it, to the technician's approval (First, its
// Signed.Hash), and to the device, account and action the phone showed.
type CoApproval struct {
	Serial        uint64    `cbor:"1,keyasint"` // the second approver's certificate serial
	DeviceID      DeviceID  `cbor:"2,keyasint"`
	Session       SessionID `cbor:"3,keyasint"` // the co-approval session (not the login's)
	HandshakeHash []byte    `cbor:"4,keyasint"` // 32 bytes, Noise h of that session
	First         [32]byte  `cbor:"5,keyasint"` // Signed.Hash of the technician's approval
	Action        uint8     `cbor:"6,keyasint"`
	Account       string    `cbor:"7,keyasint"` // the account to be enabled
	TechID        string    `cbor:"8,keyasint"` // the technician who asked
	Decision      uint8     `cbor:"9,keyasint"` // DecisionApprove or DecisionDeny
	Time          int64     `cbor:"10,keyasint"`
	Nonce         [16]byte  `cbor:"11,keyasint"`
}

// CoApprovalRequest asks a second approver's phone to decide on a login
// (MsgCoApprovalRequest, SPEC.md 11.14): the device, the technician (its
// certificate), what is asked, the technician's reason and ticket, and
// the hash of the technician's approval the answer binds to.
type CoApprovalRequest struct {
	DeviceCert Signed    `cbor:"1,keyasint"`
	Session    SessionID `cbor:"2,keyasint"`
	Action     uint8     `cbor:"3,keyasint"`
	Account    string    `cbor:"4,keyasint"`
	Time       int64     `cbor:"5,keyasint"` // the agent's clock when it asks
	First      [32]byte  `cbor:"6,keyasint"` // Signed.Hash of the technician's approval
	TechCert   Signed    `cbor:"7,keyasint"` // the technician's certificate
	Method     string    `cbor:"8,keyasint"` // MethodQR or MethodPush
	Reason     string    `cbor:"9,keyasint,omitempty"`
	Ticket     string    `cbor:"10,keyasint,omitempty"`
}

// Check checks the request's plain fields (what a phone checks before it
// verifies the certificates): a known action, an account name of
// 1..MaxNameLen printable bytes, method qr or push, reason and ticket
// within their bounds and printable (ErrMalformed).
func (r *CoApprovalRequest) Check() error {
	switch {
	case ActionName(r.Action) == "":
		return fmt.Errorf("%w: co-approval action %d", ErrMalformed, r.Action)
	case r.Account == "" || !consoleText(r.Account, MaxNameLen):
		return fmt.Errorf("%w: co-approval account", ErrMalformed)
	case r.Method != MethodQR && r.Method != MethodPush:
		return fmt.Errorf("%w: co-approval method", ErrMalformed)
	case !consoleText(r.Reason, MaxReasonLen) || !consoleText(r.Ticket, MaxTicketLen):
		return fmt.Errorf("%w: co-approval reason or ticket", ErrMalformed)
	}
	return nil
}

// CoApprovalExpect is what the agent knows when a co-approval arrives:
// the second approver's certificate (verified, presented in the same
// session), the technician's, the device, the policy it holds, and the
// request it sent.
type CoApprovalExpect struct {
	Approver      *TechCert
	First         *TechCert
	Device        *DeviceCert
	Policy        *Policy
	Session       SessionID
	HandshakeHash []byte
	FirstHash     [32]byte
	Action        uint8
	Account       string
	Now           time.Time
}

// VerifyCoApproval checks a second approval (SPEC.md 11.14): the
// signature with the approver's approval key as DocCoApproval
// (ErrBadSignature, R-08, R-09), the approver's certificate valid now
// (ErrExpired, R-10), the approver permitted and not the technician
// (MaySecondApprove, R-64), then every field against the request
// (ErrApprovalMismatch) and the time within MaxApprovalSkew (ErrStale,
// Single use is the caller's. A verified deny is returned
// without error: the caller refuses the login.
func VerifyCoApproval(s Signed, e CoApprovalExpect) (CoApproval, error) {
	var c CoApproval
	if err := s.VerifyP256(DocCoApproval, e.Approver.ApprovalKey, &c); err != nil {
		return c, err
	}
	if err := e.Approver.Valid(e.Now); err != nil {
		return c, err
	}
	if err := e.Policy.MaySecondApprove(e.Approver, e.First, e.Device); err != nil {
		return c, err
	}
	ok := c.Serial == e.Approver.Serial &&
		c.DeviceID == e.Device.DeviceID &&
		subtle.ConstantTimeCompare(c.Session[:], e.Session[:]) == 1 &&
		len(e.HandshakeHash) == 32 && bytes.Equal(c.HandshakeHash, e.HandshakeHash) &&
		c.First == e.FirstHash &&
		c.Action == e.Action &&
		c.Account == e.Account &&
		c.TechID == e.First.TechID &&
		(c.Decision == DecisionApprove || c.Decision == DecisionDeny)
	if !ok {
		return c, ErrApprovalMismatch
	}
	d := e.Now.Sub(time.Unix(c.Time, 0))
	if d > MaxApprovalSkew || d < -MaxApprovalSkew {
		return c, ErrStale
	}
	return c, nil
}
