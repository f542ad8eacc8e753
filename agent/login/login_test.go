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
	})
	peer := e.net.Join(addr)
	mux := channel.New(channel.Config{Relay: peer, Static: e.agent.Keys.Noise, Accept: e.srv.Accept, Handle: e.srv.Handle})
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

func (e *env) phoneMux(t *testing.T, p *agenttest.Phone) *channel.Mux {
	peer := e.net.Join(p.Addr())
	mux := channel.New(channel.Config{Relay: peer, Static: p.Noise, HandshakeTimeout: 300 * time.Millisecond})
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
		err    error  // request error
		reason string // substring of the login.denied reason
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
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "technician certificate"},
		{name: "revoked", phone: nik, policy: func(p *protocol.Policy, _ protocol.DeviceID) { p.Revoked = []uint64{102} },
			code: protocol.CodeRefused, err: login.ErrRefused, reason: "revoked"},
		{name: "not shared", phone: nik, policy: func(p *protocol.Policy, dev protocol.DeviceID) {
			p.Shares = []protocol.DeviceShare{{DeviceID: dev, Entries: []string{"alice"}}}
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "not shared"},
		{name: "shared by name", phone: nik, policy: func(p *protocol.Policy, dev protocol.DeviceID) {
			p.Shares = []protocol.DeviceShare{{DeviceID: dev, Entries: []string{"nik"}}}
		}},
		{name: "not delegated", phone: func(t *testing.T, e *env) *agenttest.Phone { return e.msp.NewPhone(t, "nik", admin("globex")) },
			code: protocol.CodeRefused, err: login.ErrRefused, reason: "not delegated"},
		{name: "expired certificate", phone: func(t *testing.T, e *env) *agenttest.Phone {
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			p.Cert.NotAfter = time.Now().Add(-time.Minute).Unix()
			e.msp.Resign(t, p)
			return p
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "validity"},
		{name: "stolen certificate", phone: func(t *testing.T, e *env) *agenttest.Phone {
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			thief := agenttest.NewUncertifiedPhone(t)
			thief.Cert, thief.Signed, thief.MSPKey = p.Cert, p.Signed, p.MSPKey
			return thief
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "noise key"},
		{name: "forged approval", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return agenttest.Scan{Sign: func(a *protocol.Approval) (protocol.Signed, error) {
				return protocol.SignP256(protocol.DocApproval, a, k, rand.Reader)
			}}
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "signature"},
		{name: "expired approval", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.Time -= 600 }}
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "stale"},
		{name: "other handshake", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.HandshakeHash = make([]byte, 32) }}
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "does not match"},
		{name: "other action", phone: nik, scan: func(t *testing.T, e *env, p *agenttest.Phone) agenttest.Scan {
			return agenttest.Scan{Tamper: func(a *protocol.Approval) { a.Action = protocol.ActionSudo }}
		}, code: protocol.CodeRefused, err: login.ErrRefused, reason: "does not match"},
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
			grant, rerr := req.Result()
			recs := e.agent.Records(t)
			last := recs[len(recs)-1]
			if tc.code == 0 {
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
			if res.OK || res.Code != tc.code || !errors.Is(rerr, tc.err) {
				t.Fatalf("result %+v, request err %v; want code %d, %v", res, rerr, tc.code, tc.err)
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
	if _, err := p.Login(t.Context(), mux, q.Text, agenttest.Scan{}); err == nil {
		t.Fatal("a used QR code was accepted again")
	}
	// A new request, the old approval replayed: refused by its binding to
	// the old session and handshake (TestApprovalUsedBefore reaches the
	// persisted single-use check behind it).
	req2, q2 := e.begin(t, protocol.ActionLogon, "logon")
	defer req2.Cancel(t.Context())
	res, err := p.Login(t.Context(), mux, q2.Text, agenttest.Scan{Replay: &sent})
	if err != nil || res.OK {
		t.Fatalf("replay: %+v %v", res, err)
	}
	if _, err := req2.Result(); !errors.Is(err, login.ErrRefused) {
		t.Fatalf("request: %v", err)
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
		// The old code is still accepted within the grace period, once.
		h1 := hello(q1.Text)
		if _, _, err := srv.Accept(ctx, h1); err != nil {
			t.Fatalf("old code within grace: %v", err)
		}
		if _, _, err := srv.Accept(ctx, h1); err == nil {
			t.Fatal("code accepted twice")
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
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := p.Login(ctx, e.phoneMux(t, p), q.Text, agenttest.Scan{}); err == nil {
		t.Fatal("the code of an ended request still answers")
	}
	if _, err := e.srv.Begin(t.Context(), protocol.ActionLogon, "logon"); !errors.Is(err, login.ErrRemoved) {
		t.Fatalf("Begin after the removal: %v, want ErrRemoved", err)
	}
	if n := len(e.backend.Names()); n != 0 {
		t.Fatalf("%d accounts touched", n)
	}
}
