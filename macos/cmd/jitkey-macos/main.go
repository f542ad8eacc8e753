// Command jitkey-macos is the macOS helper the package's scripts and its
// periodic launchd job run, as root:
//
//	jitkey-macos authdb install   put jitkey's mechanisms into the rights (saves the originals)
//	jitkey-macos authdb repair    the same, run at boot and every 5 minutes by
//	                              com.jitkey.authdb-repair: puts back what an OS update reset
//	jitkey-macos authdb check     print each right's state; exit 1 if one lacks jitkey
//	jitkey-macos authdb restore   write the saved originals back (uninstall)
//	jitkey-macos keychain init    create the agent's vault key in the System keychain
//
// Flags: --state DIR (where the original rights are kept; default
// /Library/Application Support/jitkey/authdb), --login-only (manage
// system.login.console only, not the admin prompts).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jitkey/jitkey/internal/cliflag"
	"github.com/jitkey/jitkey/macos/authdb"
	"github.com/jitkey/jitkey/macos/command"
	"github.com/jitkey/jitkey/macos/keychain"
)

const usage = `usage: jitkey-macos authdb install|repair|check|restore [--state DIR] [--login-only]
       jitkey-macos keychain init
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	os.Exit(run(ctx, os.Args[1:], command.Exec{}, os.Stdout, log))
}

// run carries out one command line with runner and returns the exit code.
func run(ctx context.Context, args []string, runner command.Runner, stdout io.Writer, log *slog.Logger) int {
	fs := flag.NewFlagSet("jitkey-macos", flag.ContinueOnError)
	state := fs.String("state", authdb.DefaultStateDir, "directory of the saved original rights")
	loginOnly := fs.Bool("login-only", false, "manage system.login.console only")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil || len(pos) != 2 {
		if err != nil {
			log.Error(err.Error())
		}
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	if pos[0] == "keychain" && pos[1] == "init" {
		if _, err := keychain.Open(ctx, keychain.Config{Runner: runner}); err != nil {
			log.Error("keychain init failed", "err", err)
			return 1
		}
		fmt.Fprintln(stdout, "vault key ready in the System keychain")
		return 0
	}
	if pos[0] != "authdb" {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cfg := authdb.Config{Runner: runner, StateDir: *state, Logger: log}
	if *loginOnly {
		cfg.Rights = authdb.DefaultRights()[:1]
	}
	m, err := authdb.New(cfg)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	switch pos[1] {
	case "install", "repair":
		changed, err := m.Install(ctx)
		for _, r := range changed {
			fmt.Fprintf(stdout, "%s: jitkey installed\n", r)
		}
		if err != nil {
			log.Error("authorization database not fully set", "err", err)
			return 1
		}
		return 0
	case "check":
		st, err := m.Check(ctx)
		if err != nil {
			log.Error("check failed", "err", err)
			return 1
		}
		code := 0
		for _, s := range st {
			state := "jitkey installed"
			if !s.Installed {
				state, code = "WITHOUT jitkey (reset by an OS update? run: jitkey-macos authdb repair)", 1
			}
			fmt.Fprintf(stdout, "%s: %s\n", s.Right, state)
		}
		return code
	case "restore":
		if err := m.Restore(ctx); err != nil {
			log.Error("restore failed", "err", err)
			return 1
		}
		fmt.Fprintln(stdout, "authorization rights restored")
		return 0
	}
	fmt.Fprint(os.Stderr, usage)
	return 2
}
