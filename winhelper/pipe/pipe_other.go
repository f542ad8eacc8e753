//go:build !windows

package pipe

import (
	"context"
	"errors"

	"github.com/jitkey/jitkey/agent/ipc"
)

// Listener is the named pipe listener; it exists only on Windows.
type Listener struct{}

// Listen returns errors.ErrUnsupported: named pipes are Windows'.
func Listen(context.Context, Config) (*Listener, error) { return nil, errors.ErrUnsupported }

// Accept returns errors.ErrUnsupported.
func (*Listener) Accept(context.Context) (*ipc.Conn, error) { return nil, errors.ErrUnsupported }

// Close returns errors.ErrUnsupported.
func (*Listener) Close() error { return errors.ErrUnsupported }

// Dial returns errors.ErrUnsupported.
func Dial(context.Context, Config) (*ipc.Conn, error) { return nil, errors.ErrUnsupported }
