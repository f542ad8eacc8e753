// Package ipcserver serves the agent's local protocol for login surfaces
// (Windows credential provider, macOS authorization plugin, Linux PAM
// module, and the jitkey-agent surface simulator). The transport is
// package agent/ipc: a Unix socket that only root peers may use
// (SO_PEERCRED), carrying protocol IPC frames (u32 length || body, see
// protocol.AppendIPCFrame). Each frame body is one message:
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
// Offline codes (SPEC.md 11.6): right after Begin, and again whenever it
// changes during the login, the agent sends Status{Online, OTP}. While
// OTP is true the surface offers "username + code" (by itself when the
// agent cannot reach its relay, or online if the policy allows codes
// then); the surface never decides it:
//
//	← Status{Online, OTP}
//	→ Code{Username, Code}
//	← Credential{...}   or Denied{Code, Reason}   (either ends the login)
//
// The password leaves the agent only in Credential, only over this
// socket, only once. A session not ended by the surface ends at the
// policy's maximum length.
package ipcserver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/password"
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
	MsgStatus     MsgType = 7 // agent -> surface, after Begin and on every change
	MsgCode       MsgType = 8 // surface -> agent, an offline code
)

// Status tells the surface how the technician may log in now.
type Status struct {
	// Online: the agent reaches its relay, so a QR code can be answered.
	Online bool `cbor:"1,keyasint"`
	// OTP: the agent accepts a username and code now (offline, or online
	// when the policy allows it). The surface shows the code prompt.
	OTP bool `cbor:"2,keyasint"`
}

// Code is an offline login attempt: the technician's username and the
// code their phone shows.
type Code struct {
	Username string `cbor:"1,keyasint"` // at most MaxUsername bytes
	Code     string `cbor:"2,keyasint"` // 6 or 8 decimal digits
}

// MaxUsername bounds Code.Username.
const MaxUsername = 64

// LogValue implements slog.LogValuer: the code logs as "REDACTED".
func (c Code) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.String("code", password.Redacted))
}

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

// LogValue implements slog.LogValuer: the password logs as "REDACTED".
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", c.Username),
		slog.String("password", password.Redacted),
		slog.Time("deadline", time.Unix(c.Deadline, 0)),
	)
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

// marshalMsg returns the frame body of a message: type u8 || CBOR. The
// CBOR is encoded straight into the body's own array (sized for the
// largest frame), so no encoder buffer keeps a copy of a Credential's
// password once the caller wipes the body.
func marshalMsg(t MsgType, v any) ([]byte, error) {
	buf := make([]byte, 1, protocol.MaxIPCFrame)
	buf[0] = byte(t)
	body, err := protocol.AppendMarshal(buf, v)
	if err != nil {
		return nil, fmt.Errorf("ipcserver: encode message %d: %w", t, err)
	}
	return body, nil
}

// parseMsg splits a frame body into its type and CBOR.
func parseMsg(body []byte) (MsgType, []byte, error) {
	if len(body) < 2 {
		return 0, nil, fmt.Errorf("%w: short ipc message", protocol.ErrMalformed)
	}
	return MsgType(body[0]), body[1:], nil
}

// send writes one message as one frame.
func send(ctx context.Context, c *ipc.Conn, t MsgType, v any) error {
	body, err := marshalMsg(t, v)
	if err != nil {
		return err
	}
	defer clear(body)
	return c.WriteMessage(ctx, body)
}

// recv reads one message and returns its type and CBOR.
func recv(ctx context.Context, c *ipc.Conn) (MsgType, []byte, error) {
	body, err := c.ReadMessage(ctx)
	if err != nil {
		return 0, nil, err
	}
	return parseMsg(body)
}
