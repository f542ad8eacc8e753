//go:build !windows

package service

import (
	"context"
	"errors"
	"log/slog"
)

// IsService returns false: services are Windows'.
func IsService() (bool, error) { return false, nil }

// Run returns errors.ErrUnsupported.
func Run(func(ctx context.Context) error) error { return errors.ErrUnsupported }

// Install returns errors.ErrUnsupported.
func Install(string, ...string) error { return errors.ErrUnsupported }

// SetRecovery returns errors.ErrUnsupported.
func SetRecovery() error { return errors.ErrUnsupported }

// Uninstall returns errors.ErrUnsupported.
func Uninstall() error { return errors.ErrUnsupported }

// OpenEventLog returns errors.ErrUnsupported.
func OpenEventLog(slog.Level) (slog.Handler, func(), error) { return nil, nil, errors.ErrUnsupported }
