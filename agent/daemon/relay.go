package daemon

import (
	"context"
	"crypto/ed25519"
	"log/slog"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// Relay is the agent's connection to its home relay.
type Relay interface {
	channel.Relay
	// Recv returns the next payload and its sender.
	Recv(ctx context.Context) (protocol.PeerAddr, []byte, error)
	// Run keeps the connection up (reconnecting) until ctx ends.
	Run(ctx context.Context) error
}

// RelayFactory builds the relay connection for an identity key, a home
// relay and the accepted relay pins.
type RelayFactory func(identity ed25519.PrivateKey, home string, pins [][32]byte, log *slog.Logger) (Relay, error)

// QUICRelay is the RelayFactory of the real relay client (package
// relay/client): QUIC, pinned certificate, reconnect with back-off.
// A home relay whose certificate matches no pin ends Run with
// client.ErrPin (enrollment reports it at once).
func QUICRelay(identity ed25519.PrivateKey, home string, pins [][32]byte, log *slog.Logger) (Relay, error) {
	return quicRelayWith(client.Config{Identity: identity, Home: home, Pins: pins, Logger: log})
}

// PersistentRelay is QUICRelay for `jitkey-agent run`: a relay whose
// certificate matches no pin is retried with back-off and logged, so the
// agent keeps serving its login surfaces and offline codes.
func PersistentRelay(identity ed25519.PrivateKey, home string, pins [][32]byte, log *slog.Logger) (Relay, error) {
	return quicRelayWith(client.Config{Identity: identity, Home: home, Pins: pins, Logger: log, RetryPin: true})
}

func quicRelayWith(cfg client.Config) (Relay, error) {
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	return quicRelay{c}, nil
}

type quicRelay struct{ *client.Client }

func (r quicRelay) Recv(ctx context.Context) (protocol.PeerAddr, []byte, error) {
	m, err := r.Client.Recv(ctx)
	return m.From, m.Payload, err
}

func (r quicRelay) Run(ctx context.Context) error {
	err := r.Client.Run(ctx)
	r.Client.Close()
	return err
}
