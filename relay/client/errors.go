package client

import (
	"errors"
	"fmt"

	"github.com/jitkey/jitkey/protocol"
)

// Sentinel errors. A negative answer from a relay is a *NackError that
// unwraps to one or more of the first group.
var (
	// ErrNotConnected: the recipient is not connected to its relay.
	ErrNotConnected = errors.New("client: recipient not connected")
	// ErrTooLarge: the payload exceeds protocol.MaxRelayPayload or the
	// relay's bound.
	ErrTooLarge = errors.New("client: payload too large")
	// ErrRateLimited: the sender exceeded its send rate at the relay, or,
	// for a Send with a push ticket to a recipient not connected, its
	// wake-up rate or the recipient device's (SPEC 12.6).
	ErrRateLimited = errors.New("client: rate limited")
	// ErrQueueFull: the recipient's queue at the relay is full.
	ErrQueueFull = errors.New("client: recipient queue full")
	// ErrShuttingDown: the relay is draining; retry after reconnecting.
	ErrShuttingDown = errors.New("client: relay shutting down")
	// ErrWakeSent: the recipient was not connected and was sent a push
	// wake-up; the payload was not delivered (also matches ErrNotConnected).
	ErrWakeSent = errors.New("client: recipient woken by push")
	// ErrPushFailed: the recipient was not connected and the push wake-up
	// failed (also matches ErrNotConnected).
	ErrPushFailed = errors.New("client: push wake-up failed")

	// ErrClosed is returned after Close.
	ErrClosed = errors.New("client: closed")
	// ErrReplaced is returned by Run when a newer connection with the same
	// identity claimed the mailbox at the home relay.
	ErrReplaced = errors.New("client: mailbox claimed by another connection")
	// ErrConnectionLost: the relay connection ended before the verdict.
	ErrConnectionLost = errors.New("client: relay connection lost")
	// ErrAuth: the relay refused the connection's authentication.
	ErrAuth = errors.New("client: relay refused authentication")
	// ErrWrongMailbox: the relay's Welcome named another mailbox than the
	// one this identity owns; the connection is refused.
	ErrWrongMailbox = errors.New("client: relay welcomed another mailbox")
	// ErrPin: the relay's certificate matched none of the pins
	// (the error is a *PinError). It is permanent: Run returns it for the
	// home relay instead of retrying, as a wrong address or a relay whose
	// key changed does not heal by waiting.
	ErrPin = errors.New("client: relay certificate does not match a pin")
)

// PinError is the failure of a relay whose certificate matched none of the
// accepted pins. It unwraps to ErrPin.
type PinError struct {
	Relay string     // the relay address as dialled
	Got   [32]byte   // pin of the certificate presented; zero if there was none
	Want  [][32]byte // the accepted pins
}

func (e *PinError) Error() string {
	if e.Got == ([32]byte{}) {
		return fmt.Sprintf("client: relay %s presented no certificate", e.Relay)
	}
	return fmt.Sprintf("client: relay %s presented key %x, which matches none of the %d relay pins", e.Relay, e.Got, len(e.Want))
}

// Unwrap returns ErrPin.
func (e *PinError) Unwrap() error { return ErrPin }

// NackError is a relay's negative answer to a Send.
type NackError struct {
	Relay  string              // relay that answered ("" when refused locally)
	Reason protocol.NackReason // the relay's reason code
}

func (e *NackError) Error() string {
	if e.Relay == "" {
		return fmt.Sprintf("client: send refused locally: %s", e.Reason)
	}
	return fmt.Sprintf("client: relay %s refused send: %s", e.Relay, e.Reason)
}

// Unwrap returns the sentinels matching the reason.
func (e *NackError) Unwrap() []error {
	switch e.Reason {
	case protocol.NackNotConnected:
		return []error{ErrNotConnected}
	case protocol.NackTooLarge:
		return []error{ErrTooLarge}
	case protocol.NackRateLimited:
		return []error{ErrRateLimited}
	case protocol.NackQueueFull:
		return []error{ErrQueueFull}
	case protocol.NackShuttingDown:
		return []error{ErrShuttingDown}
	case protocol.NackWakeSent:
		return []error{ErrWakeSent, ErrNotConnected}
	case protocol.NackPushFailed:
		return []error{ErrPushFailed, ErrNotConnected}
	}
	return nil
}
