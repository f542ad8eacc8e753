package protocol

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// MsgType is the first byte of every transport message; the rest is the
// message's canonical CBOR:
//
//	message = type u8 || CBOR body
type MsgType uint8

// Message types. Each flow uses a fixed sequence of them (SPEC.md, "Flows").
const (
	MsgError          MsgType = 1  // ErrorMsg, any flow, ends the session
	MsgEnrollRequest  MsgType = 2  // agent -> console
	MsgEnrollResponse MsgType = 3  // console -> agent
	MsgPairRequest    MsgType = 4  // phone -> console
	MsgPairResponse   MsgType = 5  // console -> phone
	MsgLoginHello     MsgType = 6  // phone -> agent: who is scanning
	MsgLoginRequest   MsgType = 7  // agent -> phone: what is asked
	MsgApproval       MsgType = 8  // phone -> agent: signed decision
	MsgLoginResult    MsgType = 9  // agent -> phone: outcome
	MsgPolicyPush     MsgType = 10 // console -> agent/phone
	MsgPolicyAck      MsgType = 11 // agent/phone -> console
	MsgAuditBatch     MsgType = 12 // agent -> console
	MsgAuditAck       MsgType = 13 // console -> agent
	MsgSyncRequest    MsgType = 14 // phone -> console
	MsgPushRequest    MsgType = 15 // agent -> phone: a push login to decide (number matching)
	MsgPageAck        MsgType = 18 // phone -> console: a page of a transfer arrived (paging.go)
	MsgPushReport     MsgType = 19 // phone -> agent: "this was not me" answer to a PushRequest
	// MsgConsoleRequest is console -> phone in FlowConsoleLogin: what the
	// sign-in asks (ConsoleRequest, SPEC.md 11.12).
	MsgConsoleRequest MsgType = 27
	// MsgCoApprovalRequest is agent -> phone in FlowPush: a login of
	// another technician that needs this phone's second approval
	// (CoApprovalRequest, SPEC.md 11.14); MsgCoApproval is the answer,
	// a Signed DocCoApproval.
	MsgCoApprovalRequest MsgType = 31
	MsgCoApproval        MsgType = 32
)

// EncodeMsg encodes a transport message.
func EncodeMsg(t MsgType, body any) ([]byte, error) {
	b, err := Marshal(body)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(t)}, b...), nil
}

// DecodeMsg decodes a transport message of type want into body. A message
// of type MsgError is returned as a *PeerError.
func DecodeMsg(b []byte, want MsgType, body any) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if MsgType(b[0]) == MsgError && want != MsgError {
		var e ErrorMsg
		if err := Unmarshal(b[1:], &e); err != nil {
			return err
		}
		return &PeerError{Code: e.Code, Text: e.Text}
	}
	if MsgType(b[0]) != want {
		return fmt.Errorf("%w: message type %d, want %d", ErrMalformed, b[0], want)
	}
	return Unmarshal(b[1:], body)
}

// Error codes a peer reports. They are deliberately coarse: a refusal does
// not say which check failed.
const (
	CodeRefused     uint8 = 1 // authentication, authorization or validation refused
	CodeExpired     uint8 = 2 // code, token or request expired or already used
	CodeUnavailable uint8 = 3 // temporarily unable (disk, backend); try again
	CodeBadRequest  uint8 = 4 // malformed or unexpected message
	CodeDenied      uint8 = 5 // the technician denied the request
)

// ErrorMsg ends a session with a coarse reason.
type ErrorMsg struct {
	Code uint8  `cbor:"1,keyasint"`
	Text string `cbor:"2,keyasint"` // short human text, never a secret or a failed check's detail
}

