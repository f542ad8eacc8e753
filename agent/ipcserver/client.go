package ipcserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/protocol"
)

// ErrAgentNotRoot is returned by Dial when the process listening on the
// socket is not root: whatever it would send is not the agent's.
var ErrAgentNotRoot = errors.New("ipcserver: agent socket not served by root")

// Client is a login surface's connection to the agent.
type Client struct {
	c      *ipc.Conn
	status Status // the last Status seen; the zero login starts online, QR only
}

// Dial connects to the agent's socket at path and checks that root
// listens on it.
func Dial(ctx context.Context, path string) (*Client, error) {
	c, err := ipc.Dial(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("ipcserver: dial agent: %w", err)
	}
	if uid := c.Peer().UID; uid != 0 {
		_ = c.Close()
		return nil, fmt.Errorf("%w (uid %d)", ErrAgentNotRoot, uid)
	}
	return &Client{c: c, status: Status{Online: true}}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Begin asks for a login.
func (c *Client) Begin(ctx context.Context, surface string, action uint8) error {
	return send(ctx, c.c, MsgBegin, &Begin{Surface: surface, Action: action})
}

// BeginTarget asks for a remote domain logon from this computer to the
// RDP target named (SPEC.md 5.7.1): its Name or DeviceID in hex.
func (c *Client) BeginTarget(ctx context.Context, target string) error {
	return send(ctx, c.c, MsgBegin, &Begin{Surface: "logon", Target: target})
}

// End reports the end of a session.
func (c *Client) End(ctx context.Context, session protocol.SessionID) error {
	return send(ctx, c.c, MsgEnd, &End{Session: session})
}

// Code sends an offline login attempt (after Begin, while the last
// Status said OTP).
func (c *Client) Code(ctx context.Context, username, code string) error {
	return send(ctx, c.c, MsgCode, &Code{Username: username, Code: code})
}

// Push asks for a push login (after Begin).
func (c *Client) Push(ctx context.Context, email string) error {
	return send(ctx, c.c, MsgPush, &Push{Email: email})
}

// Status returns the last Status the agent sent (online, QR only before
// the first).
func (c *Client) Status() Status { return c.status }

// Next reads the next message: *QR, *Number, *Credential, *Denied, *Ended, or
// *Status when the login options differ from the last ones (the first
// Status is returned only if it is not "online, QR only", so a surface
// that shows only QR codes meets Status only when the agent goes
// offline). Without a deadline on ctx it waits at most readTimeout.
func (c *Client) Next(ctx context.Context) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	for {
		t, body, err := recv(ctx, c.c)
		if err != nil {
			return nil, err
		}
		if t == MsgStatus {
			var st Status
			if err := protocol.Unmarshal(body, &st); err != nil {
				return nil, err
			}
			if st == c.status {
				continue
			}
			c.status = st
			return &st, nil
		}
		return decodeReply(t, body)
	}
}

// decodeReply decodes an agent's message other than Status.
func decodeReply(t MsgType, body []byte) (any, error) {
	var v any
	switch t {
	case MsgQR:
		v = new(QR)
	case MsgCredential:
		v = new(Credential)
	case MsgDenied:
		v = new(Denied)
	case MsgEnded:
		v = new(Ended)
	case MsgNumber:
		n := new(Number)
		if err := protocol.Unmarshal(body, n); err != nil {
			return nil, err
		}
		if n.Number < protocol.MinPushNumber || n.Number > protocol.MaxPushNumber {
			return nil, fmt.Errorf("%w: push number %d", protocol.ErrMalformed, n.Number)
		}
		return n, nil
	default:
		return nil, fmt.Errorf("%w: ipc message type %d", protocol.ErrMalformed, t)
	}
	err := protocol.Unmarshal(body, v)
	clear(body)
	return v, err
}

// readTimeout bounds how long a client waits for one message.
const readTimeout = 10 * time.Minute
