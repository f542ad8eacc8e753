package client_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/server"
)

// TestHomePinMismatch: a home relay whose certificate matches none of the
// pins (a wrong address, a relay whose key changed) is a permanent
// failure. Run returns a *PinError at once instead of retrying, and
// WaitConnected, given far longer than that, returns it too: a caller
// waiting for the connection learns why instead of timing out.
func TestHomePinMismatch(t *testing.T) {
	t.Cleanup(func() { checkNoClientGoroutines(t) })
	r := startRelay(t, server.Limits{}, "127.0.0.1:0")
	wrong := [32]byte{0xab}
	home := "127.0.0.1:" + r.port
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Identity: k, Home: home, Pins: [][32]byte{wrong},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()

	// A timeout far beyond the test's: had the client kept retrying,
	// WaitConnected would end only with the test binary's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	err = c.WaitConnected(ctx)
	var pe *client.PinError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("WaitConnected timed out: %v", err)
	case !errors.Is(err, client.ErrPin) || !errors.As(err, &pe):
		t.Fatalf("WaitConnected: %v, want a *PinError", err)
	}
	if pe.Relay != home || pe.Got != r.Pin() || len(pe.Want) != 1 || pe.Want[0] != wrong {
		t.Errorf("PinError = %+v, want relay %s, got %x, want [%x]", pe, home, r.Pin(), wrong)
	}
	if err := <-runErr; !errors.As(err, &pe) {
		t.Errorf("Run returned %v, want the *PinError", err)
	}
	if got := r.metric(t, "jitkey_relay_peers"); got != 0 {
		t.Errorf("%d peers registered despite the pin mismatch", got)
	}
}

// TestPinErrorText: the error names the relay and the key it presented.
func TestPinErrorText(t *testing.T) {
	e := &client.PinError{Relay: "relay.example:4433", Got: [32]byte{0x01}, Want: [][32]byte{{0xab}}}
	want := "client: relay relay.example:4433 presented key 0100000000000000000000000000000000000000000000000000000000000000, which matches none of the 1 relay pins"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	if !errors.Is(e, client.ErrPin) {
		t.Error("PinError does not match ErrPin")
	}
}

// TestHomePinMismatchRetried: with RetryPin (the running agent), a relay
// whose certificate matches no pin does not end Run: it keeps trying
// until its context ends, so the agent's offline logins go on working.
func TestHomePinMismatchRetried(t *testing.T) {
	t.Cleanup(func() { checkNoClientGoroutines(t) })
	r := startRelay(t, server.Limits{}, "127.0.0.1:0")
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Identity: k, Home: "127.0.0.1:" + r.port, Pins: [][32]byte{{0xab}}, RetryPin: true,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); errors.Is(err, client.ErrPin) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want it to retry until its context ends", err)
	}
}
