package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// fixture pairs a phone with a fake console that has one enrolled device.
func fixture(t *testing.T) (*channeltest.Network, *peertest.Console, *peertest.Agent, *app.App, *channel.Mux) {
	t.Helper()
	n, console, agent, a, mux, _ := fixtureWallet(t)
	return n, console, agent, a, mux
}

// fixtureWallet is fixture that also returns the phone's wallet.
func fixtureWallet(t *testing.T) (*channeltest.Network, *peertest.Console, *peertest.Agent, *app.App, *channel.Mux, *wallet.Wallet) {
	t.Helper()
	return fixtureWith(t, nil)
}

// fixtureWith is fixtureWallet with the app's configuration adjusted by
// edit (nil: none).
func fixtureWith(t *testing.T, edit func(*app.Config)) (*channeltest.Network, *peertest.Console, *peertest.Agent, *app.App, *channel.Mux, *wallet.Wallet) {
	t.Helper()
	n := channeltest.NewNetwork()
	mem := peertest.Memory{Net: n}
	console, err := peertest.NewConsole(mem, "Acme MSP", "relay:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(console.Close)
	agent, err := peertest.NewAgent(mem, "relay:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Close)
	console.Enroll(agent, "PC1", "acme", false)
	console.SetPolicy(peertest.DefaultPolicy("acme", 1))
	agent.Configure(console.Policy("acme"), nil)

	key, _ := biometric.Generate(context.Background(), &biometric.Fixed{}, rand.Reader)
	w, err := wallet.Create(filepath.Join(t.TempDir(), "p"), "relay:1", [][32]byte{{1}}, key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{Wallet: w, Gate: &biometric.Fixed{}}
	if edit != nil {
		edit(&cfg)
	}
	a := app.New(cfg)
	mux, stop := peertest.JoinMemory(n, w.Phone().Addr(), w.Phone().Noise(), a.Accept, a.Handle)
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Pair(ctx, mux, console.PairingQR("nik", []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}}, time.Now())); err != nil {
		t.Fatal(err)
	}
	return n, console, agent, a, mux, w
}

// TestRequestChecks: a device that answers with a request the phone cannot
// trust gets a refusal and never an approval.
func TestRequestChecks(t *testing.T) {
	n, console, agent, a, mux := fixture(t)
	otherMSP := func() protocol.Signed {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		s, _ := protocol.SignEd25519(protocol.DocDeviceCert, &agent.Cert, k)
		return s
	}
	for _, tc := range []struct {
		name   string
		tamper func(r *protocol.LoginRequest)
	}{
		{"device cert of another MSP", func(r *protocol.LoginRequest) { r.DeviceCert = otherMSP() }},
		{"device cert of another device", func(r *protocol.LoginRequest) {
			d := agent.Cert
			d.DeviceID[0] ^= 1
			r.DeviceCert = console.Sign(protocol.DocDeviceCert, &d)
		}},
		{"device cert with another key", func(r *protocol.LoginRequest) {
			d := agent.Cert
			d.NoiseKey[0] ^= 1
			r.DeviceCert = console.Sign(protocol.DocDeviceCert, &d)
		}},
		{"expired device cert", func(r *protocol.LoginRequest) {
			d := agent.Cert
			d.NotAfter = time.Now().Add(-time.Minute).Unix()
			r.DeviceCert = console.Sign(protocol.DocDeviceCert, &d)
		}},
		{"other action", func(r *protocol.LoginRequest) { r.Action = protocol.ActionSudo }},
		{"other session", func(r *protocol.LoginRequest) { r.Session[0] ^= 1 }},
		{"number in a QR login", func(r *protocol.LoginRequest) { r.Number = 7 }},
		{"unknown account kind", func(r *protocol.LoginRequest) { r.Choices = []uint8{9} }},
		{"RDP target of another MSP", func(r *protocol.LoginRequest) {
			r.Choices = []uint8{protocol.AccountLocal, protocol.AccountDomain}
			r.Target = otherMSP()
		}},
		{"RDP target from a machine that is not domain-joined", func(r *protocol.LoginRequest) {
			d := agent.Cert
			d.DeviceID[0] ^= 1
			d.DomainJoined = true
			r.Choices = []uint8{protocol.AccountLocal, protocol.AccountDomain}
			r.Target = console.Sign(protocol.DocDeviceCert, &d)
		}},
		{"account name that redraws the prompt", func(r *protocol.LoginRequest) { r.Account = "msp-nik\r\x1b[2KLog in to ws-9 as guest" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var decided bool
			// A hostile agent on its own mailbox with the same keys.
			evil := &evilAgent{agent: agent, console: console, tamper: tc.tamper}
			agent.Close()
			_, stop := peertest.JoinMemory(n, agent.Addr, agent.Static, evil.accept, evil.handle)
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			qr := evil.qr(time.Now())
			_, err := a.Scan(ctx, mux, qr, app.ScanOptions{Decide: func(context.Context, *app.Request) (app.Decision, error) {
				decided = true
				return app.Decision{Approve: true}, nil
			}})
			if !errors.Is(err, app.ErrBadPeer) || decided {
				t.Fatalf("err %v, decided %v", err, decided)
			}
			select {
			case got := <-evil.got:
				if got != protocol.MsgError {
					t.Fatalf("agent received message %d, want MsgError", got)
				}
			case <-ctx.Done():
				t.Fatal("agent got nothing")
			}
		})
	}
}

// evilAgent answers a QR login with a tampered request.
type evilAgent struct {
	agent   *peertest.Agent
	console *peertest.Console
	tamper  func(*protocol.LoginRequest)
	secret  [16]byte
	got     chan protocol.MsgType
}

func (e *evilAgent) qr(at time.Time) string {
	rand.Read(e.secret[:])
	e.got = make(chan protocol.MsgType, 1)
	q := protocol.QRPayload{Kind: protocol.QRLogin, Action: protocol.ActionLogon, Time: at, DeviceID: e.agent.Cert.DeviceID,
		Static: peertest.NoiseKeyOf(e.agent.Static), Mailbox: e.agent.Addr.Mailbox, Relay: e.agent.Addr.Relay, Secret: e.secret}
	s, _ := q.Encode()
	return s
}

func (e *evilAgent) accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	psk, err := protocol.Derive(e.secret[:], protocol.LabelQRPSK, nil, 32)
	return psk, protocol.NoiseKey{}, err
}

