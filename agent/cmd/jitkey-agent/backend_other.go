//go:build !linux && !darwin

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
)

// backend: the Windows backend lives in winhelper.
func backend(context.Context, string, *slog.Logger) (accounts.Backend, int, error) {
	return nil, 0, errors.ErrUnsupported
}

func pamLogin(context.Context, string, string, string, password.Secret) error {
	return errors.ErrUnsupported
}
