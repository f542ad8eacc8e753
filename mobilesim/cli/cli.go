// Package cli is the jitkey-phone command line: it parses commands, runs
// the phone's flows (package app) and prints what the phone's screens
// would show, as text or, with --json, as one JSON object per result.
// cmd/jitkey-phone is a thin main over Env.Run; tests run commands
// in-process the same way.
package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/internal/cliflag"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// Exit codes.
const (
	ExitOK          = 0 // done as the technician decided (a deny is a success)
	ExitError       = 1 // anything else
	ExitUsage       = 2 // bad command line
	ExitRefused     = 3 // the device, the policy or the console refused
	ExitBiometric   = 4 // biometric check failed or cancelled: nothing signed
	ExitQR          = 5 // QR code expired, malformed or of the wrong kind
	ExitUnreachable = 6 // console or device did not answer
)

// LinkConfig is what a Connector needs to put the phone on its relay.
type LinkConfig struct {
	Phone  *wallet.Phone
	Accept func(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error)
	Handle func(ctx context.Context, c *channel.Conn)
	Logger *slog.Logger
}

// Link is a phone's live relay connection.
type Link struct {
	Mux   *channel.Mux
	Close func() // disconnects and waits for the receive loop
	// SealPushTicket, if set, seals a push gateway token to the home
	// relay's push key (SPEC.md 12.6); nil: the relay has no push gateway
	// or the connector cannot seal.
	SealPushTicket func(token []byte, expiry time.Time) ([]byte, error)
}

// Connector connects the phone to its home relay. The binary connects with
// relay/client; tests use channeltest.
type Connector func(ctx context.Context, cfg LinkConfig) (*Link, error)

// Env is what the commands get from outside: main fills it from the real
// world, tests with fakes.
type Env struct {
	Stdin   io.Reader
	Now     func() time.Time // the phone's clock before --clock-offset; nil: time.Now
	Rand    io.Reader        // nil: crypto/rand
	Connect Connector
	Logger  *slog.Logger // nil: discard
	// DefaultState is the state directory when --state is not given.
	DefaultState string
}

// globals are the flags every command accepts.
type globals struct {
	state       string
	json        bool
	clockOffset time.Duration
	timeout     time.Duration
}

// register adds the global flags to fs, with def's values as defaults.
func (g *globals) register(fs *flag.FlagSet, def globals) {
	fs.StringVar(&g.state, "state", def.state, "state directory (the phone's storage)")
	fs.BoolVar(&g.json, "json", def.json, "print JSON for scripts")
	fs.DurationVar(&g.clockOffset, "clock-offset", def.clockOffset, "skew the phone's clock by this much (testbed fault)")
	fs.DurationVar(&g.timeout, "timeout", def.timeout, "give up on a flow after this long")
}

// run holds one command's context.
type run struct {
	env    *Env
	g      globals
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	log    *slog.Logger
	// in reads Env.Stdin for every prompt (see stdin).
	in *bufio.Reader
}

