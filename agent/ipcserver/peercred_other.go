//go:build !linux

package ipcserver

import (
	"errors"
	"net"
)

// PeerUID is not implemented on this platform (Windows uses named pipes
// in winhelper).
func PeerUID(net.Conn) (uint32, error) { return 0, errors.ErrUnsupported }
