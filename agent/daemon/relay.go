package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

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

// DefaultRelayRetry is the default Config.RelayRetry.
const DefaultRelayRetry = time.Second

// socketError reports whether err is the failure of a network socket
// (opening, binding or configuring it): no UDP on this computer, a
// firewall's or an emulator's refusal. Such a failure may heal (a
// network that comes up, a policy that changes), unlike a bad
// configuration.
func socketError(err error) bool {
	var op *net.OpError
	var sys *os.SyscallError
	return errors.As(err, &op) || errors.As(err, &sys)
}

// lateRelay is the agent's relay while its transport cannot be built (a
// socket error): the agent serves its login surfaces and offline codes
// meanwhile, reports itself offline, and its Run builds the transport
// again with back-off until it succeeds, then runs it. Sends before that
// fail; Recv waits.
type lateRelay struct {
	build func() (Relay, error)
	addr  protocol.PeerAddr
	log   *slog.Logger
	retry time.Duration // first delay; doubles up to 64 times it

	ready chan struct{} // closed once rl is set
	mu    sync.Mutex
	rl    Relay
	err   error // the last build error
}

func newLateRelay(build func() (Relay, error), addr protocol.PeerAddr, first error, retry time.Duration, log *slog.Logger) *lateRelay {
	return &lateRelay{build: build, addr: addr, log: log, retry: retry, ready: make(chan struct{}), err: first}
}

// relay returns the built relay, or nil and the last build error.
func (l *lateRelay) relay() (Relay, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rl, l.err
}

func (l *lateRelay) Addr() protocol.PeerAddr { return l.addr }

func (l *lateRelay) Send(ctx context.Context, to protocol.PeerAddr, payload []byte) error {
	rl, err := l.relay()
	if rl == nil {
		return fmt.Errorf("daemon: relay: no transport: %w", err)
	}
	return rl.Send(ctx, to, payload)
}

// SendWake is channel.Waker's: the built relay's SendWake, or Send.
func (l *lateRelay) SendWake(ctx context.Context, to protocol.PeerAddr, ticket, payload []byte) error {
	rl, err := l.relay()
	if rl == nil {
		return fmt.Errorf("daemon: relay: no transport: %w", err)
	}
	if w, ok := rl.(channel.Waker); ok {
		return w.SendWake(ctx, to, ticket, payload)
	}
	return rl.Send(ctx, to, payload)
}

func (l *lateRelay) Recv(ctx context.Context) (protocol.PeerAddr, []byte, error) {
	select {
	case <-l.ready:
	case <-ctx.Done():
		return protocol.PeerAddr{}, nil, ctx.Err()
	}
	rl, _ := l.relay()
	return rl.Recv(ctx)
}

// Online is false until the transport is built; then the built relay's.
func (l *lateRelay) Online() (bool, <-chan struct{}) {
	rl, _ := l.relay()
	if rl == nil {
		return false, l.ready
	}
	if o, ok := rl.(interface {
		Online() (bool, <-chan struct{})
	}); ok {
		return o.Online()
	}
	return true, nil
}

// Run builds the transport again, with back-off, until it succeeds or
// ctx ends, then runs it.
func (l *lateRelay) Run(ctx context.Context) error {
	delay := l.retry
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		rl, err := l.build()
		if err == nil {
			l.mu.Lock()
			l.rl, l.err = rl, nil
			l.mu.Unlock()
			close(l.ready)
			l.log.Info("relay transport started: connecting to the relay")
			return rl.Run(ctx)
		}
		l.mu.Lock()
		same := l.err != nil && l.err.Error() == err.Error()
		l.err = err
		l.mu.Unlock()
		if same {
			l.log.Debug("relay transport still cannot start; retrying", "err", err, "in", delay)
		} else {
			l.log.Error("relay transport cannot start; offline codes only; retrying", "err", err)
		}
		delay = min(2*delay, 64*l.retry)
	}
}
