package login_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

type env struct {
	msp     *agenttest.MSP
	agent   *agenttest.Agent
	backend *accountstest.Backend
	srv     *login.Server
	net     *channeltest.Network
	policy  protocol.Policy
	// co asks second approvers (SPEC.md 11.14) over the agent's mux.
	co *push.Server
}

func newEnv(t *testing.T, edit func(p *protocol.Policy, dev protocol.DeviceID)) *env {
	return newEnvAt(t, edit, nil)
}

// newEnvAt is newEnv with the login server's clock (time.Now when nil).
func newEnvAt(t *testing.T, edit func(p *protocol.Policy, dev protocol.DeviceID), now func() time.Time) *env {
	e := &env{msp: agenttest.NewMSP(t, "acme"), net: channeltest.NewNetwork()}
	e.agent = agenttest.NewAgent(t, e.msp, nil, store.Config{})
	e.policy = e.msp.Policy(1)
	if edit != nil {
		edit(&e.policy, e.agent.Device.DeviceID)
	}
	if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &e.policy), time.Now()); err != nil {
		t.Fatal(err)
	}
	e.backend = accountstest.New(accountstest.Config{})
	mgr := lifecycle.New(lifecycle.Config{Backend: e.backend, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader})
	addr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: e.agent.Keys.Mailbox()}
	e.srv = login.New(login.Config{
		Store: e.agent.Store, Audit: e.agent.Audit, Lifecycle: mgr, Static: e.agent.Keys.NoisePublic(),
		Addr: func() protocol.PeerAddr { return addr }, StepTimeout: 5 * time.Second, Now: now,
		CoApprover: login.CoApproverFunc(func(ctx context.Context, q *push.CoRequest) (*push.CoApproved, error) {
			return e.co.CoApprove(ctx, q)
		}),
	})
	peer := e.net.Join(addr)
	mux := channel.New(channel.Config{Relay: peer, Static: e.agent.Keys.Noise, Accept: e.srv.Accept, Handle: e.srv.Handle})
	e.co = push.New(push.Config{Store: e.agent.Store, Audit: e.agent.Audit, Lifecycle: mgr, Dial: mux.Dial,
		Retry: 50 * time.Millisecond, CoTimeout: 5 * time.Second, Now: now})
	e.pump(t, mux, peer)
	return e
}

