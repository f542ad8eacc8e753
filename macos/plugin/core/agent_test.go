//go:build (linux || darwin) && cgo

package core_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/macos/plugin/core"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// agentEnv is a real agent IPC server (agent/ipcserver over agent/ipc's
// Unix socket) with its login server, lifecycle and a fake accounts
// backend, reachable by phones over an in-memory relay network.
type agentEnv struct {
	msp     *agenttest.MSP
	backend *accountstest.Backend
	net     *channeltest.Network
	sock    string
}

func newAgent(t *testing.T) *agentEnv {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("agent/ipc listens on Linux only")
	}
	e := &agentEnv{msp: agenttest.NewMSP(t, "acme"), net: channeltest.NewNetwork()}
	p := e.msp.Policy(1)
	agent := agenttest.NewAgent(t, e.msp, &p, store.Config{})
	e.backend = accountstest.New(accountstest.Config{})
	mgr := lifecycle.New(lifecycle.Config{Backend: e.backend, Store: agent.Store, Audit: agent.Audit, Rand: rand.Reader})
	addr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: agent.Keys.Mailbox()}
	ls := login.New(login.Config{Store: agent.Store, Audit: agent.Audit, Lifecycle: mgr, Static: agent.Keys.NoisePublic(),
		Addr: func() protocol.PeerAddr { return addr }, StepTimeout: 5 * time.Second})
	peer := e.net.Join(addr)
	agenttest.Pump(t, channel.New(channel.Config{Relay: peer, Static: agent.Keys.Noise, Accept: ls.Accept, Handle: ls.Handle}), peer.Recv)
	e.sock = filepath.Join(t.TempDir(), "run", "agent.sock")
	ln, err := ipc.Listen(t.Context(), ipc.Config{Path: e.sock, AllowedUIDs: []uint32{uint32(os.Geteuid())}})
	if err != nil {
		t.Fatal(err)
	}
	srv := ipcserver.New(ipcserver.Config{Login: ls, Lifecycle: mgr})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return e
}

// run feeds the core frames read by the C transport until it reaches
// one of the states in until (or fails the test).
func run(t *testing.T, k *core.Core, c *core.Conn, until ...core.State) {
	t.Helper()
	for {
		for _, s := range until {
			if k.State() == s {
				return
			}
		}
		if k.Done() {
			t.Fatalf("core ended in state %d (reason %q), want one of %v", k.State(), k.Reason(), until)
		}
		body, err := c.Read(10_000)
		if err != nil {
			k.OnLost()
			continue
		}
		k.OnMessage(body)
	}
}

// TestLoginWithRealAgent: the C core, over its own socket code, asks a
// real agent for a login, shows the QR the agent sends (its PNG decodes
// to its text), and receives a Credential that logs in, after a phone
// scans and approves.
func TestLoginWithRealAgent(t *testing.T) {
	e := newAgent(t)
	phone := e.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	c, err := core.Connect(e.sock, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := core.New()
	defer k.Close()
	if err := c.Write(k.Begin("logon")); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.ShowingQR)
	if !k.Online() {
		t.Fatal("Status not seen")
	}
	text, err := qrcode.Decode(k.QRPNG())
	if err != nil || text != k.QRText() {
		t.Fatalf("QR PNG decodes to %q (%v), text %q", text, err, k.QRText())
	}
	if q, err := protocol.ParseQR(k.QRText()); err != nil || q.Action != protocol.ActionLogon {
		t.Fatalf("QR %+v %v", q, err)
	}
	res, err := phone.Login(t.Context(), phone.PhoneMux(t, e.net), k.QRText(), agenttest.Scan{})
	if err != nil || !res.OK {
		t.Fatalf("phone: %+v %v", res, err)
	}
	run(t, k, c, core.Credential)
	if k.Username() != "msp-nik" || k.Deadline() <= time.Now().Unix() {
		t.Fatalf("credential for %q, deadline %d", k.Username(), k.Deadline())
	}
	pw := password.FromBytes(k.Password())
	if err := e.backend.Login(t.Context(), "msp-nik", pw); err != nil {
		t.Fatalf("the credential does not log in: %v", err)
	}
	k.Wipe()
	if !k.PasswordWiped() || k.State() != core.Idle {
		t.Fatal("jkc_wipe left the password")
	}
}

// TestElevateDeniedByTechnician: an admin prompt (surface elevate) that
// the technician denies ends with Denied code 5 and its reason.
func TestElevateDeniedByTechnician(t *testing.T) {
	e := newAgent(t)
	phone := e.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	c, err := core.Connect(e.sock, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := core.New()
	defer k.Close()
	if err := c.Write(k.Begin("elevate")); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.ShowingQR)
	if q, _ := protocol.ParseQR(k.QRText()); q.Action != protocol.ActionElevate {
		t.Fatalf("action %d", q.Action)
	}
	if _, err := phone.Login(t.Context(), phone.PhoneMux(t, e.net), k.QRText(), agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 { return protocol.DecisionDeny }}); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.Denied)
	if k.DeniedCode() != int(protocol.CodeDenied) || k.Reason() != "denied by the technician" {
		t.Fatalf("denied %d %q", k.DeniedCode(), k.Reason())
	}
	if len(e.backend.Names()) != 0 {
		t.Fatal("account made for a denied request")
	}
}

// TestPeerCheck: the core refuses an agent socket served by another uid.
func TestPeerCheck(t *testing.T) {
	e := newAgent(t)
	if _, err := core.Connect(e.sock, os.Geteuid()+4242); err == nil {
		t.Fatal("connected to a socket served by another uid")
	}
	if _, err := core.Connect(filepath.Join(t.TempDir(), "none.sock"), os.Geteuid()); err == nil {
		t.Fatal("connected to nothing")
	}
}