type command struct {
	name  string
	usage string
	flags func(r *run, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

var commands = []command{
	{"init", "init --state DIR --relay HOST:PORT --relay-pin HEX [--biometric ok|fail|cancel]", (*run).cmdInit},
	{"pair", "pair [--image FILE.png] [PAYLOAD] [--biometric ok|fail|cancel]", (*run).cmdPair},
	{"orgs", "orgs", (*run).cmdOrgs},
	{"use", "use ORG", (*run).cmdUse},
	{"devices", "devices [SEARCH]", (*run).cmdDevices},
	{"decode", "decode [--image FILE.png] [PAYLOAD]", (*run).cmdDecode},
	{"scan", "scan [--image FILE.png] [PAYLOAD] [--approve|--deny] [--account domain|local] [--biometric ok|fail|cancel] [--skip-policy-check]", (*run).cmdScan},
	{"sync", "sync", (*run).cmdSync},
	{"listen", "listen [--for DURATION] [--pick N | --report | --deny] [--approve] [--once] [--wake-token T [--wake-gateway HOST:PORT]]", (*run).cmdListen},
	{"otp", "otp DEVICE", (*run).cmdOTP},
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// Run runs one command line (without the program name) and returns the
// exit code. Global flags (--state, --json, --clock-offset, --timeout) may
// come before or after the command name.
func (e *Env) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	r := &run{env: e, stdout: stdout, stderr: stderr, log: e.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	pre := flag.NewFlagSet("jitkey-phone", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	r.g.register(pre, globals{state: e.DefaultState, timeout: 20 * time.Second})
	if err := cliflag.Explain(pre, pre.Parse(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			r.printUsage(stderr)
			return ExitOK
		}
		return r.usage(usagef("%v", err), "")
	}
	rest := pre.Args()
	if len(rest) == 0 {
		return r.usage(usagef("no command given"), "")
	}
	if rest[0] == "help" || rest[0] == "-h" {
		r.printUsage(stderr)
		return ExitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == rest[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		return r.usage(usagef("unknown command %q", rest[0]), "")
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	var g globals
	g.register(fs, r.g)
	body := cmd.flags(r, fs)
	pos, err := cliflag.Parse(fs, rest[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "usage: jitkey-phone %s\n", cmd.usage)
		return ExitOK
	}
	if err != nil {
		return r.usage(usagef("%v", err), cmd.usage)
	}
	r.g = g
	base := e.Now
	if base == nil {
		base = time.Now
	}
	off := r.g.clockOffset
	r.now = func() time.Time { return base().Add(off) }
	if r.g.state == "" && cmd.name != "decode" {
		return r.fail(usagef("no state directory: pass --state DIR"))
	}
	if err := body(ctx, pos); err != nil {
		return r.fail(err)
	}
	return ExitOK
}

// usage reports a bad command line: the error on one line, then the
// command's usage (cmdUsage), or every command's if there is none.
func (r *run) usage(err error, cmdUsage string) int {
	code := r.fail(err)
	if r.g.json {
		return code
	}
	if cmdUsage != "" {
		fmt.Fprintf(r.stderr, "usage: jitkey-phone %s\n", cmdUsage)
	} else {
		r.printUsage(r.stderr)
	}
	return code
}

func (r *run) printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: jitkey-phone [--state DIR] [--json] [--clock-offset D] [--timeout D] COMMAND ...")
	for _, c := range commands {
		fmt.Fprintln(w, "  "+c.usage)
	}
}

// classify maps an error to its JSON kind and exit code.
func classify(err error) (kind string, code int) {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return "usage", ExitUsage
	case errors.Is(err, wallet.ErrNotInitialised):
		return "not-initialised", ExitError
	case errors.Is(err, wallet.ErrExists):
		return "already-initialised", ExitError
	case errors.Is(err, wallet.ErrNoOrg):
		return "no-org", ExitError
	case errors.Is(err, wallet.ErrUnknownOrg):
		return "unknown-org", ExitError
	case errors.Is(err, app.ErrQRExpired):
		return "qr-expired", ExitQR
	case errors.Is(err, app.ErrQRMalformed), errors.Is(err, errNoCode):
		return "qr-malformed", ExitQR
	case errors.Is(err, app.ErrWrongKind):
		return "qr-wrong-kind", ExitQR
	case errors.Is(err, app.ErrOtherOrg):
		return "other-org", ExitRefused
	case errors.Is(err, app.ErrOtherTenant):
		return "other-tenant", ExitRefused
	case errors.Is(err, app.ErrDeviceRemoved):
		return "device-removed", ExitRefused
	case errors.Is(err, app.ErrPolicyDenied):
		return "policy-denied", ExitRefused
	case errors.Is(err, errJustification):
		return "justification-missing", ExitRefused
	case errors.Is(err, app.ErrConsoleRefused):
		return "console-refused", ExitRefused
	case errors.Is(err, app.ErrBadPeer):
		return "untrusted-peer", ExitRefused
	case errors.Is(err, app.ErrNotOffered):
		return "not-offered", ExitUsage
	case errors.Is(err, biometric.ErrBiometricFailed):
		return "biometric-failed", ExitBiometric
	case errors.Is(err, biometric.ErrBiometricCancelled):
		return "biometric-cancelled", ExitBiometric
	case errors.Is(err, client.ErrPin):
		return "relay-pin-mismatch", ExitUnreachable
	case errors.Is(err, app.ErrUnreachable):
		return "unreachable", ExitUnreachable
	case errors.Is(err, app.ErrUnknownDevice):
		return "unknown-device", ExitError
	case errors.Is(err, app.ErrNoOfflineKey):
		return "no-offline-key", ExitRefused
	case errors.Is(err, errNotImplemented):
		return "not-implemented", ExitError
	}
	return "error", ExitError
}

// fail reports err and returns its exit code.
func (r *run) fail(err error) int {
	var se *silentExit
	if errors.As(err, &se) {
		return se.code
	}
	kind, code := classify(err)
	msg := strings.TrimPrefix(err.Error(), "wallet: ")
	var s *said
	var pe *client.PinError
	switch {
	case errors.As(err, &s):
		msg = s.msg
	case errors.As(err, &pe): // a peer's relay (scan, pair) with a key the phone does not pin
		msg = pinSentence(pe)
	}
	r.log.Debug("error detail", "kind", kind, "chain", chain(err))
	fmt.Fprintf(r.stderr, "jitkey-phone: %s\n", msg)
	if r.g.json {
		out := map[string]any{"error": msg, "kind": kind, "exit": code}
		var sh *shownError
		if errors.As(err, &sh) {
			out["request"] = requestOf(sh.req)
		}
		r.emit(out)
	}
	return code
}

// emit prints one JSON object on a line.
func (r *run) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(r.stderr, "jitkey-phone: encode json: %v\n", err)
		return
	}
	r.stdout.Write(append(b, '\n'))
}

func (r *run) printf(format string, a ...any) {
	if !r.g.json {
		fmt.Fprintf(r.stdout, format, a...)
	}
}

func (r *run) rand() io.Reader {
	if r.env.Rand != nil {
		return r.env.Rand
	}
	return rand.Reader
}

func (r *run) openWallet() (*wallet.Wallet, error) { return wallet.Open(r.g.state) }

// newApp opens the wallet and builds the app with gate.
func (r *run) newApp(gate biometric.Gate, onUpdate func(app.Update), edit ...func(*app.Config)) (*wallet.Wallet, *app.App, error) {
	w, err := r.openWallet()
	if err != nil {
		return nil, nil, err
	}
	if gate == nil {
		gate = &biometric.Fixed{Err: biometric.ErrBiometricCancelled}
	}
	cfg := app.Config{Wallet: w, Gate: gate, Now: r.now, Rand: r.rand(), Logger: r.log, OnUpdate: onUpdate}
	for _, f := range edit {
		f(&cfg)
	}
	a := app.New(cfg)
	return w, a, nil
}

// online builds the app with gate and puts the phone on its relay, both
// within --timeout; done closes the link and ends the timeout.
func (r *run) online(ctx context.Context, gate biometric.Gate) (_ context.Context, _ *wallet.Wallet, _ *app.App, _ *Link, done func(), _ error) {
	w, a, err := r.newApp(gate, nil)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.g.timeout)
	l, err := r.connect(ctx, w, a)
	if err != nil {
		cancel()
		return nil, nil, nil, nil, nil, err
	}
	return ctx, w, a, l, func() { l.Close(); cancel() }, nil
}

// connect puts the phone on its relay, serving a's listening hooks.
func (r *run) connect(ctx context.Context, w *wallet.Wallet, a *app.App) (*Link, error) {
	if r.env.Connect == nil {
		return nil, errors.New("no relay connector configured")
	}
	relay := w.Phone().Relay
	l, err := r.env.Connect(ctx, LinkConfig{Phone: w.Phone(), Accept: a.Accept, Handle: a.Handle, Logger: r.log})
	var pe *client.PinError
	switch {
	case err == nil:
		return l, nil
	case errors.As(err, &pe):
		return nil, &said{msg: pinSentence(pe), err: fmt.Errorf("%w: %w", app.ErrUnreachable, err)}
	case errors.Is(err, context.DeadlineExceeded):
		return nil, &said{msg: fmt.Sprintf("could not reach the relay %s within %s: it is down or unreachable from here, or the phone's relay address is wrong", relay, r.g.timeout),
			err: fmt.Errorf("%w: %w", app.ErrUnreachable, err)}
	}
	return nil, &said{msg: fmt.Sprintf("could not reach the relay %s: %v", relay, err), err: fmt.Errorf("%w: %w", app.ErrUnreachable, err)}
}

var errNotImplemented = errors.New("not implemented yet")
