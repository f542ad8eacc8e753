package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/macos/command"
	"github.com/jitkey/jitkey/macos/directory"
	"github.com/jitkey/jitkey/macos/keychain"
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

// platform puts the vault key in the System keychain (macos/keychain)
// instead of a key file in the state directory. With --sandbox (tests on a
// Mac) the key file stays.
func platform(cfg *daemon.Config, sandboxDir string, log *slog.Logger) error {
	if sandboxDir != "" {
		return nil
	}
	v, err := keychain.Open(context.Background(), keychain.Config{Runner: command.Exec{}})
	if err != nil {
		return fmt.Errorf("vault key in the System keychain: %w", err)
	}
	cfg.Vault = v
	log.Info("vault key in the System keychain", "keychain", keychain.SystemKeychain)
	return nil
}

// defaultIPC is the login surfaces' socket: macOS has no /run, and
// /var/run is where the launchd job and the plugin look.
func defaultIPC() string { return "/var/run/jitkey/agent.sock" }

// cmdService: launchd runs the agent on macOS (packaging/macos).
func cmdService(context.Context, []string, *slog.Logger) error {
	return errors.New("service: Windows only (launchd runs the agent on macOS)")
}

// protectState: the state directory's modes are set where its files are
// created (0700 directories, 0600 files).
func protectState(string) error { return nil }