func (e *evilAgent) handle(ctx context.Context, c *channel.Conn) {
	var hello protocol.LoginHello
	if c.Recv(ctx, protocol.MsgLoginHello, &hello) != nil {
		return
	}
	req := protocol.LoginRequest{DeviceCert: e.console.Sign(protocol.DocDeviceCert, &e.agent.Cert), Session: c.ID,
		Action: protocol.ActionLogon, Account: "msp-nik", Time: time.Now().Unix()}
	e.tamper(&req)
	c.Send(ctx, protocol.MsgLoginRequest, &req)
	b, err := c.RecvRaw(ctx)
	if err == nil && len(b) > 0 {
		e.got <- protocol.MsgType(b[0])
	}
}

// TestApproveDenySameLength: on the wire, an approval and a denial are
// indistinguishable by size.
func TestApproveDenySameLength(t *testing.T) {
	n, _, agent, a, mux := fixture(t)
	var sizes []int
	n.Tap = func(from, to protocol.PeerAddr, payload []byte) []byte {
		if to.Mailbox == agent.Addr.Mailbox {
			sizes = append(sizes, len(payload))
		}
		return payload
	}
	for _, approve := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := a.Scan(ctx, mux, agent.LoginQR(protocol.ActionLogon, time.Now()), app.ScanOptions{
			Decide: func(context.Context, *app.Request) (app.Decision, error) { return app.Decision{Approve: approve}, nil },
		})
		cancel()
		want := map[bool]string{true: app.StatusApproved, false: app.StatusDenied}[approve]
		if err != nil || out.Status != want {
			t.Fatalf("approve=%v: %v %+v", approve, err, out)
		}
		<-agent.Events
	}
	// Per login: hello frame, LoginHello, Approval.
	if len(sizes) != 6 || sizes[2] != sizes[5] {
		t.Fatalf("frame sizes phone->agent %v: approval and denial differ", sizes)
	}
}
