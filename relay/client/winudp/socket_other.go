//go:build !windows

package winudp

import (
	"errors"
	"log/slog"
)

// Fallback reports whether err, from net.ListenUDP, calls for Listen:
// never outside Windows.
func Fallback(err error) bool { return false }

// Listen returns errors.ErrUnsupported outside Windows.
func Listen(log *slog.Logger, cause error) (*Conn, error) {
	return nil, errors.ErrUnsupported
}
