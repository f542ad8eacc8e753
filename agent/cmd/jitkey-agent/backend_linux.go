//go:build linux

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/password"
)

// backend returns the Linux backend, on the host or in a sandbox.
func backend(ctx context.Context, sandboxDir string, log *slog.Logger) (accounts.Backend, int, error) {
	var run linux.Runner = linux.ExecRunner{}
	if sandboxDir != "" {
		sb, err := sandbox.Open(ctx, sandbox.Config{Dir: sandboxDir, Logger: log})
		if err != nil {
			return nil, 0, err
		}
		run = sb
	}
	b, err := linux.New(linux.Config{Runner: run, Logger: log})
	return b, accounts.MaxNameLinux, err
}

// pamLogin proves a credential through PAM (pamtester), in the sandbox if
// given, as a login screen would: authenticate and account management.
func pamLogin(ctx context.Context, sandboxDir, service, user string, pw password.Secret) error {
	var run linux.Runner = linux.ExecRunner{}
	if sandboxDir != "" {
		sb, err := sandbox.Open(ctx, sandbox.Config{Dir: sandboxDir})
		if err != nil {
			return err
		}
		if service == "" {
			service = sandbox.PAMService
		}
		run = sb
	}
	in := append(append([]byte(nil), pw.Bytes()...), '\n')
	defer clear(in)
	_, err := run.Run(ctx, in, "pamtester", "--", service, user, "authenticate", "acct_mgmt")
	return err
}

// platform adds nothing on Linux: the Unix socket and the vault key file
// are daemon's defaults.
func platform(*daemon.Config, string, *slog.Logger) error { return nil }

// defaultIPC is the login surfaces' socket.
func defaultIPC() string { return DefaultIPC }

// cmdService: systemd runs the agent on Linux (packaging/).
func cmdService(context.Context, []string, *slog.Logger) error {
	return errors.New("service: Windows only (use systemd on Linux)")
}

// protectState: the state directory's modes are set where its files are
// created (0700 directories, 0600 files).
func protectState(string) error { return nil }
