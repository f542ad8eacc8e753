//go:build !linux && !darwin

package ipc

import (
	"context"
	"errors"
	"net"
)

// Listen returns errors.ErrUnsupported on this platform.
func Listen(ctx context.Context, cfg Config) (*Listener, error) {
	return nil, errors.ErrUnsupported
}

// Dial returns errors.ErrUnsupported on this platform.
func Dial(ctx context.Context, path string) (*Conn, error) {
	return nil, errors.ErrUnsupported
}

func peerCredentials(*net.UnixConn) (Peer, error) { return Peer{}, errors.ErrUnsupported }