func (e *env) pump(t *testing.T, mux *channel.Mux, peer *channeltest.Peer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mux.Pump(ctx, peer.Recv); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// begin starts a login request and returns it with its first code.
func (e *env) begin(t *testing.T, action uint8, surface string) (*login.Request, login.QR) {
	t.Helper()
	req, err := e.srv.Begin(t.Context(), action, surface)
	if err != nil {
		t.Fatal(err)
	}
	return req, <-req.QR()
}

// phoneMux joins p to the network. Its handshakes wait up to 5 s for the
// agent (the machine may be loaded); a test that expects no answer waits
// with unanswered instead.
func (e *env) phoneMux(t *testing.T, p *agenttest.Phone) *channel.Mux {
	peer := e.net.Join(p.Addr())
	mux := channel.New(channel.Config{Relay: peer, Static: p.Noise, HandshakeTimeout: 5 * time.Second})
	e.pump(t, mux, peer)
	return mux
}

// clock is an injected clock that the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// setDeviceNotAfter replaces the agent's device certificate with one
// valid until notAfter.
func (e *env) setDeviceNotAfter(t *testing.T, notAfter time.Time) {
	t.Helper()
	dc := e.agent.Device
	dc.NotAfter = notAfter.Unix()
	enr := e.agent.Enrollment
	enr.DeviceCert = e.msp.Sign(t, protocol.DocDeviceCert, &dc)
	if err := e.agent.Store.Update(t.Context(), func(tx *store.Tx) error { return tx.SetEnrollment(enr) }); err != nil {
		t.Fatal(err)
	}
}

// unanswered is the context of a scan the agent must not answer: the
// handshake is given a second.
func unanswered(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

func admin(tenant string) protocol.Grant {
	return protocol.Grant{Tenant: tenant, Role: protocol.RoleAdmin}
}

func TestQRLogin(t *testing.T) {
	type tc struct {
		name   string
		policy func(p *protocol.Policy, dev protocol.DeviceID)
		phone  func(t *testing.T, e *env) *agenttest.Phone
		scan   func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan
		code   uint8  // 0: success
		err    error  // request error, when the refusal ends the request
		reason string // substring of the login.denied reason
		// open: refused before a verified decision, so only that scan
		// ends; the request stays open and the same code logs in another
		// technician.
		open bool
	}
	nik := func(t *testing.T, e *env) *agenttest.Phone { return e.msp.NewPhone(t, "nik", admin("acme")) }
	tests := []tc{
		{name: "approved", phone: nik},
		{name: "global admin", phone: func(t *testing.T, e *env) *agenttest.Phone {
			return e.msp.NewPhone(t, "gina", protocol.Grant{Role: protocol.RoleGlobalAdmin})
		}, policy: func(p *protocol.Policy, dev protocol.DeviceID) {
			p.Shares = []protocol.DeviceShare{{DeviceID: dev, Entries: []string{"someone"}}}
		}},
		{name: "unknown technician", phone: func(t *testing.T, e *env) *agenttest.Phone {
			return agenttest.NewMSP(t, "acme").NewPhone(t, "nik", admin("acme"))
		}, code: protocol.CodeRefused, open: true, reason: "technician certificate"},
		{name: "revoked", phone: nik, policy: func(p *protocol.Policy, _ protocol.DeviceID) { p.Revoked = []uint64{102} },
			code: protocol.CodeRefused, open: true, reason: "revoked"},
		{name: "not shared", phone: nik, policy: func(p *protocol.Policy, dev protocol.DeviceID) {
			p.Shares = []protocol.DeviceShare{{DeviceID: dev, Entries: []string{"alice"}}}
		}, code: protocol.CodeRefused, open: true, reason: "not shared"},
		{name: "shared by name", phone: nik, policy: func(p *protocol.Policy, dev protocol.DeviceID) {
			p.Shares = []protocol.DeviceShare{{DeviceID: dev, Entries: []string{"nik"}}}
		}},
		{name: "not delegated", phone: func(t *testing.T, e *env) *agenttest.Phone { return e.msp.NewPhone(t, "nik", admin("globex")) },
			code: protocol.CodeRefused, open: true, reason: "not delegated"},
		{name: "expired certificate", phone: func(t *testing.T, e *env) *agenttest.Phone {
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			p.Cert.NotAfter = time.Now().Add(-time.Minute).Unix()
			e.msp.Resign(t, p)
			return p
		}, code: protocol.CodeRefused, open: true, reason: "validity"},
		{name: "stolen certificate", phone: func(t *testing.T, e *env) *agenttest.Phone {
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			thief := agenttest.NewUncertifiedPhone(t)
			thief.Cert, thief.Signed, thief.MSPKey = p.Cert, p.Signed, p.MSPKey
			return thief
		}, code: protocol.CodeRefused, open: true, reason: "noise key"},
		{name: "forged approval", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return agenttest.Scan{Sign: func(a *protocol.Approval) (protocol.Signed, error) {
				return protocol.SignP256(protocol.DocApproval, a, k, rand.Reader)
			}}
		}, code: protocol.CodeRefused, open: true, reason: "signature"},
		{name: "expired approval", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.Time -= 600 }}
		}, code: protocol.CodeRefused, open: true, reason: "stale"},
		{name: "other handshake", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.HandshakeHash = make([]byte, 32) }}
		}, code: protocol.CodeRefused, open: true, reason: "does not match"},
		{name: "other action", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.Action = protocol.ActionSudo }}
		}, code: protocol.CodeRefused, open: true, reason: "does not match"},
		{name: "technician denies", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 { return protocol.DecisionDeny }}
		}, code: protocol.CodeDenied, err: login.ErrDenied, reason: "denied by the technician"},
		{name: "revoked while deciding", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 {
				np := e.policy
				np.Version, np.Revoked = 2, []uint64{p.Cert.Serial}
				if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &np), time.Now()); err != nil {
					t.Error(err)
				}
				return protocol.DecisionApprove
			}}
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "revoked"},
		{name: "device removed while deciding", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 {
				np := e.policy
				np.Version, np.RevokedDevices = 2, []uint64{e.agent.Device.Serial}
				if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &np), time.Now()); err != nil {
					t.Error(err)
				}
				return protocol.DecisionApprove
			}}
		}, code: protocol.CodeRefused, err: login.ErrRemoved, reason: "device removed by the MSP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.policy)
			p := tc.phone(t, e)
			req, q := e.begin(t, protocol.ActionLogon, "logon")
			defer req.Cancel(t.Context())
			var scan agenttest.Scan
			if tc.scan != nil {
				scan = tc.scan(t, e, p)
			}
			var lr protocol.LoginRequest
			scan.Request = &lr
			res, err := p.Login(t.Context(), e.phoneMux(t, p), q.Text, scan)
			if err != nil {
				t.Fatalf("phone: %v", err)
			}
			recs := e.agent.Records(t)
			last := recs[len(recs)-1]
			if tc.code == 0 {
				grant, rerr := req.Result()
				if !res.OK || res.Account != lr.Account || rerr != nil {
					t.Fatalf("result %+v, request err %v", res, rerr)
				}
				if err := e.backend.Login(t.Context(), grant.Account, grant.Password); err != nil {
					t.Fatalf("granted password does not log in: %v", err)
				}
				if ev := agenttest.Events(recs); ev[len(ev)-3] != "login.approved" || last.Event != "account.enabled" || last.TechID != p.Cert.TechID {
					t.Fatalf("audit %v", ev)
				}
				return
			}
			if res.OK || res.Code != tc.code {
				t.Fatalf("result %+v, want code %d", res, tc.code)
			}
			if strings.Contains(res.Text, tc.reason) && tc.code == protocol.CodeRefused {
				t.Fatalf("phone told which check failed: %q", res.Text)
			}
			if last.Event != "login.denied" || !strings.Contains(last.Reason, tc.reason) {
				t.Fatalf("last audit %s %q, want login.denied with %q", last.Event, last.Reason, tc.reason)
			}
			for _, n := range e.backend.Names() {
				if i, _ := e.backend.Lookup(t.Context(), n); i.Enabled {
					t.Fatalf("%s enabled after a refusal", n)
				}
			}
			if !tc.open {
				if _, rerr := req.Result(); !errors.Is(rerr, tc.err) {
					t.Fatalf("request err %v, want %v", rerr, tc.err)
				}
				if last.Detail != "" {
					t.Fatalf("audit detail %q of a refusal that ends the request", last.Detail)
				}
				return
			}
			if last.Detail != "refused scan; request stays open" {
				t.Fatalf("audit detail %q, want the scan refused and the request open", last.Detail)
			}
			// The refused scan spent neither the request nor its code.
			alice := e.msp.NewPhone(t, "alice", admin("acme"))
			res, err = alice.Login(t.Context(), e.phoneMux(t, alice), q.Text, agenttest.Scan{})
			if err != nil || !res.OK {
				t.Fatalf("the technician's scan of the same code after the refusal: %+v %v", res, err)
			}
			if g, err := req.Result(); err != nil || g.Account != res.Account {
				t.Fatalf("request: %q %v, want %q", g.Account, err, res.Account)
			}
		})
	}
}

