//go:build !linux && !darwin && !windows

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/password"
)

// backend: the Windows backend lives in winhelper.
func backend(context.Context, string, *slog.Logger) (accounts.Backend, int, error) {
	return nil, 0, errors.ErrUnsupported
}

func pamLogin(context.Context, string, string, string, password.Secret) error {
	return errors.ErrUnsupported
}

// platform adds nothing on this platform.
func platform(*daemon.Config, string, *slog.Logger) error { return nil }

// defaultIPC is the login surfaces' endpoint.
func defaultIPC() string { return DefaultIPC }

// cmdService: services are Windows'.
func cmdService(context.Context, []string, *slog.Logger) error {
	return errors.New("service: Windows only (use systemd on Linux)")
}

// protectState: the state directory's modes are set where its files are
// created (0700 directories, 0600 files).
func protectState(string) error { return nil }
