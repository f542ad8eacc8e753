// Package app holds the phone's flows: pairing with a console (FlowPair),
// QR login (FlowQRLogin), refreshing policies and the device directory
// (FlowSync), listening for the console's pushes (FlowPolicy) and for push
// logins from agents (FlowPush), and the
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
	// OnPush, if set, makes a listening phone take push logins (SPEC.md
	// 11.5) from the devices of its directory: it shows the prompt and
	// returns the technician's answer. OnPushDone, if set, is told how
	// each push login ended.
	OnPush     func(ctx context.Context, p *PushPrompt) (PushAnswer, error)
	OnPushDone func(*PushOutcome, error)
	// OnCoApproval, if set, makes a listening phone answer requests for
	// its second approval of another technician's login (SPEC.md 11.14):
	// true approves, false denies. The outcome goes to OnPushDone.
	OnCoApproval func(ctx context.Context, p *CoPrompt) (bool, error)
	// PushTicket, if set, returns the phone's sealed push ticket (SPEC.md
	// 12.6), sent to agents in LoginHello so they can wake the phone.
	PushTicket func() []byte
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
	ErrQRExpired      = errors.New("this code has expired")
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

// decodeQR decodes a scanned code of kind want; its errors are sentences
// for the screen that say what to do.
func (a *App) decodeQR(text string, want uint8) (protocol.QRPayload, error) {
	now := a.cfg.Now()
	q, err := protocol.DecodeQR(text, now)
	switch {
	case errors.Is(err, protocol.ErrQRStale):
		age := now.Sub(q.Time).Round(time.Second)
		if age < 0 {
			return q, fmt.Errorf("%w: made %s in the future by the phone's clock; check the clocks", ErrQRExpired, -age)
		}
		if q.Kind == protocol.QRPair {
			return q, fmt.Errorf("%w (made %s ago); ask for a new pairing code", ErrQRExpired, age)
		}
		return q, fmt.Errorf("%w (made %s ago); scan the code now on the screen", ErrQRExpired, age)
	case err != nil:
		return q, QRError(text, err)
	}
	if q.Kind != want {
		if want == protocol.QRLogin {
			return q, fmt.Errorf("%w: this is a pairing code; use pair", ErrWrongKind)
		}
		return q, fmt.Errorf("%w: this is a login code; use scan", ErrWrongKind)
	}
	return q, nil
}

// screenError is an error whose text is a sentence for the screen; it
// matches the sentinel is and unwraps to the error behind it, whose
// detail is for the log only.
type screenError struct {
	msg string
	err error
	is  error
}

func (e *screenError) Error() string   { return e.msg }
func (e *screenError) Unwrap() []error { return []error{e.is, e.err} }

// badPeer is the error for a message from who that the phone cannot
// decode or trust: a sentence for the screen; the decoder's detail is
// behind it, for the log.
func badPeer(who string, err error) error {
	return &screenError{msg: who + " sent a message this phone cannot read or trust, and nothing was changed; try again, and if it happens again tell your MSP admin", err: err, is: ErrBadPeer}
}

// dialErr turns a failed dial of who ("the computer", "the console") into
// a sentence: a peer that stays silent (a timeout; a wrong secret is
// silent by design) did not answer, for the reasons why gives.
func dialErr(who, why string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, protocol.ErrHandshake) {
		return &screenError{msg: who + " did not answer: " + why, err: err, is: ErrUnreachable}
	}
	return &screenError{msg: fmt.Sprintf("%s could not be reached: %v", who, err), err: err, is: ErrUnreachable}
}

// QRError is the screen's sentence for a code that did not parse (err
// from protocol.ParseQR or DecodeQR, not a stale one): update the phone
// for a code of a later version, scan again for anything else. It matches
// ErrQRMalformed and unwraps to err, whose detail is for the log only.
func QRError(text string, err error) error {
	if v, ok := protocol.QRVersionOf(text); ok && v > protocol.QRVersion && errors.Is(err, protocol.ErrUnsupportedVersion) {
		return &screenError{msg: "this code was made by a newer version of jitkey; update the phone", err: err, is: ErrQRMalformed}
	}
	return &screenError{msg: "this is not a jitkey code, or it is damaged; scan the code on the screen again", err: err, is: ErrQRMalformed}
}
