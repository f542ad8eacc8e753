package ipcserver_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipc/ipctest"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// TestMain doubles as an IPC client run as another user (see
// TestNonRootRefused): it asks for a login and reports what came back.
func TestMain(m *testing.M) {
	if sock := os.Getenv("JITKEY_IPC_HELPER"); sock != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := ipcserver.Dial(ctx, sock)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(0)
		}
		_ = c.Begin(ctx, "logon", 0)
		m, err := c.Next(ctx)
		if err != nil {
			fmt.Println("no answer:", err)
		} else {
			fmt.Printf("answer: %T\n", m)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// checkGoroutines fails the test if goroutines started during it outlive
// its cleanups.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("leaked goroutines: %d > %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

type env struct {
	msp     *agenttest.MSP
	agent   *agenttest.Agent
	backend *accountstest.Backend
	net     *channeltest.Network
	sock    string
	// ln is the fake platform listener of newEnvPeer, nil for newEnv.
	ln *ipctest.Listener
}

// newEnv serves login surfaces at dir/agent.sock (dir "" means a new
// temporary directory).
func newEnv(t *testing.T, dir string) *env { return newEnvPeer(t, dir, nil, nil) }

// newEnvPeer is newEnv; with kind non-nil, the socket is ipctest's fake
// platform listener labelling every connection with *kind, and now (if
// not nil) is the server's clock.
func newEnvPeer(t *testing.T, dir string, kind *ipc.Peer, now func() time.Time) *env {
	checkGoroutines(t)
	e := &env{msp: agenttest.NewMSP(t, "acme"), net: channeltest.NewNetwork()}
	p := e.msp.Policy(1)
	e.agent = agenttest.NewAgent(t, e.msp, &p, store.Config{})
	e.backend = accountstest.New(accountstest.Config{})
	mgr := lifecycle.New(lifecycle.Config{Backend: e.backend, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader})
	addr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: e.agent.Keys.Mailbox()}
	ls := login.New(login.Config{Store: e.agent.Store, Audit: e.agent.Audit, Lifecycle: mgr, Static: e.agent.Keys.NoisePublic(),
		Addr: func() protocol.PeerAddr { return addr }, StepTimeout: 5 * time.Second})
	peer := e.net.Join(addr)
	agenttest.Pump(t, channel.New(channel.Config{Relay: peer, Static: e.agent.Keys.Noise, Accept: ls.Accept, Handle: ls.Handle}), peer.Recv)
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "run") // ipc.Listen creates it 0700
	}
	e.sock = filepath.Join(dir, "agent.sock")
	var ln ipcserver.Listener
	if kind != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		fake, err := ipctest.Listen(e.sock, *kind)
		if err != nil {
			t.Fatal(err)
		}
		e.ln, ln = fake, fake
	} else {
		real, err := ipc.Listen(t.Context(), ipc.Config{Path: e.sock})
		if err != nil {
			t.Fatal(err)
		}
		ln = real
	}
	srv := ipcserver.New(ipcserver.Config{Login: ls, Lifecycle: mgr, Now: now})
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

