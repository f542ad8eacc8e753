// Command jitkey-agent is the jitkey agent: it enrols a computer with the
// console, runs the agent, and simulates a login surface for tests and the
// testbed.
//
//	jitkey-agent enroll --token-file FILE|- --state DIR --name NAME [--os linux] [--relay HOST:PORT]
//	jitkey-agent run --state DIR [--sandbox DIR] [--ipc PATH] [--rotation 30s]
//	jitkey-agent surface --ipc PATH --action logon|unlock|elevate|sudo
//	    [--qr-png FILE] [--qr-text FILE] [--pam-service S] [--sandbox DIR] [--hold DURATION]
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/internal/cliflag"
)

const usage = `usage:
  jitkey-agent enroll --token-file FILE|- --state DIR --name NAME [--os linux] [--relay HOST:PORT]
                      (the token as an argument still works, but other users can read it)
  jitkey-agent run --state DIR [--sandbox DIR] [--ipc PATH] [--rotation 30s]
  jitkey-agent surface --ipc PATH --action logon|unlock|elevate|sudo [--qr-png FILE] [--qr-text FILE]
                       [--pam-service S] [--sandbox DIR] [--hold DURATION] [--timeout DURATION]
`

// DefaultIPC is the login-surface socket of a production agent.
const DefaultIPC = "/run/jitkey/agent.sock"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "enroll":
		err = cmdEnroll(ctx, os.Args[2:], log)
	case "run":
		err = cmdRun(ctx, os.Args[2:], log)
	case "surface":
		err = cmdSurface(ctx, os.Args[2:], log)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitkey-agent:", err)
		os.Exit(1)
	}
}

func cmdEnroll(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	state := fs.String("state", "", "state directory (created 0700)")
	name := fs.String("name", "", "device name shown on phones")
	osName := fs.String("os", runtime.GOOS, "operating system reported to the console")
	relay := fs.String("relay", "", "home relay host:port (default: the console's relay)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to try to reach the console")
	tokenFile := fs.String("token-file", "", "read the enrollment token from this file (not group/world readable), - for stdin")
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		return err
	}
	if *state == "" || *name == "" {
		return errors.New("enroll needs --token-file (or TOKEN), --state and --name")
	}
	token, err := readToken(pos, *tokenFile, os.Stdin, os.Stderr)
	if err != nil {
		return err
	}
	e, err := enroll.Enroll(ctx, enroll.Config{
		StateDir: *state, Token: token, Name: *name, OS: *osName, Relay: *relay, Timeout: *timeout, Logger: log,
		Dial: func(id ed25519.PrivateKey, home string, pins [][32]byte) (enroll.Relay, error) {
			return daemon.QUICRelay(id, home, pins, log)
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("enrolled device=%x name=%s tenant=%s relay=%s\n", e.DeviceID[:], e.Name, e.Tenant, e.Relay)
	return nil
}

// maxTokenLen bounds a token read from a file or stdin.
const maxTokenLen = 64 << 10

// readToken returns the enrollment token: from file (which must not be
// readable by group or others), from stdin if file or the single
// positional argument is "-", or from the positional argument, with a
// warning on warn: the token holds a one-time secret, and arguments are
// readable by every local user (/proc/PID/cmdline) while enrollment runs.
func readToken(pos []string, file string, stdin io.Reader, warn io.Writer) (string, error) {
	var r io.Reader
	switch {
	case len(pos) > 1, len(pos) == 1 && file != "":
		return "", errors.New("enroll takes one token: --token-file FILE, --token-file - (stdin) or TOKEN")
	case len(pos) == 0 && file == "":
		return "", errors.New("enroll needs --token-file FILE or --token-file - (stdin)")
	case file == "-", len(pos) == 1 && pos[0] == "-":
		r = stdin
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("token file %s is readable by group or others (mode %04o): chmod 600 it", file, st.Mode().Perm())
		}
		r = f
	default:
		fmt.Fprintln(warn, "jitkey-agent: warning: a token given as an argument is visible to every local user while enrollment runs; use --token-file FILE or --token-file -")
		return pos[0], nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTokenLen+1))
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	if len(b) > maxTokenLen {
		return "", errors.New("read token: longer than 64 KiB")
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("read token: empty")
	}
	return tok, nil
}

func cmdRun(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	state := fs.String("state", "", "state directory")
	sandboxDir := fs.String("sandbox", "", "manage accounts in this sandbox instead of the host (tests, demo)")
	ipc := fs.String("ipc", DefaultIPC, "login-surface socket path")
	rotation := fs.Duration("rotation", 30*time.Second, "login QR rotation (at most 60s)")
	if _, err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *state == "" {
		return errors.New("run needs --state")
	}
	be, maxName, err := backend(ctx, *sandboxDir, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dirOf(*ipc), 0o700); err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Config{
		StateDir: *state, Backend: be, MaxNameLen: maxName, IPCPath: *ipc, Relay: daemon.QUICRelay,
		Rotation: *rotation, Logger: log,
		Ready: func(i daemon.Info) {
			fmt.Printf("ready ipc=%s addr=%s device=%x name=%s\n", i.IPC, i.Addr, i.DeviceID[:], i.Name)
		},
	})
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}
