package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// cmdServe stays online on the home relay. It prints "addr=<address>" at
// once, "web=<origin>" when --web serves the web console, and "ready" when
// the relay connection is up, on stdout; logs go to stderr.
func cmdServe(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("serve", env)
	poll := fs.Duration("poll", 500*time.Millisecond, "how often to look for new policy versions")
	retry := fs.Duration("retry", 5*time.Second, "first delay before pushing again to an unreachable peer")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	wf := webFlags(fs)
	if _, err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	if err := wf.check(); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usagef("--log-level %q must be debug, info, warn or error", *level)
	}
	if *poll < 10*time.Millisecond || *retry < 10*time.Millisecond {
		return usagef("--poll and --retry must be at least 10ms")
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lv}))
	con, done, err := c.open(ctx, true, log)
	if err != nil {
		return err
	}
	defer done()
	set := con.Settings()
	rc, err := client.New(client.Config{Identity: con.Peer().Identity, Home: set.Relay, Pins: set.RelayPins, Logger: log.With("part", "relay")})
	if err != nil {
		return fmt.Errorf("relay client: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan struct{})
	relayErr := make(chan error, 1)
	go func() {
		defer close(runDone)
		if err := rc.Run(ctx); err != nil && ctx.Err() == nil {
			if !errors.Is(err, client.ErrPin) { // reported as the command's error
				log.Error("relay client stopped", "err", err)
			}
			relayErr <- err
			cancel()
		}
	}()
	defer func() { cancel(); rc.Close(); <-runDone }()

	fmt.Fprintf(env.Stdout, "addr=%s\n", con.Addr())
	go func() {
		if err := rc.WaitConnected(ctx); err == nil {
			log.Info("connected to relay", "relay", set.Relay)
			fmt.Fprintf(env.Stdout, "ready\n")
		}
	}()
	signIns, err := wf.start(ctx, env, con, log)
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		Console: con, Relay: rc, PollInterval: *poll, RetryInterval: *retry, Logger: log, SignIn: signIns,
		Recv: func(ctx context.Context) (protocol.PeerAddr, []byte, error) {
			m, err := rc.Recv(ctx)
			return m.From, m.Payload, err
		},
	})
	log.Info("console serving", "addr", con.Addr().String(), "org", set.Org)
	err = srv.Run(ctx)
	select {
	case rerr := <-relayErr:
		return fmt.Errorf("relay client: %w", rerr)
	default:
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}
