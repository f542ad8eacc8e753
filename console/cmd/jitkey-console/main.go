// Command jitkey-console is the MSP authority: tenants, technicians,
// enrollment, pairing, signed policy and audit. See package console/cli
// for the commands; `jitkey-console help` prints them.
package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/signal"
	"os/user"
	"syscall"
	"time"

	"github.com/jitkey/jitkey/console/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdout: os.Stdout, Stderr: os.Stderr, DefaultState: os.Getenv("JITKEY_CONSOLE_STATE"),
		Now: time.Now, Rand: rand.Reader, Admin: admin(),
	})
	stop()
	os.Exit(code)
}

// admin names the person running the command for the console's records
// of break-glass reveals: the operating-system user, with $SUDO_USER
// when run through sudo.
func admin() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if s := os.Getenv("SUDO_USER"); s != "" {
		name = s + " (via sudo as " + name + ")"
	}
	return name
}