// TestCertificateValidity: the agent checks its own device
// certificate's validity window when the phone says hello, and both
// certificates' windows again in the transaction that consumes the
// approval, so a certificate that expires while the technician decides
// enables nothing. Each failure is audited with its own reason.
func TestCertificateValidity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, e *env, p *agenttest.Phone, clk *clock)
		code   uint8
		err    error
		reason string // prefix of the login.denied reason
	}{
		{name: "device certificate expired at hello", setup: func(t *testing.T, e *env, p *agenttest.Phone, clk *clock) {
			e.setDeviceNotAfter(t, clk.Now().Add(-time.Minute))
		}, code: protocol.CodeUnavailable, err: login.ErrNotEnrolled, reason: "device certificate: "},
		{name: "device certificate expires while deciding", setup: func(t *testing.T, e *env, p *agenttest.Phone, clk *clock) {
			e.setDeviceNotAfter(t, clk.Now().Add(30*time.Second))
		}, code: protocol.CodeUnavailable, err: login.ErrNotEnrolled, reason: "device certificate at approval: "},
		{name: "technician certificate expires while deciding", setup: func(t *testing.T, e *env, p *agenttest.Phone, clk *clock) {
			p.Cert.NotAfter = clk.Now().Add(30 * time.Second).Unix()
			e.msp.Resign(t, p)
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "technician certificate at approval: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			e := newEnvAt(t, nil, clk.Now)
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			tc.setup(t, e, p, clk)
			req, q := e.begin(t, protocol.ActionLogon, "logon")
			defer req.Cancel(t.Context())
			// The technician takes a minute to decide; the phone's clock
			// agrees with the agent's.
			scan := agenttest.Scan{Now: clk.Now, Decide: func(protocol.LoginRequest) uint8 {
				clk.Advance(time.Minute)
				return protocol.DecisionApprove
			}}
			res, err := p.Login(t.Context(), e.phoneMux(t, p), q.Text, scan)
			if err != nil {
				t.Fatalf("phone: %v", err)
			}
			if res.OK || res.Code != tc.code {
				t.Fatalf("result %+v, want code %d", res, tc.code)
			}
			if _, err := req.Result(); !errors.Is(err, tc.err) {
				t.Fatalf("request: %v, want %v", err, tc.err)
			}
			recs := e.agent.Records(t)
			if last := recs[len(recs)-1]; last.Event != "login.denied" || !strings.HasPrefix(last.Reason, tc.reason) {
				t.Fatalf("last audit %s %q, want login.denied %q...", last.Event, last.Reason, tc.reason)
			}
			if n := e.backend.Names(); len(n) != 0 {
				t.Fatalf("accounts %v touched", n)
			}
		})
	}
}

