package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/macos/command"
	"github.com/jitkey/jitkey/macos/directory"
)

// backend returns the macOS backend (macos/directory) on the host's local
// directory; macOS has no account sandbox.
func backend(_ context.Context, sandboxDir string, log *slog.Logger) (accounts.Backend, int, error) {
	if sandboxDir != "" {
		return nil, 0, errors.New("--sandbox is not supported on macOS")
	}
	b, err := directory.New(directory.Config{Runner: command.Exec{}, Logger: log, Hidden: true})
	return b, directory.MaxName, err
}

func pamLogin(context.Context, string, string, string, password.Secret) error {
	return errors.ErrUnsupported
}