// PeerError is a MsgError received from the peer.
type PeerError struct {
	Code uint8
	Text string
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer refused (code %d): %s", e.Code, e.Text) }

// EnrollToken is what the console gives an MSP admin to enrol an agent.
// Its text form is "jk-enroll-" || base64url(CBOR), with no padding.
type EnrollToken struct {
	Tenant       string      `cbor:"1,keyasint"`
	MSPKey       IdentityKey `cbor:"2,keyasint"` // pinned by the agent from now on
	Console      string      `cbor:"3,keyasint"` // console PeerAddr text
	ConsoleNoise NoiseKey    `cbor:"4,keyasint"`
	RelayPins    [][32]byte  `cbor:"5,keyasint"` // SHA-256 of accepted relay SPKIs
	Secret       [16]byte    `cbor:"6,keyasint"` // one-time secret: PSK and token id derive from it
	Expires      int64       `cbor:"7,keyasint"` // Unix seconds
}

const enrollPrefix = "jk-enroll-"

// MaxEnrollToken bounds the text form of an enrollment token.
const MaxEnrollToken = 2048

// Encode returns the text form of the token.
func (t *EnrollToken) Encode() (string, error) {
	b, err := Marshal(t)
	if err != nil {
		return "", err
	}
	return enrollPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeEnrollToken parses a token's text form and checks its expiry.
func DecodeEnrollToken(s string, now time.Time) (EnrollToken, error) {
	var t EnrollToken
	s = strings.TrimSpace(s)
	if len(s) > MaxEnrollToken || !strings.HasPrefix(s, enrollPrefix) {
		return t, fmt.Errorf("%w: not an enrollment token", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(enrollPrefix):])
	if err != nil {
		return t, fmt.Errorf("%w: enrollment token: %v", ErrMalformed, err)
	}
	if err := Unmarshal(b, &t); err != nil {
		return t, err
	}
	if _, err := ParsePeerAddr(t.Console); err != nil {
		return t, err
	}
	if err := t.ConsoleNoise.Check(); err != nil {
		return t, err
	}
	if len(t.RelayPins) == 0 {
		return t, fmt.Errorf("%w: enrollment token without relay pin", ErrMalformed)
	}
	if now.Unix() > t.Expires {
		return t, ErrExpired
	}
	return t, nil
}

// EnrollRequest is the agent's first message of enrollment. IdentitySig is
// the agent's Ed25519 signature over ProofInput("identity", handshake hash),
// proving it holds the identity key it asks to be certified.
type EnrollRequest struct {
	Name         string      `cbor:"1,keyasint"`
	OS           string      `cbor:"2,keyasint"`
	DomainJoined bool        `cbor:"3,keyasint"`
	DC           bool        `cbor:"4,keyasint"`
	IdentityKey  IdentityKey `cbor:"5,keyasint"`
	Relay        string      `cbor:"6,keyasint"` // agent's home relay
	IdentitySig  []byte      `cbor:"7,keyasint"`
}

// EnrollResponse gives the agent its certificate and the tenant policy.
type EnrollResponse struct {
	DeviceCert Signed `cbor:"1,keyasint"`
	Policy     Signed `cbor:"2,keyasint"`
	// OfflineSecrets holds, for a shared-mode tenant, the tenant's shared
	// offline secret (SPEC.md 11.6). Omitted when empty.
	OfflineSecrets []TenantSecret `cbor:"3,keyasint,omitempty"`
}

// PairRequest is the phone's first message of pairing. IdentitySig and
// ApprovalSig prove possession of both keys, over ProofInput(handshake hash).
type PairRequest struct {
	IdentityKey IdentityKey `cbor:"1,keyasint"`
	ApprovalKey ApprovalKey `cbor:"2,keyasint"`
	Relay       string      `cbor:"3,keyasint"` // phone's home relay
	IdentitySig []byte      `cbor:"4,keyasint"`
	ApprovalSig []byte      `cbor:"5,keyasint"`
	Label       string      `cbor:"6,keyasint"` // phone model, for the console's list
}

// TenantSecret is a tenant's shared-mode offline secret.
type TenantSecret struct {
	Tenant string `cbor:"1,keyasint"`
	Secret []byte `cbor:"2,keyasint"` // 32 bytes
	// Generation numbers the tenant's shared offline secret: 1 for the
	// first, one more at each rotation; a peer keeps the highest it
	// received. Omitted when zero (a phone's tech keys before 0.2).
	Generation uint64 `cbor:"3,keyasint,omitempty"`
}

// PairResponse gives the phone its certificate and what it may see. It
// carries page 0 of the transfer of the phone's view (paging.go): Policies,
// Directory and OfflineSecrets hold that page's documents, and when More
// is set the other pages follow as PolicyPush messages in the same
// session.
type PairResponse struct {
	TechCert       Signed         `cbor:"1,keyasint"`
	MSPKey         IdentityKey    `cbor:"2,keyasint"`
	Org            string         `cbor:"3,keyasint"` // MSP display name
	Policies       []Signed       `cbor:"4,keyasint"` // tenants the technician may see
	Directory      []Signed       `cbor:"5,keyasint"` // device certificates of those tenants
	OfflineSecrets []TenantSecret `cbor:"6,keyasint"` // technician's keys of shared-mode tenants
	ConsoleNoise   NoiseKey       `cbor:"7,keyasint"`
	More           bool           `cbor:"8,keyasint,omitempty"` // pages 1.. follow as PolicyPush
}

// ProofInput is what a possession proof signs: the key kind and the
// handshake hash of the session carrying it.
//
//	"jitkey/v1/proof/" || kind || 0x00 || handshake hash
func ProofInput(kind string, handshakeHash []byte) []byte {
	in := []byte("jitkey/v1/proof/" + kind + "\x00")
	return append(in, handshakeHash...)
}

// LoginHello is the phone's first transport message of a QR login.
type LoginHello struct {
	TechCert Signed `cbor:"1,keyasint"`
	// PushTicket is the phone's sealed push ticket (SPEC.md 12.6), at
	// most MaxRelayPushTicket bytes, which the agent keeps to wake the
	// phone for a later push login (11.5). Omitted when empty.
	PushTicket []byte `cbor:"2,keyasint,omitempty"`
}

// LoginRequest is what the phone shows before the technician decides.
type LoginRequest struct {
	DeviceCert Signed    `cbor:"1,keyasint"` // the device name shown comes from here
	Session    SessionID `cbor:"2,keyasint"`
	Action     uint8     `cbor:"3,keyasint"`
	Account    string    `cbor:"4,keyasint"` // account that will be enabled, e.g. msp-nik
	Choices    []uint8   `cbor:"5,keyasint"` // account kinds offered (selective login)
	Time       int64     `cbor:"6,keyasint"`
	Number     uint16    `cbor:"7,keyasint"` // push number matching; 0 for QR
	// Target is the RDP target's device certificate for a remote domain
	// logon (SPEC.md 11.7); omitted otherwise.
	Target Signed `cbor:"8,keyasint,omitzero"`
}

// PushRequest is what the phone shows for a push login (SPEC.md 11.5):
// LoginRequest's fields without Number, and three candidate numbers, one
// of which the login screen shows.
type PushRequest struct {
	DeviceCert Signed    `cbor:"1,keyasint"` // the device name shown comes from here
	Session    SessionID `cbor:"2,keyasint"`
	Action     uint8     `cbor:"3,keyasint"`
	Account    string    `cbor:"4,keyasint"` // account that will be enabled, e.g. msp-nik
	Choices    []uint8   `cbor:"5,keyasint"` // account kinds offered (selective login)
	Time       int64     `cbor:"6,keyasint"`
	Candidates []uint16  `cbor:"7,keyasint"` // PushCandidates distinct numbers in 10..99
}

// PushCandidates is how many numbers a PushRequest offers.
const PushCandidates = 3

// CheckCandidates reports whether the request offers exactly
// PushCandidates distinct numbers in MinPushNumber..MaxPushNumber; a phone
// MUST refuse a request that does not (SPEC.md 11.5).
func (r *PushRequest) CheckCandidates() error {
	if len(r.Candidates) != PushCandidates {
		return fmt.Errorf("%w: %d push candidates", ErrMalformed, len(r.Candidates))
	}
	for i, n := range r.Candidates {
		if n < MinPushNumber || n > MaxPushNumber {
			return fmt.Errorf("%w: push candidate %d", ErrMalformed, n)
		}
		for _, m := range r.Candidates[:i] {
			if m == n {
				return fmt.Errorf("%w: push candidate %d twice", ErrMalformed, n)
			}
		}
	}
	return nil
}

// PushReport is the phone's "this was not me" answer to a PushRequest, in
// place of an approval (SPEC.md 11.5): map { 1: Session bytes 16, 2: Time
// int (phone clock) }. The KK session authenticates the phone; the agent
// blocks push logins for the technician and raises an alarm.
type PushReport struct {
	Session SessionID `cbor:"1,keyasint"`
	Time    int64     `cbor:"2,keyasint"`
}

// EventPushReported is the audit event of a "this was not me" report
// (SPEC.md 6.5, 11.5); the console raises it as an alarm.
const EventPushReported = "push.reported"

// LoginResult ends a login session.
type LoginResult struct {
	OK            bool   `cbor:"1,keyasint"`
	Account       string `cbor:"2,keyasint"`
	Code          uint8  `cbor:"3,keyasint"` // error code when !OK
	Text          string `cbor:"4,keyasint"`
	OfflineSecret []byte `cbor:"5,keyasint"` // named mode: per (device, technician) TOTP secret, first online login only
}

// PolicyPush carries signed policies and, for phones, the directory and
// the technician's offline keys. To a phone it is one page of a transfer
// of the phone's whole view (paging.go); to an agent it is always a single
// page (Page 0, More false) with its tenant's policy and nothing else.
// Page and More are omitted when zero, so a single-page push encodes as
// {1: Policies, 2: Directory}.
type PolicyPush struct {
	Policies       []Signed       `cbor:"1,keyasint"`
	Directory      []Signed       `cbor:"2,keyasint"`
	OfflineSecrets []TenantSecret `cbor:"3,keyasint,omitempty"` // to a phone: its technician's keys; to an agent: its shared-mode tenant's secret (SPEC.md 11.6)
	Page           uint32         `cbor:"4,keyasint,omitempty"` // index in the transfer, from 0
	More           bool           `cbor:"5,keyasint,omitempty"` // another page follows
}

// PageAck acknowledges a page of a transfer that has More set, so that the
// sender may send another one (paging.go):
//
//	PageAck = map { 1: Page uint }
type PageAck struct {
	Page uint32 `cbor:"1,keyasint"`
}

// PolicyAck acknowledges the versions a peer now holds.
type PolicyAck struct {
	Versions []TenantVersion `cbor:"1,keyasint"`
}

// TenantVersion is a (tenant, policy version) pair.
type TenantVersion struct {
	Tenant  string `cbor:"1,keyasint"`
	Version uint64 `cbor:"2,keyasint"`
}

// AuditBatch ships audit records, oldest first, and the device's status.
type AuditBatch struct {
	Records       []Signed `cbor:"1,keyasint"`
	PolicyVersion uint64   `cbor:"2,keyasint"` // version the agent holds
	Name          string   `cbor:"3,keyasint"`
	OS            string   `cbor:"4,keyasint"`
	// OfflineGeneration is the generation of the shared-mode offline
	// secret the agent holds (0: none), so the console knows to send the
	// current one in the AuditAck. Omitted when zero.
	OfflineGeneration uint64 `cbor:"5,keyasint,omitempty"`
}

// AuditAck acknowledges records up to and including UpTo, and carries a
// newer policy if the console has one.
type AuditAck struct {
	UpTo   uint64  `cbor:"1,keyasint"`
	Policy *Signed `cbor:"2,keyasint,omitempty"`
	// OfflineSecrets carries, with Policy, the shared-mode tenant's
	// offline secret when the agent's generation is older (SPEC.md 11.6).
	OfflineSecrets []TenantSecret `cbor:"3,keyasint,omitempty"`
}

// SyncRequest asks the console for the phone's current policies and
// directory; the answer is a PolicyPush.
type SyncRequest struct {
	Versions []TenantVersion `cbor:"1,keyasint"`
}
