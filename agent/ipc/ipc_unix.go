//go:build linux || darwin

package ipc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Listen creates the socket at cfg.Path and listens on it. A stale socket
// left by a dead agent is removed; a live one yields ErrInUse.
func Listen(ctx context.Context, cfg Config) (*Listener, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AllowedUIDs == nil {
		cfg.AllowedUIDs = defaultAllowed()
	}
	path := cfg.Path
	if err := prepareDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStale(ctx, path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ipc: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := secureSocket(path); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return &Listener{ln: ln, path: path, allowed: append([]uint32(nil), cfg.AllowedUIDs...), log: cfg.Logger}, nil
}

// prepareDir creates dir with mode dirPerm, or checks that an existing
// dir is a real directory owned by us with that mode. An existing one of
// ours whose mode grants less than dirPerm (0700 where dirPerm is 0711,
// as a umask or an earlier MkdirAll leaves it) is given dirPerm.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("ipc: create socket dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ipc: socket dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.IsDir() && ok && int(st.Uid) == os.Geteuid() && fi.Mode().Perm() != dirPerm && fi.Mode().Perm()&^dirPerm == 0 {
		if err := os.Chmod(dir, dirPerm); err != nil {
			return fmt.Errorf("ipc: chmod socket dir: %w", err)
		}
		fi, err = os.Lstat(dir)
		if err != nil {
			return fmt.Errorf("ipc: socket dir: %w", err)
		}
		st, ok = fi.Sys().(*syscall.Stat_t)
	}
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm() != dirPerm {
		return fmt.Errorf("%w: %s (mode %v)", ErrUnsafeDir, dir, fi.Mode())
	}
	return nil
}

// removeStale removes a socket at path that nobody listens on.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipc: check socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	if c, err := d.DialContext(dctx, "unix", path); err == nil {
		_ = c.Close()
		return fmt.Errorf("%w: %s", ErrInUse, path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("ipc: remove stale socket: %w", err)
	}
	return nil
}

// Dial connects to the agent's socket at path. The returned Conn's Peer is
// the listening process; callers should check its UID (0 for the agent).
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("ipc: dial: %w", err)
	}
	peer, err := peerCredentials(nc.(*net.UnixConn))
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return newConn(nc, peer), nil
}
