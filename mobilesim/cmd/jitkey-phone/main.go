// Command jitkey-phone is the technician's phone app as a command-line
// simulator. Its state directory is the phone's storage; see package
// mobilesim/cli for the commands.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jitkey/jitkey/mobilesim/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	if os.Getenv("JITKEY_PHONE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	env := &cli.Env{
		Stdin:        os.Stdin,
		Connect:      cli.RelayConnect,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		DefaultState: os.Getenv("JITKEY_PHONE_STATE"),
	}
	code := env.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