func TestReplayedApproval(t *testing.T) {
	e := newEnv(t, nil)
	p := e.msp.NewPhone(t, "nik", admin("acme"))
	mux := e.phoneMux(t, p)
	_, q := e.begin(t, protocol.ActionLogon, "logon")
	var sent protocol.Signed
	if res, err := p.Login(t.Context(), mux, q.Text, agenttest.Scan{Sent: &sent}); err != nil || !res.OK {
		t.Fatalf("first login: %+v %v", res, err)
	}
	// The same QR code again: single use, the handshake is never answered.
	if _, err := p.Login(unanswered(t), mux, q.Text, agenttest.Scan{}); err == nil {
		t.Fatal("a used QR code was accepted again")
	}
	// A new request, the old approval replayed: refused by its binding to
	// the old session and handshake (TestApprovalUsedBefore reaches the
	// persisted single-use check behind it). Anyone who saw the code could
	// do this, so only that scan ends.
	req2, q2 := e.begin(t, protocol.ActionLogon, "logon")
	defer req2.Cancel(t.Context())
	res, err := p.Login(t.Context(), mux, q2.Text, agenttest.Scan{Replay: &sent})
	if err != nil || res.OK || res.Code != protocol.CodeRefused {
		t.Fatalf("replay: %+v %v", res, err)
	}
	recs := e.agent.Records(t)
	if last := recs[len(recs)-1]; last.Event != "login.denied" || !strings.HasPrefix(last.Reason, "approval: ") || last.Detail != "refused scan; request stays open" {
		t.Fatalf("last audit %s %q %q", last.Event, last.Reason, last.Detail)
	}
	select {
	case <-req2.Done():
		_, err := req2.Result()
		t.Fatalf("a replayed approval ended the request: %v", err)
	default:
	}
}

