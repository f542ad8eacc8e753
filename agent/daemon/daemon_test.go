package daemon_test

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

var debugLog = flag.Bool("debuglog", false, "log the relay, the relay clients, the agent and the phone's mux at Debug level to stderr")

// testLog is the logger of one component: discarded, or with -debuglog
// written to stderr (not t.Log: components may log after the test ends).
func testLog(component string) *slog.Logger {
	if !*debugLog {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", component)
}

// relay runs a real relay on 127.0.0.1 with a key derived from seed (so
// a restarted relay keeps its pin) and the given limits (zero: defaults),
// and returns it, its address, pin and stop.
func startRelay(t testing.TB, listen string, seed uint64, lim server.Limits) (*server.Server, string, [32]byte, func()) {
	return startRelayWith(t, listen, seed, lim, nil)
}

// startRelayWith is startRelay with the relay's configuration adjusted
// by tweak (nil: none).
func startRelayWith(t testing.TB, listen string, seed uint64, lim server.Limits, tweak func(*server.Config)) (*server.Server, string, [32]byte, func()) {
	t.Helper()
	rcfg := server.Config{Listen: listen, Limits: lim, Rand: mrand.NewChaCha8([32]byte{byte(seed)}), Logger: testLog("relay")}
	if tweak != nil {
		tweak(&rcfg)
	}
	srv, err := server.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ListenAndServe(ctx) }()
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("relay not ready")
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx) // graceful: tells peers to reconnect
			scancel()
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return srv, srv.Addr().String(), srv.Pin(), stop
}

func relayClient(t testing.TB, id ed25519.PrivateKey, home string, pin [32]byte) daemon.Relay {
	rl, _ := relayClientStop(t, id, home, pin)
	return rl
}

