package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jitkey/jitkey/agent/accounts"
)

// Lister is implemented by backends that can find jitkey's accounts on the
// system without the agent's store: every account whose full name starts
// with accounts.JITFullNamePrefix (which fullName gives each account
// jitkey creates).
type Lister interface {
	ListJIT(ctx context.Context) ([]accounts.Info, error)
}

// Lockdown disables, logs out (accounts.Backend.EndSessions), removes
// from the administrators group and re-randomises every account b lists
// with jitkey's full-name marker (the steps of disableAccount), and
// returns their names. It is the fallback of a start whose store cannot be
// read (store.ErrCorrupt): without the store, Recover cannot tell which
// accounts are in a session, and the marker is the only sign of which
// accounts are jitkey's. Nothing is recorded (there is no store to record
// in); the caller logs the result. It goes on past a failed account and
// returns every error, and an error wrapping errors.ErrUnsupported if b is
// not a Lister.
func Lockdown(ctx context.Context, b accounts.Backend, rand io.Reader) ([]string, error) {
	l, ok := b.(Lister)
	if !ok {
		return nil, fmt.Errorf("lifecycle: lockdown: backend cannot list jitkey's accounts: %w", errors.ErrUnsupported)
	}
	infos, listErr := l.ListJIT(ctx)
	var done []string
	errs := []error{listErr}
	for _, info := range infos {
		if !info.IsJIT() {
			continue
		}
		if err := lockdown(ctx, b, rand, info); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, info.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return done, fmt.Errorf("lifecycle: lockdown: %w", err)
	}
	return done, nil
}

func lockdown(ctx context.Context, b accounts.Backend, rand io.Reader, info accounts.Info) error {
	username := strings.TrimPrefix(info.FullName, accounts.JITFullNamePrefix)
	_, err := disableAccount(ctx, b, rand, info.Name, username, false)
	return err
}
