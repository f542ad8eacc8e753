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
//	→ Begin{Surface, Action, Target}   (Target: an RDP target's name, SPEC.md 5.7.1; usually empty)
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
// Second approver (SPEC.md 5.7.7, 11.14): once the technician approved
// (by QR code or push) and the agent asks a second approver, it sends
// Status with SecondApproval (OTP false); the surface shows that it
// waits, names nobody, and drops the QR code. The agent sends no QR
// after it and ignores Code and Push until the Credential or Denied:
//
//	← Status{Online, OTP: false, SecondApproval: true}
//	← Credential{...}   or Denied{Code, Reason}
//
// Push login (SPEC.md 5.7.9, 11.5): during a login the surface may send
// the email the technician typed; the agent answers with the number to
// show, whoever the email names, then the Credential or a Denied:
//
//	→ Push{Email}
//	← Number{Number}
//	← Credential{...}   or Denied{Code, Reason}
//
// The password leaves the agent only in Credential, only over this
// socket, only once. A session not ended by the surface ends at the
// policy's maximum length.
package ipcserver

import (
	"context"
	"fmt"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/protocol"
)

// The messages are protocol's (SPEC.md 5.7, protocol/ipcmsg.go); the
// names below are this package's.
type (
	// MsgType is the first byte of every IPC message body.
	MsgType = protocol.IPCMsgType
	// Begin starts a login. Action 0 means the surface's own action.
	Begin = protocol.IPCBegin
	// QR is a code to show.
	QR = protocol.IPCQR
	// Credential is the ready account. Password is the only copy the
	// agent hands out; the surface uses it once and wipes it. It logs
	// the password as "REDACTED".
	Credential = protocol.IPCCredential
	// Denied ends a login without a credential.
	Denied = protocol.IPCDenied
	// End reports that the user's session ended.
	End = protocol.IPCEnd
	// Ended confirms End: the account is disabled again.
	Ended = protocol.IPCEnded
	// Status tells the surface whether the agent is online, whether it
	// accepts a username and code now, and whether the login waits for
	// a second approver.
	Status = protocol.IPCStatus
	// Code is an offline login attempt. It logs the code as "REDACTED".
	Code = protocol.IPCCode
	// Push asks for a push login to the technician with this email.
	Push = protocol.IPCPush
	// Number is the number to show for a push login.
	Number = protocol.IPCNumber
)

// IPC message types.
const (
	MsgBegin      = protocol.IPCMsgBegin      // surface -> agent
	MsgQR         = protocol.IPCMsgQR         // agent -> surface
	MsgCredential = protocol.IPCMsgCredential // agent -> surface, once
	MsgDenied     = protocol.IPCMsgDenied     // agent -> surface, ends the login
	MsgEnd        = protocol.IPCMsgEnd        // surface -> agent
	MsgEnded      = protocol.IPCMsgEnded      // agent -> surface
	MsgStatus     = protocol.IPCMsgStatus     // agent -> surface, after Begin and on every change
	MsgCode       = protocol.IPCMsgCode       // surface -> agent, an offline code
	MsgPush       = protocol.IPCMsgPush       // surface -> agent, a push login (SPEC.md 5.7.9)
	MsgNumber     = protocol.IPCMsgNumber     // agent -> surface, the push number to show
)

// MaxUsername bounds Code.Username.
const MaxUsername = protocol.MaxIPCUsername

// Surfaces, and the action each asks for.
var surfaces = map[string]uint8{
	"logon":   protocol.ActionLogon,
	"unlock":  protocol.ActionUnlock,
	"elevate": protocol.ActionElevate,
	"sudo":    protocol.ActionSudo,
}

// ActionFor returns the action of a surface name (0 if unknown).
func ActionFor(surface string) uint8 { return surfaces[surface] }

// marshalMsg returns the frame body of a message: type u8 || CBOR,
// encoded into the body's own array (protocol.EncodeIPCMsg), so no
// encoder buffer keeps a copy of a Credential's password once the caller
// wipes the body.
func marshalMsg(t MsgType, v any) ([]byte, error) {
	body, err := protocol.EncodeIPCMsg(t, v)
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
