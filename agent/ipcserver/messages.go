// Package ipcserver serves the agent's local protocol for login surfaces
// (Windows credential provider, macOS authorization plugin, Linux PAM
// module, and the jitkey-agent surface simulator) over a Unix socket that
// only root peers may use (SO_PEERCRED).
//
// A connection carries protocol IPC frames (u32 length || body, see
// protocol.AppendIPCFrame); each body is
//
//	type u8 || canonical CBOR of the message
//
// One login, surface ⇄ agent:
//
//	→ Begin{Surface, Action}
//	← QR{Text, PNG, Terminal, Expires}   (again on every rotation)
//	← Credential{Username, Password, Session, Deadline}   once; or Denied{Code, Reason}
//	→ End{Session}   when the user's session ends (any connection)
//	← Ended{}
//
// The password leaves the agent only in Credential, only over this
// socket, only once. A session not ended by the surface ends at the
// policy's maximum length.
package ipcserver

import (
	"fmt"
	"io"

	"github.com/jitkey/jitkey/protocol"
)

// MsgType is the first byte of every IPC message body.
type MsgType uint8

// IPC message types.
const (
	MsgBegin      MsgType = 1 // surface -> agent
	MsgQR         MsgType = 2 // agent -> surface
	MsgCredential MsgType = 3 // agent -> surface, once
	MsgDenied     MsgType = 4 // agent -> surface, ends the login
	MsgEnd        MsgType = 5 // surface -> agent
	MsgEnded      MsgType = 6 // agent -> surface
)

// Surfaces, and the action each asks for.
var surfaces = map[string]uint8{
	"logon":   protocol.ActionLogon,
	"unlock":  protocol.ActionUnlock,
	"elevate": protocol.ActionElevate,
	"sudo":    protocol.ActionSudo,
}

// ActionFor returns the action of a surface name (0 if unknown).
func ActionFor(surface string) uint8 { return surfaces[surface] }

// Begin starts a login. Action 0 means the surface's own action.
type Begin struct {
	Surface string `cbor:"1,keyasint"` // logon, unlock, elevate, sudo
	Action  uint8  `cbor:"2,keyasint"`
}

// QR is a code to show.
type QR struct {
	Text     string `cbor:"1,keyasint"` // payload text ("JK:...")
	PNG      []byte `cbor:"2,keyasint"` // the code as a PNG picture
	Terminal string `cbor:"3,keyasint"` // the code as Unicode half blocks
	Expires  int64  `cbor:"4,keyasint"` // Unix seconds, when the next code replaces it
}

// Credential is the ready account. Password is the only copy the agent
// hands out; the surface uses it once and wipes it.
type Credential struct {
	Username string             `cbor:"1,keyasint"`
	Password []byte             `cbor:"2,keyasint"`
	Session  protocol.SessionID `cbor:"3,keyasint"`
	Deadline int64              `cbor:"4,keyasint"` // Unix seconds, when the agent ends the session
}

// Denied ends a login without a credential.
type Denied struct {
	Code   uint8  `cbor:"1,keyasint"` // protocol.CodeRefused, CodeDenied, CodeExpired, CodeUnavailable, CodeBadRequest
	Reason string `cbor:"2,keyasint"`
}

// End reports that the user's session ended.
type End struct {
	Session protocol.SessionID `cbor:"1,keyasint"`
}

// Ended confirms End: the account is disabled again.
type Ended struct {
	OK bool `cbor:"1,keyasint"`
}

// WriteMsg writes one message as an IPC frame.
func WriteMsg(w io.Writer, t MsgType, body any) error {
	b, err := protocol.Marshal(body)
	if err != nil {
		return err
	}
	frame, err := protocol.AppendIPCFrame(nil, append([]byte{byte(t)}, b...))
	clear(b)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	clear(frame)
	return err
}

// ReadMsg reads one frame and returns its type and CBOR body.
func ReadMsg(r io.Reader) (MsgType, []byte, error) {
	b, err := protocol.ReadIPCFrame(r)
	if err != nil {
		return 0, nil, err
	}
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("%w: short ipc message", protocol.ErrMalformed)
	}
	return MsgType(b[0]), b[1:], nil
}
