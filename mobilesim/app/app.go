// Package app holds the phone's flows: pairing with a console (FlowPair),
// QR login (FlowQRLogin), refreshing policies and the device directory
// (FlowSync), listening for the console's pushes (FlowPolicy), and the
// offline codes of SPEC.md 11.6, which need no network (OfflineCode). It is
// the logic of the real app without its screens: callers show what it
// returns and pass in the technician's decisions.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// Dialer opens end-to-end sessions; *channel.Mux implements it.
type Dialer interface {
	Dial(ctx context.Context, d channel.DialConfig) (*channel.Conn, error)
}

// Config configures an App.
type Config struct {
	Wallet *wallet.Wallet
	Gate   biometric.Gate // asked before every use of the approval key
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// Label is the phone model sent when pairing, shown in the console.
	Label string
	// OnUpdate, if set, is called after the console pushed policies or
	// directory to a listening phone (and after each sync).
	OnUpdate func(Update)
}

// App runs the phone's flows on one wallet.
type App struct {
	cfg Config
	log *slog.Logger
}

// New returns an App.
func New(cfg Config) *App {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Label == "" {
		cfg.Label = "jitkey-phone simulator"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{cfg: cfg, log: log}
}

// Errors callers branch on. Wrapped errors carry the detail to show.
var (
	ErrQRExpired      = errors.New("QR code expired")
	ErrQRMalformed    = errors.New("not a valid jitkey QR code")
	ErrWrongKind      = errors.New("wrong kind of QR code")
	ErrOtherOrg       = errors.New("device belongs to another organisation")
	ErrOtherTenant    = errors.New("device of a tenant you may not see")
	ErrPolicyDenied   = errors.New("the policy does not allow this login")
	ErrDeviceRemoved  = errors.New("device removed by the MSP")
	ErrBadPeer        = errors.New("the peer sent something the phone cannot trust")
	ErrNotOffered     = errors.New("account choice not offered by the device")
	ErrUnreachable    = errors.New("peer not reachable")
	ErrConsoleRefused = errors.New("the console refused")
)

// qrError classifies a QR decoding failure with a message for the screen.
func (a *App) decodeQR(text string, want uint8) (protocol.QRPayload, error) {
	now := a.cfg.Now()
	q, err := protocol.DecodeQR(text, now)
	switch {
	case errors.Is(err, protocol.ErrQRStale):
		age := now.Sub(q.Time).Round(time.Second)
		if age < 0 {
			return q, fmt.Errorf("%w: made %s in the future by the phone's clock; check the clocks", ErrQRExpired, -age)
		}
		return q, fmt.Errorf("%w: made %s ago; ask for a fresh code", ErrQRExpired, age)
	case err != nil:
		return q, fmt.Errorf("%w: %v", ErrQRMalformed, err)
	}
	if q.Kind != want {
		if want == protocol.QRLogin {
			return q, fmt.Errorf("%w: this is a pairing code; use pair", ErrWrongKind)
		}
		return q, fmt.Errorf("%w: this is a login code; use scan", ErrWrongKind)
	}
	return q, nil
}

// dialErr turns a dial failure into something a technician understands.
func dialErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, protocol.ErrHandshake) {
		return fmt.Errorf("%w: %s did not answer (code already used, expired, or peer offline): %v", ErrUnreachable, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, what, err)
}
