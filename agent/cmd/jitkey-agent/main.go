// Command jitkey-agent is the jitkey agent: it enrols a computer with the
// console, runs the agent, and simulates a login surface for tests and the
// testbed.
//
//	jitkey-agent enroll --token-file FILE|- --state DIR --name NAME [--os linux] [--relay HOST:PORT] [--domain-joined] [--dc]
//	jitkey-agent run --state DIR [--sandbox DIR] [--ipc PATH] [--rotation 30s] [--provision-accounts] [--domain NETBIOS]
//	jitkey-agent surface --ipc PATH --action logon|unlock|elevate|sudo
//	    [--qr-png FILE] [--qr-text FILE] [--pam-service S] [--sandbox DIR] [--hold DURATION]
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
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
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// Usage of each command, printed after a command-line error.
const (
	enrollUsage = `  jitkey-agent enroll --token-file FILE|- --state DIR --name NAME [--os linux] [--relay HOST:PORT]
                      [--domain-joined] [--dc]
                      (the token as an argument still works, but other users can read it)
`
	runUsage = `  jitkey-agent run --state DIR [--sandbox DIR] [--ipc PATH] [--rotation 30s] [--provision-accounts] [--domain NETBIOS]
                   [--role workstation|dc --ldaps-url URL --ldaps-ca FILE [--ldaps-server-name NAME]
                    --bind-dn DN --bind-password-file FILE --ou DN --admin-group DN
                    [--protected-users DN] [--upn-suffix SUFFIX]]
`
	surfaceUsage = `  jitkey-agent surface --ipc PATH --action logon|unlock|elevate|sudo [--qr-png FILE] [--qr-text FILE]
                       [--pam-service S] [--sandbox DIR] [--hold DURATION] [--timeout DURATION] [--push EMAIL]
                       [--target DEVICE]
`
)

// DefaultIPC is the login-surface socket of a production agent.
const DefaultIPC = "/run/jitkey/agent.sock"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a bad command line: exit 2, the error, then usage.
type usageError struct {
	msg   string
	usage string // the command's usage lines; "" for every command's
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmdUsage, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: cmdUsage}
}

// parseFlags parses a command's flags; a bad one is a usage error.
func parseFlags(fs *flag.FlagSet, args []string, cmdUsage string) ([]string, error) {
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, &usageError{usage: cmdUsage}
	}
	if err != nil {
		return nil, &usageError{msg: err.Error(), usage: cmdUsage}
	}
	return pos, nil
}

// run is main without the process: it runs one command line (without the
// program name) and returns the exit code: 0 done, 1 failed, 2 usage
// error. Logs and errors go to stderr: the agent (run) logs from level
// info, the one-shot commands (enroll, surface) from warn, so that a
// failure reads as one line; JITKEY_AGENT_DEBUG=1 logs everything,
// among it the detail behind a one-sentence error.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	level := slog.LevelWarn
	if len(args) > 0 && args[0] == "run" {
		level = slog.LevelInfo
	}
	if os.Getenv("JITKEY_AGENT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var err error
	switch {
	case len(args) == 0:
		err = usagef("", "no command given")
	case args[0] == "enroll":
		err = cmdEnroll(ctx, args[1:], log)
	case args[0] == "run":
		err = cmdRun(ctx, args[1:], log)
	case args[0] == "surface":
		err = cmdSurface(ctx, args[1:], log)
	case args[0] == "service":
		err = cmdService(ctx, args[1:], log)
	case args[0] == "help", args[0] == "-h", args[0] == "--help":
		err = &usageError{}
	default:
		err = usagef("", "unknown command %q", args[0])
	}
	var ue *usageError
	var pe *client.PinError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		if ue.msg == "" { // help asked for
			fmt.Fprint(stderr, "usage:\n"+orAll(ue.usage))
			return 0
		}
		fmt.Fprintf(stderr, "jitkey-agent: %s\nusage:\n%s", ue.msg, orAll(ue.usage))
		return 2
	case errors.As(err, &pe):
		log.Debug("relay pin mismatch", "err", err)
		fmt.Fprintf(stderr, "jitkey-agent: %s\n", pinSentence(pe))
		return 1
	}
	fmt.Fprintln(stderr, "jitkey-agent:", err)
	return 1
}

// orAll is cmdUsage, or every command's usage if it is "".
func orAll(cmdUsage string) string {
	if cmdUsage == "" {
		return enrollUsage + runUsage + surfaceUsage
	}
	return cmdUsage
}

// pinSentence says that the relay is not the one the agent's enrollment
// token pinned, naming the pin (enroll and run alike: run uses the pins
// of the token it enrolled with).
func pinSentence(pe *client.PinError) string {
	pins := make([]string, len(pe.Want))
	for i, p := range pe.Want {
		pins[i] = hex.EncodeToString(p[:])
	}
	return fmt.Sprintf("the relay at %s does not match the relay pin %s of the enrollment token: check the relay address, or enroll again with a new token from the console",
		pe.Relay, strings.Join(pins, " or "))
}

