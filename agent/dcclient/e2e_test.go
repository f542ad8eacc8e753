//go:build linux

package dcclient_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/domain"
	"github.com/jitkey/jitkey/agent/domain/sambatest"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipc/ipctest"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// world is a real relay on loopback, a console (agenttest's), a
// workstation agent and a DC agent (daemon.Run, each on its own relay
// connection) and a phone, against the package's Samba DC.
type world struct {
	relayAddr string
	pin       [32]byte
	msp       *agenttest.MSP
	console   *agenttest.Console
	ws, dc    *agent
	dir       *domain.Directory
	policy    protocol.Policy
}

type agent struct {
	state, sock string
	enr         store.Enrollment
	info        daemon.Info
	backend     *accountstest.Backend
	stop        func()
	// ipcPeer, if set, makes the agent's IPC endpoint ipctest's fake
	// platform listener labelling every surface with it.
	ipcPeer *ipc.Peer
}

func newWorld(t *testing.T) *world { t.Helper(); return newWorldPeer(t, nil) }

// newWorldPeer is newWorld with the workstation's surfaces classified as
// wsPeer by a fake platform listener (nil: the real Unix socket).
func newWorldPeer(t *testing.T, wsPeer *ipc.Peer) *world {
	t.Helper()
	w := &world{msp: agenttest.NewMSP(t, "acme")}
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ListenAndServe(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	w.relayAddr, w.pin = srv.Addr().String(), srv.Pin()

	id, nk := agenttest.NewConsoleKeys(t)
	w.policy = w.msp.Policy(1)
	w.policy.SelectiveLogin, w.policy.DomainAccounts = true, true
	w.console = agenttest.NewConsole(t, w.msp, id, nk, w.relayClient(t, id), w.policy)

	ou, err := testDC.AddOU("e2e-" + strings.ReplaceAll(t.Name(), "/", "-"))
	if err != nil {
		t.Fatal(err)
	}
	w.dir, err = domain.New(domain.Config{
		URL: sambatest.URL, RootCAs: testDC.CAPool,
		BindDN: sambatest.AdminDN, BindPassword: password.FromBytes([]byte(sambatest.AdminPass)),
		OU: ou, AdminGroup: sambatest.AdminGroup, UPNSuffix: sambatest.UPNSuffix,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.dc = w.enroll(t, "DC-01", true, true)
	w.ws = w.enroll(t, "WS-01", true, false)
	w.ws.ipcPeer = wsPeer
	w.start(t, w.dc, w.dir)
	w.start(t, w.ws, nil)

	// The console's pushes (SPEC.md 8.2): the DC agent's directory is the
	// domain-joined workstations, the workstation's the DC agents.
	signed := w.console.SetPolicy(t, w.policy)
	w.push(t, w.dc, signed, w.ws.enr.DeviceCert)
	w.push(t, w.ws, signed, w.dc.enr.DeviceCert)
	return w
}

func (w *world) relayClient(t *testing.T, id ed25519.PrivateKey) daemon.Relay {
	rl, err := daemon.QUICRelay(id, w.relayAddr, [][32]byte{w.pin}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return rl
}

func (w *world) enroll(t *testing.T, name string, joined, dc bool) *agent {
	a := &agent{state: filepath.Join(t.TempDir(), "state"), sock: filepath.Join(t.TempDir(), "run", "agent.sock"),
		backend: accountstest.New(accountstest.Config{})}
	var err error
	a.enr, err = enroll.Enroll(t.Context(), enroll.Config{
		StateDir: a.state, Token: w.console.Token(t, [][32]byte{w.pin}, time.Now().Add(time.Hour), 1), Name: name, OS: "linux",
		DomainJoined: joined, DC: dc,
		Dial: func(id ed25519.PrivateKey, home string, pins [][32]byte) (enroll.Relay, error) {
			return daemon.QUICRelay(id, home, pins, slog.New(slog.DiscardHandler))
		},
	})
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	var c protocol.DeviceCert
	if err := a.enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, w.msp.Pub, &c); err != nil || c.DomainJoined != joined || c.DC != dc {
		t.Fatalf("%s certified as joined=%v dc=%v (%v)", name, c.DomainJoined, c.DC, err)
	}
	return a
}

// start runs a's agent (the DC role with dir) until stopped.
func (w *world) start(t *testing.T, a *agent, dir *domain.Directory) {
	ready := make(chan daemon.Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := daemon.Config{
		StateDir: a.state, Backend: a.backend, IPCPath: a.sock, Relay: daemon.QUICRelay,
		Ready: func(i daemon.Info) { ready <- i }, Domain: sambatest.Domain, ShipInterval: 200 * time.Millisecond,
	}
	if dir != nil {
		cfg.DC = dir
	}
	if a.ipcPeer != nil {
		peer := *a.ipcPeer
		cfg.IPCListen = func(context.Context) (ipcserver.Listener, error) {
			if err := os.MkdirAll(filepath.Dir(a.sock), 0o700); err != nil {
				return nil, err
			}
			return ipctest.Listen(a.sock, peer)
		}
	}
	go func() { done <- daemon.Run(ctx, cfg) }()
	select {
	case a.info = <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
	stopped := false
	a.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}
	t.Cleanup(a.stop)
}

// push sends a PolicyPush with the policy and directory; the agent's
// relay connection may still be coming up.
func (w *world) push(t *testing.T, a *agent, pol protocol.Signed, dir ...protocol.Signed) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := w.console.Push(ctx, a.info.Addr, &protocol.PolicyPush{Policies: []protocol.Signed{pol}, Directory: dir})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("push to %s: %v", a.info.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *world) phone(t *testing.T, username string) (*agenttest.Phone, *channel.Mux) {
	p := w.msp.NewPhone(t, username, protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	rl := w.relayClient(t, p.Identity)
	mux := channel.New(channel.Config{Relay: rl, Static: p.Noise})
	agenttest.Pump(t, mux, rl.Recv)
	return p, mux
}

// login runs a logon at the workstation's surface with the phone choosing
// account kind; it returns the surface connection, the login request the
// phone saw, the phone's result and the surface's answer (Credential or
// Denied).
func (w *world) login(t *testing.T, p *agenttest.Phone, mux *channel.Mux, account uint8) (*ipcserver.Client, protocol.LoginRequest, protocol.LoginResult, any) {
	t.Helper()
	c, req, res := w.scan(t, p, mux, func(ctx context.Context, c *ipcserver.Client) error { return c.Begin(ctx, "logon", 0) },
		func(a *protocol.Approval) { a.Account = account })
	return c, req, res, answer(t, c)
}

func bindErr(account, pw string) error { return testDC.Bind(account+"@"+sambatest.UPNSuffix, pw) }

func wantRefusedBind(t *testing.T, err error) {
	t.Helper()
	if err == nil || !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) ||
		!(strings.Contains(err.Error(), "data 52e") || strings.Contains(err.Error(), "data 533")) {
		t.Fatalf("bind: %v, want refused with data 52e or 533", err)
	}
}

// TestDomainLoginEndToEnd (SPEC.md 11.7): over a real relay, a
// domain-joined workstation agent offers local and domain accounts; the
// phone chooses domain; the workstation asks the DC agent over KK
// FlowDomain; the surface gets JITKEY\msp-nik with a password that binds
// over LDAPS to the real Samba DC while the session lasts, the account in
// the admin group; the surface's End logs off and sends DomainEnd: the
// bind then fails (52e/533) and the membership is gone. No local account
// is created on the workstation. With the DC agent stopped, a domain
// choice is denied with a clear reason and nothing is enabled.
func TestDomainLoginEndToEnd(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")

	c, req, res, m := w.login(t, p, mux, protocol.AccountDomain)
	if !slices.Equal(req.Choices, []uint8{protocol.AccountLocal, protocol.AccountDomain}) {
		t.Fatalf("login request offers %v, want [local domain]", req.Choices)
	}
	cred, ok := m.(*ipcserver.Credential)
	if !ok || !res.OK {
		t.Fatalf("surface got %+v, phone %+v", m, res)
	}
	if cred.Username != sambatest.Domain+`\msp-nik` || res.Account != cred.Username {
		t.Fatalf("credential for %q (phone told %q), want %s\\msp-nik", cred.Username, res.Account, sambatest.Domain)
	}
	pw := string(cred.Password)
	if err := bindErr("msp-nik", pw); err != nil {
		t.Fatalf("LDAPS bind during the session: %v", err)
	}
	e, err := w.dir.Lookup(t.Context(), "msp-nik")
	if err != nil || !e.Enabled() || !e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("during the session: %+v %v, want enabled and in the admin group", e, err)
	}
	if _, err := w.ws.backend.Lookup(t.Context(), "msp-nik"); err == nil {
		t.Fatal("a local account was created for a domain login")
	}

	endSession(t, c, cred.Session)
	wantRefusedBind(t, bindErr("msp-nik", pw))
	e, err = w.dir.Lookup(t.Context(), "msp-nik")
	if err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after the session: %+v %v, want disabled, no membership", e, err)
	}
	// The workstation's audit, shipped to the console: the approval of
	// the domain account and its end.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var approved, ended bool
		for _, r := range w.console.Records(w.ws.info.Addr.Mailbox) {
			approved = approved || (r.Event == "login.approved" && r.Account == cred.Username)
			ended = ended || (r.Event == "session.ended" && r.Account == cred.Username)
		}
		if approved && ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workstation audit at the console: %v", agenttest.Events(w.console.Records(w.ws.info.Addr.Mailbox)))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A local choice still works on the same workstation.
	_, _, res, m = w.login(t, p, mux, protocol.AccountLocal)
	if cred, ok := m.(*ipcserver.Credential); !ok || !res.OK || cred.Username != "msp-nik" {
		t.Fatalf("local choice: %+v %+v", m, res)
	}

	// DC agent gone: a domain choice is denied, clearly; nothing enabled.
	w.dc.stop()
	_, _, res, m = w.login(t, p, mux, protocol.AccountDomain)
	d, ok := m.(*ipcserver.Denied)
	if !ok || d.Code != protocol.CodeUnavailable || !strings.Contains(d.Reason, "domain controller unreachable") || res.OK {
		t.Fatalf("DC down: surface %+v, phone %+v", m, res)
	}
	e, err = w.dir.Lookup(t.Context(), "msp-nik")
	if err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after a refused domain login: %+v %v", e, err)
	}
}