// TestApprovalUsedBefore reaches the persisted single-use check: an
// approval that matches this session and handshake, but whose digest the
// store already holds (as after a use by a concurrent session), is
// refused as "approval replayed" and enables nothing.
func TestApprovalUsedBefore(t *testing.T) {
	e := newEnv(t, nil)
	p := e.msp.NewPhone(t, "nik", admin("acme"))
	req, q := e.begin(t, protocol.ActionLogon, "logon")
	defer req.Cancel(t.Context())
	scan := agenttest.Scan{Sign: func(a *protocol.Approval) (protocol.Signed, error) {
		s, err := protocol.SignP256(protocol.DocApproval, a, p.Approval, rand.Reader)
		if err != nil {
			return s, err
		}
		id := sha256.Sum256(s.Body)
		err = e.agent.Store.Update(t.Context(), func(tx *store.Tx) error {
			return tx.UseApproval(id[:], time.Now(), time.Now().Add(time.Hour))
		})
		return s, err
	}}
	res, err := p.Login(t.Context(), e.phoneMux(t, p), q.Text, scan)
	if err != nil || res.OK || res.Code != protocol.CodeRefused {
		t.Fatalf("result %+v %v, want refused", res, err)
	}
	if _, err := req.Result(); !errors.Is(err, login.ErrRefused) {
		t.Fatalf("request: %v", err)
	}
	recs := e.agent.Records(t)
	if last := recs[len(recs)-1]; last.Event != "login.denied" || last.Reason != "approval replayed" {
		t.Fatalf("last audit %s %q, want login.denied \"approval replayed\"", last.Event, last.Reason)
	}
	if len(e.backend.Names()) != 0 {
		t.Fatalf("accounts %v after a replayed approval", e.backend.Names())
	}
}

func TestCredentialOnce(t *testing.T) {
	e := newEnv(t, nil)
	p := e.msp.NewPhone(t, "nik", admin("acme"))
	req, q := e.begin(t, protocol.ActionSudo, "sudo")
	if res, err := p.Login(t.Context(), e.phoneMux(t, p), q.Text, agenttest.Scan{}); err != nil || !res.OK {
		t.Fatalf("%+v %v", res, err)
	}
	g1, _ := req.Result()
	g2, _ := req.Result()
	if g1.Password.IsZero() || !g2.Password.IsZero() {
		t.Fatal("credential not handed over exactly once")
	}
}

func TestRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		srv := login.New(login.Config{
			Store: e.agent.Store, Audit: e.agent.Audit, Static: e.agent.Keys.NoisePublic(), Rotation: 45 * time.Second,
			Addr: func() protocol.PeerAddr { return protocol.PeerAddr{Relay: agenttest.Relay} },
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, err := srv.Begin(ctx, protocol.ActionUnlock, "unlock")
		if err != nil {
			t.Fatal(err)
		}
		hello := func(text string) channel.Hello {
			q, err := protocol.DecodeQR(text, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if q.Action != protocol.ActionUnlock || q.DeviceID != e.agent.Device.DeviceID {
				t.Fatalf("QR payload %+v", q)
			}
			sid, _ := protocol.DeriveSessionID(q.Secret[:], protocol.LabelQRSession)
			return channel.Hello{Session: sid, Flow: protocol.FlowQRLogin}
		}
		q1 := <-req.QR()
		if time.Until(q1.Expires) != 45*time.Second {
			t.Fatalf("expires in %v", time.Until(q1.Expires))
		}
		time.Sleep(45 * time.Second)
		synctest.Wait()
		q2 := <-req.QR()
		if q2.Text == q1.Text {
			t.Fatal("code not rotated")
		}
		// The old code is still accepted within the grace period (until
		// used: TestOneDecisionPerCode; bounds: TestScanBounds).
		if _, _, err := srv.Accept(ctx, hello(q1.Text)); err != nil {
			t.Fatalf("old code within grace: %v", err)
		}
		synctest.Wait()
		q3 := <-req.QR() // a scan shows a fresh code at once
		time.Sleep(login.Grace + time.Second)
		if _, _, err := srv.Accept(ctx, hello(q2.Text)); err == nil {
			t.Fatal("rotated-out code accepted after the grace period")
		}
		if _, _, err := srv.Accept(ctx, hello(q3.Text)); err != nil {
			t.Fatalf("current code: %v", err)
		}
		req.Cancel(ctx)
		if _, err := req.Result(); !errors.Is(err, login.ErrCancelled) {
			t.Fatalf("after Cancel: %v", err)
		}
	})
}

