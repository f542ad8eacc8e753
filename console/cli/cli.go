// Package cli is the jitkey-console command line: it parses a command's
// flags, opens the state directory, calls package console and prints the
// result. Run returns the exit code: 0 success, 1 refused or failed (the
// reason is printed on stderr), 2 usage error.
//
// Commands (every one takes --state DIR and --passphrase-file FILE):
//
//	init --relay HOST:PORT --relay-pin HEX [--relay-pin HEX] [--org NAME]
//	tenant add NAME [settings]      tenant set NAME settings
//	tenant list                     tenant show NAME
//	tech add USERNAME --email ADDR (--global-admin | --role TENANT=admin|read-only ...)
//	tech list | tech remove USERNAME | tech revoke USERNAME
//	pair USERNAME [--png FILE]
//	token TENANT [--expires 24h] [--uses 1]      tokens
//	devices [--tenant T] [--all]   devices remove DEVICE [--tenant T]
//	share DEVICE [--add ENTRY ...] [--remove ENTRY ...] [--reset]
//	policy show TENANT
//	audit [--tenant T] [--tech U] [--device D] [--since 24h|2006-01-02|RFC3339] [--json]
//	breakglass show DEVICE [--as NAME]
//	serve [--poll 500ms] [--log-level info] [--web HOST:PORT [--web-cert F --web-key F] [--web-origin URL]]
package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/authority"
	"github.com/jitkey/jitkey/internal/cliflag"
	"github.com/jitkey/jitkey/relay/client"
)

// Env is what a command may use of its surroundings.
type Env struct {
	Stdout, Stderr io.Writer
	// DefaultState is the state directory when --state is not given (main
	// takes it from $JITKEY_CONSOLE_STATE).
	DefaultState string
	Now          func() time.Time
	Rand         io.Reader
	// Admin names who runs the command (main: the operating-system
	// user), recorded with every reveal of a break-glass recovery code;
	// --as overrides it.
	Admin string
	// ScryptLogN is the cost of sealing msp.key at init; 0 takes the
	// default (2^15). Tests lower it.
	ScryptLogN int
}

