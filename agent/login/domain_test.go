package login_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/dcclient"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// fakeDomain stands for the DC agent (dcclient.Client); the real one is
// exercised in dcclient's TestDomainLoginEndToEnd.
type fakeDomain struct {
	mu        sync.Mutex
	available bool
	refuse    error // Obtain's error
	requests  []protocol.DomainRequest
	ends      []protocol.SessionID
}

func (f *fakeDomain) Available(context.Context, time.Time) bool { return f.available }
func (f *fakeDomain) Obtain(_ context.Context, r *protocol.DomainRequest, _ time.Time) (protocol.DomainResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, *r)
	if f.refuse != nil {
		return protocol.DomainResult{}, f.refuse
	}
	return protocol.DomainResult{OK: true, Account: "msp-nik", Password: "Pw-0123456789abcdefghijklmnopqrstuv", Expires: time.Now().Add(time.Minute).Unix()}, nil
}
func (f *fakeDomain) End(_ context.Context, s protocol.SessionID, _ string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ends = append(f.ends, s)
	return nil
}
func (f *fakeDomain) LogonName(a string) string { return `JITKEY\` + a }

// domainEnv is a login server on a computer whose certificate says
// joined, with policy edited by edit and the fake DC agent.
func domainEnv(t *testing.T, joined bool, edit func(*protocol.Policy), dom *fakeDomain) (*env, *lifecycle.Manager) {
	e := &env{msp: agenttest.NewMSP(t, "acme"), net: channeltest.NewNetwork()}
	e.agent = agenttest.NewAgent(t, e.msp, nil, store.Config{})
	dc := e.agent.Device
	dc.DomainJoined = joined
	enr := e.agent.Enrollment
	enr.DeviceCert = e.msp.Sign(t, protocol.DocDeviceCert, &dc)
	if err := e.agent.Store.Update(t.Context(), func(tx *store.Tx) error { return tx.SetEnrollment(enr) }); err != nil {
		t.Fatal(err)
	}
	e.policy = e.msp.Policy(1)
	e.policy.SelectiveLogin, e.policy.DomainAccounts = true, true
	if edit != nil {
		edit(&e.policy)
	}
	if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &e.policy), time.Now()); err != nil {
		t.Fatal(err)
	}
	e.backend = accountstest.New(accountstest.Config{})
	mgr := lifecycle.New(lifecycle.Config{Backend: e.backend, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader})
	addr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: e.agent.Keys.Mailbox()}
	e.srv = login.New(login.Config{
		Store: e.agent.Store, Audit: e.agent.Audit, Lifecycle: mgr, Static: e.agent.Keys.NoisePublic(),
		Addr: func() protocol.PeerAddr { return addr }, StepTimeout: 5 * time.Second, Domain: dom,
	})
	peer := e.net.Join(addr)
	mux := channel.New(channel.Config{Relay: peer, Static: e.agent.Keys.Noise, Accept: e.srv.Accept, Handle: e.srv.Handle})
	e.pump(t, mux, peer)
	return e, mgr
}

// TestSelectiveLogin (SPEC.md 11.7): the choice is offered only with both
// policy switches, a domain-joined certificate, a known DC agent and
// action logon; a domain choice yields the DC agent's account under the
// logon name, creates no local account, and its End reaches the DC
// agent; a DC refusal or outage denies the login with its own error and
// consumes the approval; a domain choice not offered is refused.
func TestSelectiveLogin(t *testing.T) {
	both := []uint8{protocol.AccountLocal, protocol.AccountDomain}
	for _, c := range []struct {
		name      string
		joined    bool
		edit      func(*protocol.Policy)
		available bool
		action    uint8
		want      []uint8
	}{
		{"offered", true, nil, true, protocol.ActionLogon, both},
		{"not joined", false, nil, true, protocol.ActionLogon, nil},
		{"selective login off", true, func(p *protocol.Policy) { p.SelectiveLogin = false }, true, protocol.ActionLogon, nil},
		{"domain accounts off", true, func(p *protocol.Policy) { p.DomainAccounts = false }, true, protocol.ActionLogon, nil},
		{"no DC known", true, nil, false, protocol.ActionLogon, nil},
		{"sudo", true, nil, true, protocol.ActionSudo, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dom := &fakeDomain{available: c.available}
			e, _ := domainEnv(t, c.joined, c.edit, dom)
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			mux := e.phoneMux(t, p)
			req, qr := e.begin(t, c.action, "logon")
			var lr protocol.LoginRequest
			account := protocol.AccountDomain
			res, err := p.Login(t.Context(), mux, qr.Text, agenttest.Scan{Request: &lr, Tamper: func(a *protocol.Approval) { a.Account = account }})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(lr.Choices, c.want) {
				t.Fatalf("choices %v, want %v", lr.Choices, c.want)
			}
			if c.want == nil {
				// A domain choice that was not offered is refused; the
				// request stays open.
				if res.OK || res.Code != protocol.CodeRefused || len(dom.requests) != 0 {
					t.Fatalf("domain choice not offered: %+v, %d DC requests", res, len(dom.requests))
				}
				return
			}
			g, err := req.Result()
			if err != nil || !res.OK || g.Account != `JITKEY\msp-nik` || res.Account != g.Account ||
				string(g.Password.Bytes()) != "Pw-0123456789abcdefghijklmnopqrstuv" {
				t.Fatalf("grant %q %v, phone %+v", g.Account, err, res)
			}
			r := dom.requests[0]
			var a protocol.Approval
			var ws protocol.DeviceCert
			if err := r.Approval.VerifyP256(protocol.DocApproval, p.Cert.ApprovalKey, &a); err != nil || a.Account != protocol.AccountDomain ||
				r.Session != a.Session || r.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, e.msp.Pub, &ws) != nil ||
				ws.DeviceID != a.DeviceID || !ws.DomainJoined || !slices.Equal(r.TechCert.Body, p.Signed.Body) {
				t.Fatalf("DC request: %+v %v", a, err)
			}
			if _, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil {
				t.Fatal("a local account was created for a domain login")
			}
		})
	}

	for _, c := range []struct {
		name string
		err  error
		want error
		code uint8
	}{
		{"DC refuses", fmt.Errorf("%w (code 1)", dcclient.ErrRefused), login.ErrDomainRefused, protocol.CodeRefused},
		{"DC unreachable", fmt.Errorf("%w: timeout", dcclient.ErrUnreachable), login.ErrDomainUnavailable, protocol.CodeUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			dom := &fakeDomain{available: true, refuse: c.err}
			e, _ := domainEnv(t, true, nil, dom)
			p := e.msp.NewPhone(t, "nik", admin("acme"))
			mux := e.phoneMux(t, p)
			req, qr := e.begin(t, protocol.ActionLogon, "logon")
			var sent protocol.Signed
			res, err := p.Login(t.Context(), mux, qr.Text, agenttest.Scan{Sent: &sent, Tamper: func(a *protocol.Approval) { a.Account = protocol.AccountDomain }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := req.Result(); !errors.Is(err, c.want) || res.OK || res.Code != c.code {
				t.Fatalf("result %v, phone %+v; want %v", err, res, c.want)
			}
			if _, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil {
				t.Fatal("a local account was created")
			}
			// After an outage (the answer may have been lost) the session
			// is ended at the DC agent; after a refusal there is none.
			dom.mu.Lock()
			ends := len(dom.ends)
			dom.mu.Unlock()
			if want := map[bool]int{true: 1, false: 0}[errors.Is(c.err, dcclient.ErrUnreachable)]; ends != want {
				t.Fatalf("%d DomainEnds, want %d", ends, want)
			}
			evs := agenttest.Events(e.agent.Records(t))
			if evs[len(evs)-1] != "login.denied" {
				t.Fatalf("audit %v", evs)
			}
		})
	}

	t.Run("session end", func(t *testing.T) {
		dom := &fakeDomain{available: true}
		e, mgr := domainEnv(t, true, nil, dom)
		p := e.msp.NewPhone(t, "nik", admin("acme"))
		mux := e.phoneMux(t, p)
		req, qr := e.begin(t, protocol.ActionLogon, "logon")
		if _, err := p.Login(t.Context(), mux, qr.Text, agenttest.Scan{Tamper: func(a *protocol.Approval) { a.Account = protocol.AccountDomain }}); err != nil {
			t.Fatal(err)
		}
		g, err := req.Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := mgr.End(t.Context(), g.Session, "session.ended"); err != nil {
			t.Fatal(err)
		}
		if len(dom.ends) != 1 || dom.ends[0] != g.Session {
			t.Fatalf("DomainEnd sent for %v, want %v", dom.ends, g.Session)
		}
		evs := agenttest.Events(e.agent.Records(t))
		if !slices.Contains(evs, "login.approved") || evs[len(evs)-1] != "session.ended" {
			t.Fatalf("audit %v", evs)
		}
	})
}