func (e *env) dial(t *testing.T) *ipcserver.Client {
	c, err := ipcserver.Dial(t.Context(), e.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func next[T any](t *testing.T, c *ipcserver.Client) *T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	v, ok := m.(*T)
	if _, isQR := m.(*ipcserver.QR); isQR && !ok {
		return next[T](t, c) // a fresh code after a scan
	}
	if !ok {
		t.Fatalf("got %T %+v, want %T", m, m, v)
	}
	return v
}

func TestLoginOverIPC(t *testing.T) {
	e := newEnv(t, "")
	st, err := os.Stat(e.sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", st.Mode(), err)
	}
	phone := e.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	c := e.dial(t)
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	qr := next[ipcserver.QR](t, c)
	text, err := qrcode.Decode(qr.PNG)
	if err != nil || text != qr.Text || !strings.HasPrefix(qr.Text, "JK:") || qr.Terminal == "" {
		t.Fatalf("QR: decoded %q (%v), text %q, terminal %d bytes", text, err, qr.Text, len(qr.Terminal))
	}
	res, err := phone.Login(t.Context(), phone.PhoneMux(t, e.net), qr.Text, agenttest.Scan{})
	if err != nil || !res.OK || res.Account != "msp-nik" {
		t.Fatalf("phone: %+v %v", res, err)
	}
	cred := next[ipcserver.Credential](t, c)
	pw := password.FromBytes(cred.Password)
	if cred.Username != "msp-nik" || pw.Len() < password.MinLength {
		t.Fatalf("credential for %q, %d bytes", cred.Username, pw.Len())
	}
	if err := e.backend.Login(t.Context(), "msp-nik", pw); err != nil {
		t.Fatalf("credential does not log in: %v", err)
	}
	if err := c.End(t.Context(), cred.Session); err != nil {
		t.Fatal(err)
	}
	next[ipcserver.Ended](t, c)
	if err := e.backend.Login(t.Context(), "msp-nik", pw); err == nil {
		t.Fatal("credential still logs in after End")
	}
	// End again, on a new connection: no such session.
	c2 := e.dial(t)
	if err := c2.End(t.Context(), cred.Session); err != nil {
		t.Fatal(err)
	}
	if d := next[ipcserver.Denied](t, c2); d.Code != protocol.CodeExpired {
		t.Fatalf("second End: %+v", d)
	}
	ev := agenttest.Events(e.agent.Records(t))
	want := []string{"login.approved", "account.created", "account.enabled", "session.ended", "account.disabled"}
	if !slices.Equal(ev, want) {
		t.Fatalf("audit %v, want %v", ev, want)
	}
}

func TestDeniedOverIPC(t *testing.T) {
	e := newEnv(t, "")
	phone := e.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	c := e.dial(t)
	if err := c.Begin(t.Context(), "sudo", 0); err != nil {
		t.Fatal(err)
	}
	qr := next[ipcserver.QR](t, c)
	if q, _ := protocol.ParseQR(qr.Text); q.Action != protocol.ActionSudo {
		t.Fatalf("action %d", q.Action)
	}
	_, err := phone.Login(t.Context(), phone.PhoneMux(t, e.net), qr.Text, agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 { return protocol.DecisionDeny }})
	if err != nil {
		t.Fatal(err)
	}
	if d := next[ipcserver.Denied](t, c); d.Code != protocol.CodeDenied {
		t.Fatalf("%+v", d)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, "")
	c := e.dial(t)
	if err := c.Begin(t.Context(), "teleport", 0); err != nil {
		t.Fatal(err)
	}
	if d := next[ipcserver.Denied](t, c); d.Code != protocol.CodeBadRequest {
		t.Fatalf("%+v", d)
	}
	// A surface that leaves before the scan cancels its request.
	c2 := e.dial(t)
	if err := c2.Begin(t.Context(), "unlock", 0); err != nil {
		t.Fatal(err)
	}
	qr := next[ipcserver.QR](t, c2)
	c2.Close()
	time.Sleep(100 * time.Millisecond)
	phone := e.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	// The agent drops the hello of a retired code without an answer, so
	// the phone's handshake can only end by its deadline; 2 s bounds
	// that wait. An agent that took the code would answer within it but
	// under extreme load (this check would then pass, never fail, wrongly).
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := phone.Login(ctx, phone.PhoneMux(t, e.net), qr.Text, agenttest.Scan{}); err == nil {
		t.Fatal("code of a cancelled request accepted")
	}
	if len(e.backend.Names()) != 0 {
		t.Fatal("account created for a cancelled request")
	}
}

// TestSurfaceGoneAtApproval: a surface that disconnects while the
// technician approves, however that races with the grant, leaves the
// account disabled, and the audit log says the session ended.
func TestSurfaceGoneAtApproval(t *testing.T) {
	for _, wait := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond} {
		t.Run(wait.String(), func(t *testing.T) {
			e := newEnv(t, "")
			phone := e.msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
			c := e.dial(t)
			if err := c.Begin(t.Context(), "logon", 0); err != nil {
				t.Fatal(err)
			}
			qr := next[ipcserver.QR](t, c)
			_, err := phone.Login(t.Context(), phone.PhoneMux(t, e.net), qr.Text, agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 {
				c.Close()
				time.Sleep(wait)
				return protocol.DecisionApprove
			}})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				ev := agenttest.Events(e.agent.Records(t))
				i, lerr := e.backend.Lookup(t.Context(), "msp-nik")
				if lerr == nil && !i.Enabled && slices.Contains(ev, "session.ended") {
					if want := []string{"login.approved", "account.created", "account.enabled", "session.ended", "account.disabled"}; !slices.Equal(ev, want) {
						t.Fatalf("audit %v, want %v", ev, want)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("account %+v (%v), audit %v: still enabled after its surface went away", i, lerr, ev)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
