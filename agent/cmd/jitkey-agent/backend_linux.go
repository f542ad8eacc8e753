//go:build linux

package main

import (
	"context"
	"log/slog"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
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
