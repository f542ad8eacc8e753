//go:build linux

package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
)

// Accounts looks at the Linux accounts in one agent's sandbox directory
// with the same backend the agent uses (shadow-utils run inside the
// sandbox), so "enabled" means exactly what it means to the agent: not
// locked and not expired.
type Accounts struct {
	sb *sandbox.Sandbox
	be *linux.Backend
}

// OpenAccounts prepares (if needed) and opens the sandbox at dir. The
// agent's --sandbox flag opens the same directory the same way, so the
// testbed may call this before or after starting the agent.
func OpenAccounts(ctx context.Context, dir string) (*Accounts, error) {
	sb, err := sandbox.Open(ctx, sandbox.Config{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	be, err := linux.New(linux.Config{Runner: sb})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return &Accounts{sb: sb, be: be}, nil
}

// Sandbox returns the underlying sandbox (for PAM logins).
func (a *Accounts) Sandbox() *sandbox.Sandbox { return a.sb }

// Lookup reports one account's state; accounts.ErrNotFound if absent.
func (a *Accounts) Lookup(ctx context.Context, name string) (accounts.Info, error) {
	return a.be.Lookup(ctx, name)
}

// Added returns the names in the sandbox's passwd that the host's
// /etc/passwd does not have: every account the agent created.
func (a *Accounts) Added() ([]string, error) {
	host, err := passwdNames("/etc/passwd")
	if err != nil {
		return nil, err
	}
	mine, err := passwdNames(filepath.Join(a.sb.Dir(), "etc", "passwd"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range mine {
		if !slices.Contains(host, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Enabled returns every added account that is enabled now.
func (a *Accounts) Enabled(ctx context.Context) ([]string, error) {
	names, err := a.Added()
	if err != nil {
		return nil, err
	}
	var on []string
	for _, n := range names {
		info, err := a.be.Lookup(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("harness: lookup %s: %w", n, err)
		}
		if info.Enabled {
			on = append(on, n)
		}
	}
	return on, nil
}

func passwdNames(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("harness: read %s: %w", path, err)
	}
	var names []string
	for _, l := range strings.Split(string(data), "\n") {
		if n, _, ok := strings.Cut(l, ":"); ok && n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}
