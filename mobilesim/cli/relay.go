package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// RelayConnect connects the phone to its home relay with relay/client
// (pinned certificate, identity-key authentication) and starts the
// end-to-end session mux on it. It returns once the relay connection is up
// or ctx ends.
func RelayConnect(ctx context.Context, cfg LinkConfig) (*Link, error) {
	rc, err := client.New(client.Config{
		Identity: cfg.Phone.Identity(),
		Home:     cfg.Phone.Relay,
		Pins:     cfg.Phone.Pins(),
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- rc.Run(runCtx) }()
	if err := rc.WaitConnected(ctx); err != nil {
		cancel()
		rc.Close()
		<-runDone
		return nil, fmt.Errorf("connect to relay (check --relay and --relay-pin): %w", err)
	}
	mux := channel.New(channel.Config{Relay: rc, Static: cfg.Phone.Noise(), Accept: cfg.Accept, Handle: cfg.Handle, Logger: cfg.Logger})
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		err := mux.Pump(runCtx, func(ctx context.Context) (protocol.PeerAddr, []byte, error) {
			m, err := rc.Recv(ctx)
			return m.From, m.Payload, err
		})
		if err != nil && !errors.Is(err, context.Canceled) && cfg.Logger != nil {
			cfg.Logger.Warn("relay receive ended", "err", err)
		}
	}()
	return &Link{Mux: mux, Close: func() {
		cancel()
		<-pumpDone
		rc.Close()
		<-runDone
	}, SealPushTicket: rc.SealPushTicket}, nil
}