func cmdEnroll(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	state := fs.String("state", "", "state directory (created 0700)")
	name := fs.String("name", "", "device name shown on phones")
	osName := fs.String("os", runtime.GOOS, "operating system reported to the console")
	relay := fs.String("relay", "", "home relay host:port (default: the console's relay)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to try to reach the console")
	tokenFile := fs.String("token-file", "", "read the enrollment token from this file (not group/world readable), - for stdin")
	joined := fs.Bool("domain-joined", false, "the computer is joined to an Active Directory domain (selective login)")
	isDC := fs.Bool("dc", false, "the computer is a domain controller (run it with --role dc)")
	pos, err := parseFlags(fs, args, enrollUsage)
	if err != nil {
		return err
	}
	if *state == "" || *name == "" {
		return usagef(enrollUsage, "enroll needs --token-file (or TOKEN), --state and --name")
	}
	token, err := readToken(pos, *tokenFile, os.Stdin, os.Stderr)
	if err != nil {
		return err
	}
	if err := protectState(*state); err != nil {
		return err
	}
	if err := checkToken(token, time.Now(), log); err != nil {
		return err
	}
	// A relay whose certificate matches none of the token's pins ends the
	// relay connection for good (relay/client); end the enrollment then
	// too, instead of trying to reach the console until the timeout.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	e, err := enroll.Enroll(ctx, enroll.Config{
		StateDir: *state, Token: token, Name: *name, OS: *osName, Relay: *relay, Timeout: *timeout, Logger: log,
		DomainJoined: *joined || *isDC, DC: *isDC,
		Dial: func(id ed25519.PrivateKey, home string, pins [][32]byte) (enroll.Relay, error) {
			rl, err := daemon.QUICRelay(id, home, pins, log)
			if err != nil {
				return nil, err
			}
			return pinWatch{rl, stop}, nil
		},
	})
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, client.ErrPin) {
		log.Debug("enroll", "err", err)
		return cause
	}
	if err != nil {
		return err
	}
	fmt.Printf("enrolled device=%x name=%s tenant=%s relay=%s\n", e.DeviceID[:], e.Name, e.Tenant, e.Relay)
	return nil
}

// pinWatch is a relay connection that, when Run ends for a pin mismatch,
// cancels the enrollment with that error.
type pinWatch struct {
	daemon.Relay
	cancel context.CancelCauseFunc
}

func (p pinWatch) Run(ctx context.Context) error {
	err := p.Relay.Run(ctx)
	if errors.Is(err, client.ErrPin) {
		p.cancel(err)
	}
	return err
}

// checkToken words what is wrong with a token as one sentence; the
// decoder's detail goes to the debug log.
func checkToken(token string, now time.Time, log *slog.Logger) error {
	_, err := protocol.DecodeEnrollToken(token, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, protocol.ErrExpired):
		log.Debug("enrollment token", "err", err)
		return errors.New("this enrollment token has expired: make a new one with 'jitkey-console token TENANT'")
	case !strings.HasPrefix(strings.TrimSpace(token), "jk-enroll-"):
		log.Debug("enrollment token", "err", err)
		return errors.New("this is not an enrollment token (those start with jk-enroll-): copy the whole token that 'jitkey-console token TENANT' printed")
	}
	log.Debug("enrollment token", "err", err)
	return errors.New("this enrollment token is damaged (cut short or altered): copy the whole token that 'jitkey-console token TENANT' printed again")
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
	ipc := fs.String("ipc", defaultIPC(), "login-surface socket path (Windows: named pipe)")
	rotation := fs.Duration("rotation", 30*time.Second, "login QR rotation (at most 60s)")
	provision := fs.Bool("provision-accounts", false, "create the admitted technicians' accounts, disabled, before their first login (for sshd), and the break-glass account msp-breakglass")
	dcf := domainFlags(fs)
	netbios := fs.String("domain", "", "domain-joined workstation: the domain's NetBIOS name; a domain login's surface gets DOMAIN\\account")
	pos, err := parseFlags(fs, args, runUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(runUsage, "unexpected argument %q: run takes only flags", pos[0])
	}
	if *state == "" {
		return usagef(runUsage, "run needs --state")
	}
	dir, err := dcf.directory()
	if err != nil {
		return usagef(runUsage, "%v", err)
	}
	if err := protectState(*state); err != nil {
		return err
	}
	be, maxName, err := backend(ctx, *sandboxDir, log)
	if err != nil {
		return err
	}
	cfg := daemon.Config{
		StateDir: *state, Backend: be, MaxNameLen: maxName, IPCPath: *ipc, Relay: daemon.PersistentRelay,
		Rotation: *rotation, Logger: log, ProvisionAccounts: *provision, DC: dir, Domain: *netbios,
		Ready: func(i daemon.Info) {
			fmt.Printf("ready ipc=%s addr=%s device=%x name=%s\n", i.IPC, i.Addr, i.DeviceID[:], i.Name)
		},
	}
	if err := platform(&cfg, *sandboxDir, log); err != nil {
		return err
	}
	if cfg.IPCListen == nil {
		if err := os.MkdirAll(dirOf(*ipc), 0o700); err != nil {
			return err
		}
	}
	return daemon.Run(ctx, cfg)
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}
