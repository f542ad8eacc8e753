package protocol

import (
	"fmt"
	"log/slog"
	"time"
)

// IPCMsgType is the first byte of every local IPC message between a login
// surface and the agent (SPEC.md section 5.7). Each IPC frame body
// (AppendIPCFrame) is one message:
//
//	message = type u8 || deterministic CBOR body
//
// This package holds the wire schema; the agent's ipcserver serves it.
type IPCMsgType uint8

// IPC message types.
const (
	IPCMsgBegin      IPCMsgType = 1  // surface -> agent: start a login
	IPCMsgQR         IPCMsgType = 2  // agent -> surface: a code to show (again on every rotation)
	IPCMsgCredential IPCMsgType = 3  // agent -> surface, at most once per login: the ready account
	IPCMsgDenied     IPCMsgType = 4  // agent -> surface: a refusal; ends the exchange
	IPCMsgEnd        IPCMsgType = 5  // surface -> agent: the user's session ended
	IPCMsgEnded      IPCMsgType = 6  // agent -> surface: confirms End
	IPCMsgStatus     IPCMsgType = 7  // agent -> surface: online, and whether codes are accepted (after Begin, on every change)
	IPCMsgCode       IPCMsgType = 8  // surface -> agent: an offline code
	IPCMsgPush       IPCMsgType = 9  // surface -> agent, during a login: ask the technician's phone (push login)
	IPCMsgNumber     IPCMsgType = 10 // agent -> surface: the number to show for a push login
)

// IPCBegin starts a login:
//
//	map { 1: Surface text (logon, unlock, elevate, sudo), 2: Action u8 (0: the surface's own),
//	      3: Target text, omitted when empty }
//
// Target names the RDP target of a remote domain logon (SPEC.md 5.7.1,
// 11.7): the target device's Name or its DeviceID as 32 lowercase hex
// digits, as in the agent's directory; at most MaxIPCTarget bytes.
type IPCBegin struct {
	Surface string `cbor:"1,keyasint"`
	Action  uint8  `cbor:"2,keyasint"`
	Target  string `cbor:"3,keyasint,omitempty"`
}

// MaxIPCTarget bounds IPCBegin.Target (the DeviceCert Name's bound,
// SPEC.md 6.2).
const MaxIPCTarget = 64

// IPCQR is a login QR code to show:
//
//	map { 1: Text text ("JK:..."), 2: PNG bytes, 3: Terminal text, 4: Expires int }
type IPCQR struct {
	Text     string `cbor:"1,keyasint"` // the QR payload text (section 5.2)
	PNG      []byte `cbor:"2,keyasint"` // the code as a PNG picture
	Terminal string `cbor:"3,keyasint"` // the code as Unicode half blocks; "" if it would not fit the frame
	Expires  int64  `cbor:"4,keyasint"` // Unix seconds, when the next code replaces it
}

// IPCCredential is the ready account. The password is the only copy the
// agent hands out; the surface uses it once and wipes it.
//
//	map { 1: Username text, 2: Password bytes, 3: Session bytes 16, 4: Deadline int }
type IPCCredential struct {
	Username string    `cbor:"1,keyasint"`
	Password []byte    `cbor:"2,keyasint"` // ASCII
	Session  SessionID `cbor:"3,keyasint"`
	Deadline int64     `cbor:"4,keyasint"` // Unix seconds, when the agent ends the session
}

// LogValue implements slog.LogValuer: the password logs as Redacted.
func (c IPCCredential) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", c.Username),
		slog.String("password", Redacted),
		slog.Time("deadline", time.Unix(c.Deadline, 0)),
	)
}

// IPCDenied ends a login, or answers an End, without success:
//
//	map { 1: Code u8 (CodeRefused .. CodeDenied), 2: Reason text, for the user }
type IPCDenied struct {
	Code   uint8  `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint"`
}

// IPCEnd reports that the user's session ended: map { 1: Session bytes 16 }.
type IPCEnd struct {
	Session SessionID `cbor:"1,keyasint"`
}

// IPCEnded confirms End: the account is disabled again. map { 1: OK bool }.
type IPCEnded struct {
	OK bool `cbor:"1,keyasint"`
}

// IPCStatus tells the surface how the technician may log in now (section
// 11.6): map { 1: Online bool, 2: OTP bool, 3: SecondApproval bool,
// omitted when false }. Online: the agent reaches its relay, so a QR code
// can be answered. OTP: the agent accepts a username and code now
// (offline, or online when the policy allows it); the surface then
// offers the code prompt. SecondApproval: the technician approved and the
// agent is asking a second approver (SPEC.md 5.7.7, 11.14); the surface
// shows that it waits, names nobody, and offers neither the QR code nor
// the code prompt until the Credential or Denied that ends the login.
type IPCStatus struct {
	Online         bool `cbor:"1,keyasint"`
	OTP            bool `cbor:"2,keyasint"`
	SecondApproval bool `cbor:"3,keyasint,omitempty"`
}