// sessionOf returns the session id of a login QR code.
func sessionOf(t *testing.T, text string) protocol.SessionID {
	t.Helper()
	q, err := protocol.DecodeQR(text, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelQRSession)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// open completes the handshake of a QR code's session from mux, as
// anyone who saw the code can (the PSK is in it), and sends nothing.
func open(t *testing.T, mux *channel.Mux, text string) *channel.Conn {
	t.Helper()
	q, err := protocol.DecodeQR(text, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	psk, err := protocol.Derive(q.Secret[:], protocol.LabelQRPSK, nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mux.Dial(t.Context(), channel.DialConfig{
		To: q.Addr(), Flow: protocol.FlowQRLogin, PeerStatic: q.Static, PSK: psk, Session: sessionOf(t, text),
	})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestPhotographedCode (F3): whoever photographed the QR code opens
// sessions with it: one stays silent, one sends a LoginHello with a
// certificate of its own. The refusal ends that session only and the
// code keeps working: the technician's scan, from another phone with the
// same session id, is approved, and the silent session is then told the
// request is no longer open.
func TestPhotographedCode(t *testing.T) {
	e := newEnv(t, nil)
	req, q := e.begin(t, protocol.ActionLogon, "logon")
	defer req.Cancel(t.Context())
	silent := agenttest.NewUncertifiedPhone(t)
	quiet := open(t, e.phoneMux(t, silent), q.Text)

	forger := agenttest.NewMSP(t, "acme").NewPhone(t, "nik", admin("acme"))
	res, err := forger.Login(t.Context(), e.phoneMux(t, forger), q.Text, agenttest.Scan{})
	if err != nil || res.OK || res.Code != protocol.CodeRefused {
		t.Fatalf("photographer's scan: %+v %v, want refused", res, err)
	}
	recs := e.agent.Records(t)
	if last := recs[len(recs)-1]; last.Event != "login.denied" || !strings.HasPrefix(last.Reason, "technician certificate") ||
		last.Detail != "refused scan; request stays open" {
		t.Fatalf("last audit %s %q %q", last.Event, last.Reason, last.Detail)
	}

	nik := e.msp.NewPhone(t, "nik", admin("acme"))
	res, err = nik.Login(t.Context(), e.phoneMux(t, nik), q.Text, agenttest.Scan{})
	if err != nil || !res.OK {
		t.Fatalf("technician's scan: %+v %v", res, err)
	}
	if g, err := req.Result(); err != nil || g.Account != "msp-nik" {
		t.Fatalf("request: %q %v", g.Account, err)
	}
	// The agent answers at once; without that answer its session would
	// end silently after StepTimeout (5 s) and this wait fail.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var closed protocol.LoginResult
	if err := quiet.Recv(ctx, protocol.MsgLoginResult, &closed); err != nil || closed.OK || closed.Code != protocol.CodeExpired {
		t.Fatalf("silent session after the login: %+v %v, want refused as expired", closed, err)
	}
	ev := agenttest.Events(e.agent.Records(t))
	if want := []string{"login.denied", "login.approved", "account.created", "account.enabled"}; !slices.Equal(ev[len(ev)-4:], want) {
		t.Fatalf("audit %v, want it to end with %v", ev, want)
	}
}

// TestOneDecisionPerCode: two technicians scan the same code. The first
// verified decision is acted upon and consumes the code; the other scan,
// its technician still deciding, is refused as no longer open, audited,
// and a later scan of the code is not answered.
func TestOneDecisionPerCode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		decision uint8
		code     uint8
		err      error
	}{
		{"approve", protocol.DecisionApprove, 0, nil},
		{"deny", protocol.DecisionDeny, protocol.CodeDenied, login.ErrDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			nik := e.msp.NewPhone(t, "nik", admin("acme"))
			alice := e.msp.NewPhone(t, "alice", admin("acme"))
			nikMux, aliceMux := e.phoneMux(t, nik), e.phoneMux(t, alice)
			req, q := e.begin(t, protocol.ActionLogon, "logon")
			defer req.Cancel(t.Context())

			deciding, released := make(chan struct{}), make(chan struct{})
			release := sync.OnceFunc(func() { close(released) })
			defer release()
			type outcome struct {
				res protocol.LoginResult
				err error
			}
			nikDone := make(chan outcome, 1)
			go func() {
				res, err := nik.Login(t.Context(), nikMux, q.Text, agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 {
					close(deciding)
					<-released
					return protocol.DecisionApprove
				}})
				nikDone <- outcome{res, err}
			}()
			select {
			case <-deciding:
			case o := <-nikDone:
				t.Fatalf("nik's scan ended before he decided: %+v %v", o.res, o.err)
			}
			res, err := alice.Login(t.Context(), aliceMux, q.Text, agenttest.Scan{Decide: func(protocol.LoginRequest) uint8 { return tc.decision }})
			if err != nil || res.OK != (tc.code == 0) || res.Code != tc.code {
				t.Fatalf("alice: %+v %v, want code %d", res, err, tc.code)
			}
			release()
			o := <-nikDone
			if o.err != nil || o.res.OK || o.res.Code != protocol.CodeExpired {
				t.Fatalf("nik after alice's decision: %+v %v, want refused as expired", o.res, o.err)
			}
			g, err := req.Result()
			if !errors.Is(err, tc.err) || (tc.err == nil && g.Account != "msp-alice") {
				t.Fatalf("request: %q %v, want %v", g.Account, err, tc.err)
			}
			var nikDenied bool
			for _, r := range e.agent.Records(t) {
				if r.Event == "login.denied" && r.Username == "nik" && r.Reason == "login request no longer open" {
					nikDenied = true
				}
			}
			if !nikDenied {
				t.Fatalf("nik's refused scan not audited: %v", agenttest.Events(e.agent.Records(t)))
			}
			if i, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil && i.Enabled {
				t.Fatal("nik's account enabled")
			}
			bob := e.msp.NewPhone(t, "bob", admin("acme"))
			if res, err := bob.Login(unanswered(t), e.phoneMux(t, bob), q.Text, agenttest.Scan{}); err == nil {
				t.Fatalf("a used code answered: %+v", res)
			}
		})
	}
}