// usageError is a bad command line; cmd, if known, selects the usage
// lines printed after it.
type usageError struct{ msg, cmd string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

const usage = `usage: jitkey-console COMMAND [flags]

  init --relay HOST:PORT --relay-pin HEX [--org NAME]   create the state directory
  tenant add|set|list|show                               customer tenants
  tech add|list|remove|revoke                            technicians
  pair USERNAME [--png FILE]                             pairing QR for a phone
  token TENANT [--expires 24h] [--uses 1]                agent enrollment token
  tokens                                                 list enrollment tokens
  devices [--tenant T] [--all]                           enrolled devices (--all: removed ones too)
  devices remove DEVICE [--tenant T]                     remove a stolen or retired computer
  share DEVICE [--add E] [--remove E] [--reset]          device share list
  policy show TENANT                                     latest signed policy
  audit [--tenant T] [--tech U] [--device D] [--since S] [--json]
  breakglass show DEVICE [--as NAME]                     reveal a device's recovery code (recorded)
  serve [--web HOST:PORT]                                stay online on the relay (--web: web console)

Every command takes --state DIR (default $JITKEY_CONSOLE_STATE) and
--passphrase-file FILE (when msp.key is passphrase-protected).
`

// Run runs one command with its arguments (without the program name).
func Run(ctx context.Context, args []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	err := run(ctx, args, &env)
	var ue *usageError
	var ref *console.Refusal
	var pe *client.PinError
	if errors.As(err, &ue) && ue.cmd == "" && len(args) > 0 {
		ue.cmd = args[0]
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(env.Stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "jitkey-console: %s\n", ue.msg)
		fmt.Fprint(env.Stderr, usageOf(ue.cmd))
		return 2
	case errors.As(err, &pe):
		fmt.Fprintf(env.Stderr, "jitkey-console: %s\n", pinSentence(pe))
		return 1
	case errors.As(err, &ref):
		fmt.Fprintf(env.Stderr, "jitkey-console: refused: %s\n", ref.Reason)
		return 1
	case errors.Is(err, console.ErrLocked):
		fmt.Fprintf(env.Stderr, "jitkey-console: refused: this change is signed with the MSP key, which is passphrase-protected: give --passphrase-file\n")
		return 1
	case errors.Is(err, authority.ErrNeedPass), errors.Is(err, authority.ErrPassphrase):
		fmt.Fprintf(env.Stderr, "jitkey-console: refused: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stderr, "jitkey-console: error: %v\n", err)
	return 1
}

// usageOf is the short usage after a bad command line: the lines of the
// usage table for cmd, or the table's commands if cmd has none.
func usageOf(cmd string) string {
	var b strings.Builder
	for _, l := range strings.Split(usage, "\n") {
		f := strings.Fields(l)
		if strings.HasPrefix(l, "  ") && len(f) > 0 && f[0] == cmd {
			synopsis, _, _ := strings.Cut(strings.TrimSpace(l), "   ") // before the description
			b.WriteString("usage: jitkey-console " + synopsis + "\n")
		}
	}
	if b.Len() == 0 {
		return usage
	}
	return b.String() + "run 'jitkey-console help' for every command\n"
}

// pinSentence says that the relay is not the one the console was set up
// with, naming the pins it expected.
func pinSentence(pe *client.PinError) string {
	pins := make([]string, len(pe.Want))
	for i, p := range pe.Want {
		pins[i] = hex.EncodeToString(p[:])
	}
	return fmt.Sprintf("the relay at %s does not match the relay pin %s given to init: check the relay address and the relay's current pin",
		pe.Relay, strings.Join(pins, " or "))
}

func run(ctx context.Context, args []string, env *Env) error {
	if len(args) == 0 {
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	sub := func() (string, []string, error) {
		if len(rest) == 0 {
			return "", nil, usagef("%s needs a subcommand", cmd)
		}
		return rest[0], rest[1:], nil
	}
	switch cmd {
	case "help", "-h", "--help":
		return flag.ErrHelp
	case "init":
		return cmdInit(ctx, env, rest)
	case "tenant":
		s, r, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "add":
			return cmdTenantAdd(ctx, env, r, false)
		case "set":
			return cmdTenantAdd(ctx, env, r, true)
		case "list":
			return cmdTenantList(ctx, env, r)
		case "show":
			return cmdTenantShow(ctx, env, r)
		}
		return usagef("unknown tenant subcommand %q (add, set, list, show)", s)
	case "tech":
		s, r, err := sub()
		if err != nil {
			return err
		}
		switch s {
		case "add":
			return cmdTechAdd(ctx, env, r)
		case "list":
			return cmdTechList(ctx, env, r)
		case "remove", "revoke":
			return cmdTechRevoke(ctx, env, r, s == "remove")
		}
		return usagef("unknown tech subcommand %q (add, list, remove, revoke)", s)
	case "pair":
		return cmdPair(ctx, env, rest)
	case "token":
		return cmdToken(ctx, env, rest)
	case "tokens":
		return cmdTokens(ctx, env, rest)
	case "devices":
		return cmdDevices(ctx, env, rest)
	case "share":
		return cmdShare(ctx, env, rest)
	case "policy":
		s, r, err := sub()
		if err != nil {
			return err
		}
		if s != "show" {
			return usagef("unknown policy subcommand %q (show)", s)
		}
		return cmdPolicyShow(ctx, env, r)
	case "audit":
		return cmdAudit(ctx, env, rest)
	case "breakglass":
		s, r, err := sub()
		if err != nil {
			return err
		}
		if s != "show" {
			return usagef("unknown breakglass subcommand %q (show)", s)
		}
		return cmdBreakGlassShow(ctx, env, r)
	case "serve":
		return cmdServe(ctx, env, rest)
	}
	return usagef("unknown command %q", cmd)
}

// common are the flags of every command, with the command's flag set and
// environment.
type common struct {
	fs       *flag.FlagSet
	env      *Env
	state    string
	passFile string
}

func newFlags(name string, env *Env) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &common{fs: fs, env: env}
	fs.StringVar(&c.state, "state", env.DefaultState, "state directory")
	fs.StringVar(&c.passFile, "passphrase-file", "", "file holding the MSP key passphrase")
	return fs, c
}

// parse parses flags anywhere among the arguments and returns the
// positional ones, checking their number.
func parse(fs *flag.FlagSet, args []string, npos int, what string) ([]string, error) {
	pos, err := cliflag.Parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%s: %v", fs.Name(), err)
	}
	if len(pos) != npos {
		if npos == 0 {
			return nil, usagef("%s takes no arguments, got %q", fs.Name(), strings.Join(pos, " "))
		}
		return nil, usagef("usage: jitkey-console %s %s", fs.Name(), what)
	}
	return pos, nil
}

func (c *common) passphrase() ([]byte, error) {
	if c.passFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.passFile)
	if err != nil {
		return nil, &console.Refusal{Reason: fmt.Sprintf("passphrase file: %v", err)}
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, &console.Refusal{Reason: "passphrase file is empty"}
	}
	return b, nil
}

// What a command does with the console, for withConsole and use: a
// command that signs a policy needs the MSP key.
const (
	readOnly = false
	signs    = true
)

// withConsole is the shape of a command that reads or changes the
// console: it parses args (npos positional arguments, what describes them
// in the usage error), opens the console (sign: with the MSP key, for a
// command that signs a policy) and calls f with it and the positional
// arguments, closing the console when f returns.
func (c *common) withConsole(ctx context.Context, args []string, npos int, what string, sign bool, f func(con *console.Console, pos []string) error) error {
	pos, err := parse(c.fs, args, npos, what)
	if err != nil {
		return err
	}
	return c.use(ctx, sign, func(con *console.Console) error { return f(con, pos) })
}

// use opens the console (sign: with the MSP key) and calls f with it,
// closing the console when f returns; for a command that checks its
// flags between parsing them and opening the console.
func (c *common) use(ctx context.Context, sign bool, f func(con *console.Console) error) error {
	con, done, err := c.open(ctx, sign, nil)
	if err != nil {
		return err
	}
	defer done()
	return f(con)
}

// open opens the console; sign loads the MSP key too; log nil logs
// warnings and errors to stderr.
func (c *common) open(ctx context.Context, sign bool, log *slog.Logger) (*console.Console, func(), error) {
	env := c.env
	if c.state == "" {
		return nil, nil, usagef("no state directory: give --state DIR or set JITKEY_CONSOLE_STATE")
	}
	db, peer, err := console.Open(ctx, c.state)
	if err != nil {
		return nil, nil, err
	}
	var auth *authority.Authority
	if sign {
		pass, err := c.passphrase()
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		if auth, err = authority.LoadAuthority(c.state, pass); err != nil {
			db.Close()
			return nil, nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	con, err := console.New(ctx, console.Config{DB: db, Peer: peer, Authority: auth, Now: env.Now, Rand: env.Rand, Logger: log})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return con, func() { db.Close() }, nil
}