func relayClientStop(t testing.TB, id ed25519.PrivateKey, home string, pin [32]byte) (daemon.Relay, func()) {
	rl, err := daemon.QUICRelay(id, home, [][32]byte{pin}, testLog("relay-client"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rl.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return rl, stop
}

type world struct {
	relay     *server.Server
	relayAddr string
	pin       [32]byte
	stopRelay func()
	msp       *agenttest.MSP
	console   *agenttest.Console
	stopCons  func()
	backend   *accountstest.Backend
	state     string
	sock      string
	info      daemon.Info
	stopAgent func()
	// tweak, if set, adjusts the agent's configuration at each start.
	tweak func(*daemon.Config)
}

// newWorld starts a relay with the given limits (zero: defaults), a
// console and an agent enrolled with it.
func newWorld(t testing.TB, lim server.Limits) *world {
	return newWorldWith(t, lim, nil)
}

// newWorldWith is newWorld with the agent's configuration adjusted by
// tweak.
func newWorldWith(t testing.TB, lim server.Limits, tweak func(*daemon.Config)) *world {
	return newWorldRelay(t, lim, nil, tweak)
}

// newWorldRelay is newWorldWith with the relay's configuration adjusted
// by relayTweak.
func newWorldRelay(t testing.TB, lim server.Limits, relayTweak func(*server.Config), tweak func(*daemon.Config)) *world {
	w := &world{msp: agenttest.NewMSP(t, "acme"), backend: accountstest.New(accountstest.Config{}), tweak: tweak}
	w.relay, w.relayAddr, w.pin, w.stopRelay = startRelayWith(t, "127.0.0.1:0", 1, lim, relayTweak)
	id, nk := agenttest.NewConsoleKeys(t)
	crl, stopCons := relayClientStop(t, id, w.relayAddr, w.pin)
	w.stopCons = stopCons
	w.console = agenttest.NewConsole(t, w.msp, id, nk, crl, w.msp.Policy(1))
	w.state = filepath.Join(t.TempDir(), "state")
	w.sock = filepath.Join(t.TempDir(), "run", "agent.sock") // the agent creates run/ 0700
	_, err := enroll.Enroll(t.Context(), enroll.Config{
		StateDir: w.state, Token: w.console.Token(t, [][32]byte{w.pin}, time.Now().Add(time.Hour), 1), Name: "W11-L-PASSWORD", OS: "linux",
		Dial: func(id ed25519.PrivateKey, home string, pins [][32]byte) (enroll.Relay, error) {
			return daemon.QUICRelay(id, home, pins, slog.New(slog.DiscardHandler))
		},
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	w.startAgent(t)
	return w
}

func (w *world) startAgent(t testing.TB) {
	ready := make(chan daemon.Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := daemon.Config{
		StateDir: w.state, Backend: w.backend, IPCPath: w.sock, Relay: daemon.QUICRelay, ShipInterval: 200 * time.Millisecond,
		Ready: func(i daemon.Info) { ready <- i }, Logger: testLog("agent"),
	}
	if w.tweak != nil {
		w.tweak(&cfg)
	}
	go func() { done <- daemon.Run(ctx, cfg) }()
	select {
	case w.info = <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready")
	}
	stopped := false
	w.stopAgent = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}
	t.Cleanup(w.stopAgent)
}

func (w *world) phone(t testing.TB, username string) (*agenttest.Phone, *channel.Mux) {
	p := w.msp.NewPhone(t, username, protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	rl := relayClient(t, p.Identity, w.relayAddr, w.pin)
	mux := channel.New(channel.Config{Relay: rl, Static: p.Noise, Logger: testLog("phone")})
	agenttest.Pump(t, mux, rl.Recv)
	return p, mux
}

// login runs one login through the surface socket and the phone; it
// returns the credential.
func (w *world) login(t testing.TB, p *agenttest.Phone, mux *channel.Mux) (*ipcserver.Client, *ipcserver.Credential) {
	t.Helper()
	c, err := ipcserver.Dial(t.Context(), w.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	qr := firstQR(t, ctx, c)
	var res protocol.LoginResult
	for { // the phone's relay connection may still be coming up
		actx, acancel := context.WithTimeout(ctx, 3*time.Second) // a lost first send is retried
		res, err = p.Login(actx, mux, qr.Text, agenttest.Scan{})
		acancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
		if m, err := c.Next(ctx); err == nil { // a fresh code after a failed scan
			if q, ok := m.(*ipcserver.QR); ok {
				qr = q
			}
		}
	}
	if err != nil || !res.OK {
		t.Fatalf("phone: %+v %v", res, err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cred, ok := m.(*ipcserver.Credential); ok {
			return c, cred
		}
	}
}

// firstQR returns the surface's first QR code, skipping the Status the
// agent sends while its relay connection comes up.
func firstQR(tb testing.TB, ctx context.Context, c *ipcserver.Client) *ipcserver.QR {
	tb.Helper()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		switch m := m.(type) {
		case *ipcserver.QR:
			return m
		case *ipcserver.Status:
			continue
		default:
			tb.Fatalf("surface got %T, want a QR code", m)
		}
	}
}

func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	eventuallyWithin(t, what, 15*time.Second, f)
}

// eventuallyWithin is eventually with another bound.
func eventuallyWithin(t testing.TB, what string, bound time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOverRealRelay: enrollment with a console, a QR login by a phone, the
// surface's credential and session end, audit shipped to the console and
// verified there, policy pushes (newer applied, older refused), all over
// a real QUIC relay on loopback.
func TestOverRealRelay(t *testing.T) {
	w := newWorld(t, server.Limits{})
	p, mux := w.phone(t, "nik")
	c, cred := w.login(t, p, mux)
	pw := password.FromBytes(cred.Password)
	if err := w.backend.Login(t.Context(), cred.Username, pw); err != nil || cred.Username != "msp-nik" {
		t.Fatalf("credential for %s: %v", cred.Username, err)
	}
	if err := c.End(t.Context(), cred.Session); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Next(t.Context()); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*ipcserver.Ended); !ok {
		t.Fatalf("got %T", m)
	}
	if err := w.backend.Login(t.Context(), cred.Username, pw); err == nil {
		t.Fatal("password works after the session ended")
	}
	want := []string{"policy.applied", "login.approved", "account.created", "account.enabled", "session.ended", "account.disabled"}
	eventually(t, "audit at the console", func() bool {
		return slices.Equal(agenttest.Events(w.console.Records(w.info.Addr.Mailbox)), want)
	})

	// Policy pushes.
	p2 := w.msp.Policy(2)
	ack, err := w.console.PushPolicy(t.Context(), w.info.Addr, w.console.SetPolicy(t, p2))
	if err != nil || len(ack.Versions) != 1 || ack.Versions[0].Version != 2 {
		t.Fatalf("push v2: %+v %v", ack, err)
	}
	ack, err = w.console.PushPolicy(t.Context(), w.info.Addr, w.console.SetPolicy(t, w.msp.Policy(1)))
	if err != nil || ack.Versions[0].Version != 2 {
		t.Fatalf("push v1: %+v %v", ack, err)
	}
	eventually(t, "policy audit at the console", func() bool {
		ev := agenttest.Events(w.console.Records(w.info.Addr.Mailbox))
		return len(ev) == len(want)+2 && ev[len(ev)-2] == "policy.applied" && ev[len(ev)-1] == "policy.rejected"
	})

	// A paged push is refused whole: an agent takes one page.
	p3 := w.console.SetPolicy(t, w.msp.Policy(3))
	for _, push := range []protocol.PolicyPush{{Policies: []protocol.Signed{p3}, More: true}, {Policies: []protocol.Signed{p3}, Page: 1}} {
		_, err = w.console.Push(t.Context(), w.info.Addr, &push)
		if pe, ok := err.(*protocol.PeerError); !ok || pe.Code != protocol.CodeBadRequest {
			t.Fatalf("paged push (page %d, more %v): %v, want CodeBadRequest", push.Page, push.More, err)
		}
	}
	ack, err = w.console.PushPolicy(t.Context(), w.info.Addr, w.console.SetPolicy(t, w.msp.Policy(1)))
	if err != nil || ack.Versions[0].Version != 2 {
		t.Fatalf("after paged pushes: %+v %v, want version 2 still held", ack, err)
	}
}

// TestRelayDown: with the relay gone the agent keeps running and keeps
// serving login surfaces (the QR is shown; the scan cannot reach it), and
// it stops cleanly.
func TestRelayDown(t *testing.T) {
	w := newWorld(t, server.Limits{})
	w.stopRelay()
	c, err := ipcserver.Dial(t.Context(), w.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Begin(t.Context(), "unlock", 0); err != nil {
		t.Fatal(err)
	}
	firstQR(t, t.Context(), c)
	if len(w.backend.Names()) != 0 {
		t.Fatal("account touched")
	}
	c.Close()
	w.stopAgent() // fails the test if Run returned an error
}

// TestConsoleDown: without the console a login still works (the decision
// is local from the cached policy) and its audit records wait, unacknowledged,
// in the store.
func TestConsoleDown(t *testing.T) {
	w := newWorld(t, server.Limits{})
	// Shipped and acknowledged: the console holds the record and the agent
	// has marked it (an ack still in flight when the console stops would
	// leave it to ship again).
	eventually(t, "enrollment audit shipped", func() bool {
		if len(w.console.Records(w.info.Addr.Mailbox)) != 1 {
			return false
		}
		st, err := store.Open(t.Context(), filepath.Join(w.state, enroll.DBFile), store.Config{})
		if err != nil {
			return false
		}
		defer st.Close()
		var rows []store.AuditRow
		_ = st.View(t.Context(), func(tx *store.Tx) error { rows, err = tx.Audit(0, 100, true); return err })
		return err == nil && len(rows) == 0
	})
	w.stopCons()
	p, mux := w.phone(t, "nik")
	_, cred := w.login(t, p, mux)
	if cred.Username != "msp-nik" {
		t.Fatal(cred.Username)
	}
	time.Sleep(500 * time.Millisecond) // a few shipping attempts
	st, err := store.Open(t.Context(), filepath.Join(w.state, enroll.DBFile), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rows []store.AuditRow
	_ = st.View(t.Context(), func(tx *store.Tx) error { rows, err = tx.Audit(0, 100, true); return err })
	recs, err := audit.Decode(rows)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := func() ([32]byte, error) {
		var all []store.AuditRow
		_ = st.View(t.Context(), func(tx *store.Tx) error { all, _ = tx.Audit(0, 1, false); return nil })
		s, _ := audit.Decode(all)
		return s[0].Hash()
	}()
	k, err := keys.Load(w.state)
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(k.IdentityPublic(), 1, h1, recs)
	if err != nil || len(rows) != 3 || rows[0].Seq != 2 {
		t.Fatalf("unacknowledged records: %d from %d, %v", len(rows), rows[0].Seq, err)
	}
	if n := len(w.console.Records(w.info.Addr.Mailbox)); n != 1 {
		t.Fatalf("console has %d records while down", n)
	}
}

// qrLogins runs n QR logins back to back, as technicians at one computer
// would one after the other: a surface session shows a code, the phone
// scans and approves it, the surface gets the credential and ends the
// session. It returns each login's time from scan to credential and
// reports every lost login (the phone's error or refusal) as an error of
// tb.
func (w *world) qrLogins(tb testing.TB, p *agenttest.Phone, mux *channel.Mux, n int) []time.Duration {
	tb.Helper()
	d := make([]time.Duration, 0, n)
	for i := range n {
		took, err := w.qrLogin(tb, p, mux)
		if err != nil {
			tb.Errorf("login %d of %d lost: %v", i+1, n, err)
			continue
		}
		d = append(d, took)
	}
	return d
}

// qrLogin is one login of qrLogins. Failures of the login surface are
// fatal; the phone's are returned.
func (w *world) qrLogin(tb testing.TB, p *agenttest.Phone, mux *channel.Mux) (time.Duration, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 20*time.Second)
	defer cancel()
	c, err := ipcserver.Dial(ctx, w.sock)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if err := c.Begin(ctx, "logon", 0); err != nil {
		tb.Fatal(err)
	}
	qr := firstQR(tb, ctx, c)
	start := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	res, err := p.Login(pctx, mux, qr.Text, agenttest.Scan{})
	pcancel()
	if err != nil || !res.OK {
		return 0, fmt.Errorf("after %v: %+v %v", time.Since(start), res, err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			tb.Fatalf("surface after an approved login: %v", err)
		}
		if cred, ok := m.(*ipcserver.Credential); ok {
			took := time.Since(start)
			if err := c.End(ctx, cred.Session); err != nil {
				tb.Fatal(err)
			}
			if m, err := c.Next(ctx); err != nil {
				tb.Fatal(err)
			} else if _, ok := m.(*ipcserver.Ended); !ok {
				tb.Fatalf("surface got %T after End, want Ended", m)
			}
			return took, nil
		}
	}
}

// rateLimited is how many Sends the relay has refused as rate-limited.
func (w *world) rateLimited(t testing.TB) int64 {
	rec := httptest.NewRecorder()
	w.relay.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(line, `jitkey_relay_drops_total{reason="rate-limited"} `); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

// TestBackToBackLogins: 100 QR logins in a row over the real relay with
// its default limits; none may be lost. (TestBackToBackLoginsStress, not
// under the race detector, runs 300.)
func TestBackToBackLogins(t *testing.T) {
	w := newWorld(t, server.Limits{})
	p, mux := w.phone(t, "nik")
	w.login(t, p, mux) // warm up relay connections
	start := time.Now()
	d := w.qrLogins(t, p, mux, 100)
	t.Logf("%d logins in %v; the relay refused %d sends as rate-limited", len(d), time.Since(start), w.rateLimited(t))
}
