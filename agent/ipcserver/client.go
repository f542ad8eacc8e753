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
	c *ipc.Conn
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
	return &Client{c: c}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Begin asks for a login.
func (c *Client) Begin(ctx context.Context, surface string, action uint8) error {
	return send(ctx, c.c, MsgBegin, &Begin{Surface: surface, Action: action})
}

// End reports the end of a session.
func (c *Client) End(ctx context.Context, session protocol.SessionID) error {
	return send(ctx, c.c, MsgEnd, &End{Session: session})
}

// Next reads the next message: *QR, *Credential, *Denied or *Ended. Without
// a deadline on ctx it waits at most readTimeout.
func (c *Client) Next(ctx context.Context) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	t, body, err := recv(ctx, c.c)
	if err != nil {
		return nil, err
	}
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
	default:
		return nil, fmt.Errorf("%w: ipc message type %d", protocol.ErrMalformed, t)
	}
	err = protocol.Unmarshal(body, v)
	clear(body)
	return v, err
}

// readTimeout bounds how long a client waits for one message.
const readTimeout = 10 * time.Minute
