package ipcserver

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// Client is a login surface's connection to the agent.
type Client struct {
	c net.Conn
}

// Dial connects to the agent's socket.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("ipcserver: dial: %w", err)
	}
	return &Client{c: c}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Begin asks for a login.
func (c *Client) Begin(surface string, action uint8) error {
	return WriteMsg(c.c, MsgBegin, &Begin{Surface: surface, Action: action})
}

// End reports the end of a session.
func (c *Client) End(session protocol.SessionID) error {
	return WriteMsg(c.c, MsgEnd, &End{Session: session})
}

// Next reads the next message: *QR, *Credential, *Denied or *Ended.
func (c *Client) Next(ctx context.Context) (any, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetReadDeadline(dl)
	} else {
		c.c.SetReadDeadline(time.Now().Add(readTimeout))
	}
	stop := context.AfterFunc(ctx, func() { c.c.SetReadDeadline(time.Now()) })
	defer stop()
	t, body, err := ReadMsg(c.c)
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