// IPCCode is an offline login attempt: map { 1: Username text (at most
// MaxIPCUsername bytes), 2: Code text (the digits the phone shows) }.
type IPCCode struct {
	Username string `cbor:"1,keyasint"`
	Code     string `cbor:"2,keyasint"`
}

// MaxIPCUsername bounds IPCCode.Username; the agent ignores a longer one.
const MaxIPCUsername = 64

// LogValue implements slog.LogValuer: the code logs as Redacted.
func (c IPCCode) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.String("code", Redacted))
}

// IPCPush asks for a push login (SPEC.md 5.7.9, 11.5) during a login,
// after Begin: map { 1: Email text (at most MaxIPCEmail bytes) }. The agent
// answers with Number whoever the email names, then Credential or Denied.
type IPCPush struct {
	Email string `cbor:"1,keyasint"`
}

// MaxIPCEmail bounds IPCPush.Email (the certificate's bound, SPEC.md 6.1).
const MaxIPCEmail = 254

// IPCNumber is the number the login screen shows for a push login (SPEC.md
// 5.7.10): map { 1: Number u8, MinPushNumber..MaxPushNumber }.
type IPCNumber struct {
	Number uint8 `cbor:"1,keyasint"`
}

// Push numbers are two digits (SPEC.md 11.5).
const (
	MinPushNumber = 10
	MaxPushNumber = 99
)

// EncodeIPCMsg returns the frame body of a message: type u8 || CBOR. The
// CBOR is encoded straight into the body's own array (sized for the
// largest frame; AppendMarshal), so no encoder buffer keeps a copy of a
// Credential's password once the caller wipes the body.
func EncodeIPCMsg(t IPCMsgType, body any) ([]byte, error) {
	if _, ok := ipcBody(t); !ok {
		return nil, fmt.Errorf("protocol: unknown ipc message type %d", t)
	}
	buf := make([]byte, 1, MaxIPCFrame)
	buf[0] = byte(t)
	out, err := AppendMarshal(buf, body)
	if err != nil {
		return nil, fmt.Errorf("protocol: ipc message %d: %w", t, err)
	}
	return out, nil
}

// DecodeIPCMsg decodes an IPC frame body into the message its type byte
// names, strictly (as Unmarshal). It returns the type and a pointer to one
// of IPCBegin, IPCQR, IPCCredential, IPCDenied, IPCEnd, IPCEnded,
// IPCStatus, IPCCode, IPCPush or IPCNumber. An unknown type, a body
// without CBOR, a Begin whose Target exceeds MaxIPCTarget bytes, a Push
// whose Email exceeds MaxIPCEmail bytes or a Number outside
// MinPushNumber..MaxPushNumber is ErrMalformed.
func DecodeIPCMsg(body []byte) (IPCMsgType, any, error) {
	if len(body) < 2 {
		return 0, nil, fmt.Errorf("%w: short ipc message", ErrMalformed)
	}
	t := IPCMsgType(body[0])
	v, ok := ipcBody(t)
	if !ok {
		return t, nil, fmt.Errorf("%w: ipc message type %d", ErrMalformed, body[0])
	}
	if err := Unmarshal(body[1:], v); err != nil {
		return t, nil, err
	}
	switch m := v.(type) {
	case *IPCBegin:
		if len(m.Target) > MaxIPCTarget {
			return t, nil, fmt.Errorf("%w: begin target of %d bytes", ErrMalformed, len(m.Target))
		}
	case *IPCPush:
		if len(m.Email) > MaxIPCEmail {
			return t, nil, fmt.Errorf("%w: push email of %d bytes", ErrMalformed, len(m.Email))
		}
	case *IPCNumber:
		if m.Number < MinPushNumber || m.Number > MaxPushNumber {
			return t, nil, fmt.Errorf("%w: push number %d", ErrMalformed, m.Number)
		}
	}
	return t, v, nil
}

// ipcBody returns a new body of the message type t.
func ipcBody(t IPCMsgType) (any, bool) {
	switch t {
	case IPCMsgBegin:
		return new(IPCBegin), true
	case IPCMsgQR:
		return new(IPCQR), true
	case IPCMsgCredential:
		return new(IPCCredential), true
	case IPCMsgDenied:
		return new(IPCDenied), true
	case IPCMsgEnd:
		return new(IPCEnd), true
	case IPCMsgEnded:
		return new(IPCEnded), true
	case IPCMsgStatus:
		return new(IPCStatus), true
	case IPCMsgCode:
		return new(IPCCode), true
	case IPCMsgPush:
		return new(IPCPush), true
	case IPCMsgNumber:
		return new(IPCNumber), true
	}
	return nil, false
}