// TestScanBounds: a code accepts MaxScans handshakes at a time, from
// phones told apart by their mailbox, and MaxCodeHandshakes in all; a
// phone that tries again (its handshake failed) replaces its own.
func TestScanBounds(t *testing.T) {
	e := newEnv(t, nil)
	req, q := e.begin(t, protocol.ActionLogon, "logon")
	defer req.Cancel(t.Context())
	sid := sessionOf(t, q.Text)
	hello := func(phone byte) channel.Hello {
		return channel.Hello{From: protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: protocol.MailboxID{phone}}, Session: sid, Flow: protocol.FlowQRLogin}
	}
	for i := range login.MaxScans {
		if _, _, err := e.srv.Accept(t.Context(), hello(byte(1+i))); err != nil {
			t.Fatalf("scan %d: %v", i+1, err)
		}
	}
	if _, _, err := e.srv.Accept(t.Context(), hello(99)); err == nil {
		t.Fatalf("scan %d of one code accepted at once", login.MaxScans+1)
	}
	for n := login.MaxScans; n < login.MaxCodeHandshakes; n++ {
		if _, _, err := e.srv.Accept(t.Context(), hello(1)); err != nil {
			t.Fatalf("handshake %d, again from phone 1: %v", n+1, err)
		}
	}
	if _, _, err := e.srv.Accept(t.Context(), hello(1)); err == nil {
		t.Fatalf("handshake %d of one code accepted", login.MaxCodeHandshakes+1)
	}
}

// TestCancelAfterApproval: a surface that goes away after the approval but
// before taking the grant leaves no account enabled: Cancel wipes the
// password and ends the session, audited.
func TestCancelAfterApproval(t *testing.T) {
	e := newEnv(t, nil)
	p := e.msp.NewPhone(t, "nik", admin("acme"))
	req, q := e.begin(t, protocol.ActionLogon, "logon")
	if res, err := p.Login(t.Context(), e.phoneMux(t, p), q.Text, agenttest.Scan{}); err != nil || !res.OK {
		t.Fatalf("%+v %v", res, err)
	}
	<-req.Done()
	if err := req.Cancel(t.Context()); err != nil {
		t.Fatal(err)
	}
	if g, err := req.Result(); !errors.Is(err, login.ErrCancelled) || !g.Password.IsZero() || g.Account != "" {
		t.Fatalf("Result after Cancel: %q %v", g.Account, err)
	}
	if i, err := e.backend.Lookup(t.Context(), "msp-nik"); err != nil || i.Enabled {
		t.Fatalf("account after Cancel: %+v %v", i, err)
	}
	ev := agenttest.Events(e.agent.Records(t))
	if want := []string{"login.approved", "account.created", "account.enabled", "session.ended", "account.disabled"}; !slices.Equal(ev[len(ev)-5:], want) {
		t.Fatalf("audit %v, want it to end with %v", ev, want)
	}
	if err := req.Cancel(t.Context()); err != nil {
		t.Fatalf("second Cancel: %v", err)
	}
}

// TestRemovedDevice (SPEC.md 11.10): once a policy revoking the agent's
// own certificate is applied, open requests end with ErrRemoved (their
// codes no longer answer) and new ones are refused at once.
func TestRemovedDevice(t *testing.T) {
	e := newEnv(t, nil)
	p := e.msp.NewPhone(t, "nik", admin("acme"))
	req, q := e.begin(t, protocol.ActionLogon, "logon")
	np := e.policy
	np.Version, np.RevokedDevices = 2, []uint64{e.agent.Device.Serial}
	if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &np), time.Now()); err != nil {
		t.Fatal(err)
	}
	e.srv.EndAll(login.ErrRemoved)
	if _, err := req.Result(); !errors.Is(err, login.ErrRemoved) {
		t.Fatalf("open request: %v, want ErrRemoved", err)
	}
	if _, err := p.Login(unanswered(t), e.phoneMux(t, p), q.Text, agenttest.Scan{}); err == nil {
		t.Fatal("the code of an ended request still answers")
	}
	if _, err := e.srv.Begin(t.Context(), protocol.ActionLogon, "logon"); !errors.Is(err, login.ErrRemoved) {
		t.Fatalf("Begin after the removal: %v, want ErrRemoved", err)
	}
	if n := len(e.backend.Names()); n != 0 {
		t.Fatalf("%d accounts touched", n)
	}
}
