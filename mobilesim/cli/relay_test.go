package cli_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/server"
)

// relayNet joins fake peers to a real relay through relay/client.
type relayNet struct{ pins [][32]byte }

func (r relayNet) Join(relay string, identity ed25519.PrivateKey, static noise.DHKey,
	accept func(context.Context, channel.Hello) ([]byte, protocol.NoiseKey, error),
	handle func(context.Context, *channel.Conn)) (*channel.Mux, protocol.PeerAddr, func(), error) {
	rc, err := client.New(client.Config{Identity: identity, Home: relay, Pins: r.pins})
	if err != nil {
		return nil, protocol.PeerAddr{}, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); rc.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := rc.WaitConnected(wctx); err != nil {
		cancel()
		rc.Close()
		<-runDone
		return nil, protocol.PeerAddr{}, nil, err
	}
	mux := channel.New(channel.Config{Relay: rc, Static: static, Accept: accept, Handle: handle})
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		mux.Pump(ctx, func(ctx context.Context) (protocol.PeerAddr, []byte, error) {
			m, err := rc.Recv(ctx)
			return m.From, m.Payload, err
		})
	}()
	return mux, rc.Addr(), func() { cancel(); <-pumpDone; rc.Close(); <-runDone }, nil
}

// TestRealRelay runs init, pair, scan (approve and deny), sync and a wrong
// relay pin through the jitkey-phone commands over a real relay server on
// loopback, with the fake console and agent connected to it by relay/client.
func TestRealRelay(t *testing.T) {
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { served <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() { cancel(); <-served })
	<-srv.Ready()
	relay := pc.LocalAddr().String()
	pin := srv.Pin()
	rn := relayNet{pins: [][32]byte{pin}}

	console, err := peertest.NewConsole(rn, "Acme MSP", relay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(console.Close)
	agent, err := peertest.NewAgent(rn, relay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	console.Enroll(agent, "W11-L-PASSWORD", "acme", false)
	console.SetPolicy(peertest.DefaultPolicy("acme", 1))
	agent.Configure(console.Policy("acme"), nil)

	env := &cli.Env{Connect: cli.RelayConnect, Stdin: strings.NewReader("")}
	state := filepath.Join(t.TempDir(), "phone")
	run := func(args ...string) result {
		t.Helper()
		rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer rcancel()
		var out, errb bytes.Buffer
		code := env.Run(rctx, append([]string{"--state", state, "--timeout", "5s"}, args...), &out, &errb)
		return result{out.String(), errb.String(), code}
	}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init", "--relay", relay, "--relay-pin", hex.EncodeToString(pin[:])}, 0, "phone initialised"},
		{[]string{"pair", console.PairingQR("nik", nik, time.Now())}, 0, "paired with Acme MSP (org acme-msp) as nik"},
		{[]string{"scan", agent.LoginQR(protocol.ActionLogon, time.Now()), "--approve"}, 0, "approved: msp-nik is ready on W11-L-PASSWORD"},
		{[]string{"scan", agent.LoginQR(protocol.ActionElevate, time.Now()), "--deny"}, 0, "Elevate on W11-L-PASSWORD (tenant acme) as msp-nik — action: elevate\ndenied\n"},
		{[]string{"sync"}, 0, "synced acme-msp: policies acme v1; 1 devices"},
	}
	for _, s := range steps {
		r := run(s.args...)
		if r.code != s.code || !strings.Contains(r.out, s.want) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", s.args[0], r.code, r.out, r.err, s.code, s.want)
		}
	}
	for _, want := range []uint8{protocol.DecisionApprove, protocol.DecisionDeny} {
		if ev := event(t, agent); ev.Approval == nil || ev.Approval.Decision != want {
			t.Fatalf("agent saw %+v, want decision %d", ev, want)
		}
	}

	// A phone pinned to another relay key does not connect, and says so
	// at once: given an hour, it fails with the pin mismatch, not with
	// the run's 15 s deadline (which would be kind "unreachable").
	state = filepath.Join(t.TempDir(), "phone2")
	if r := run("init", "--relay", relay, "--relay-pin", strings.Repeat("ab", 32)); r.code != 0 {
		t.Fatal(r)
	}
	r := run("--timeout", "1h", "pair", console.PairingQR("eve", nik, time.Now()), "--json")
	wantErr := "jitkey-phone: the relay at " + relay + " does not match this phone's relay pin " + strings.Repeat("ab", 32) +
		": check the relay address, or set the phone up again (init) with the relay's current --relay-pin\n"
	if r.code != cli.ExitUnreachable || !strings.Contains(r.out, `"kind":"relay-pin-mismatch"`) || r.err != wantErr {
		t.Fatalf("wrong pin: %+v\nwant stderr %q", r, wantErr)
	}
}
