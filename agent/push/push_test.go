package push_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// clock is an injected clock that the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

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

type env struct {
	msp     *agenttest.MSP
	agent   *agenttest.Agent
	backend *accountstest.Backend
	net     *channeltest.Network
	nik     *agenttest.Phone // admin, in the roster
	ann     *agenttest.Phone // in the roster, revoked
	bob     *agenttest.Phone // in the roster, not on the share list
	clock   *clock
	cfg     push.Config
	srv     *push.Server
	mux     *channel.Mux
}

// timeout is the push timeout of the tests that wait for it.
const timeout = 400 * time.Millisecond

func newEnv(t *testing.T, edit func(p *protocol.Policy)) *env {
	e := &env{msp: agenttest.NewMSP(t, "acme"), net: channeltest.NewNetwork(), clock: &clock{now: time.Now()}}
	e.agent = agenttest.NewAgent(t, e.msp, nil, store.Config{})
	admin := protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin}
	e.nik = e.msp.NewPhone(t, "nik", admin)
	e.ann = e.msp.NewPhone(t, "ann", admin)
	e.bob = e.msp.NewPhone(t, "bob", protocol.Grant{Tenant: "acme", Role: protocol.RoleReadOnly})
	p := e.msp.Policy(1)
	p.PushLogin = true
	p.Roster = []protocol.RosterEntry{e.ann.RosterEntry(protocol.RoleAdmin), e.bob.RosterEntry(protocol.RoleReadOnly), e.nik.RosterEntry(protocol.RoleAdmin)}
	p.Revoked = []uint64{e.ann.Cert.Serial}
	p.Shares = []protocol.DeviceShare{{DeviceID: e.agent.Device.DeviceID, Entries: []string{protocol.ShareAllAdmins}}}
	if edit != nil {
		edit(&p)
	}
	e.applyPolicy(t, p)
	e.backend = accountstest.New(accountstest.Config{})
	addr := protocol.PeerAddr{Relay: agenttest.Relay, Mailbox: e.agent.Keys.Mailbox()}
	peer := e.net.Join(addr)
	e.mux = channel.New(channel.Config{Relay: peer, Static: e.agent.Keys.Noise, HandshakeTimeout: 2 * time.Second})
	agenttest.Pump(t, e.mux, peer.Recv)
	e.cfg = push.Config{
		Store: e.agent.Store, Audit: e.agent.Audit,
		Lifecycle: lifecycle.New(lifecycle.Config{Backend: e.backend, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader}),
		Dial:      e.mux.Dial, AnswerDelay: 10 * time.Millisecond, Timeout: 5 * time.Second, Retry: 50 * time.Millisecond, Now: e.clock.Now,
	}
	e.srv = push.New(e.cfg)
	return e
}

func (e *env) applyPolicy(t *testing.T, p protocol.Policy) {
	t.Helper()
	if _, err := policy.Apply(t.Context(), e.agent.Store, e.agent.Audit, e.msp.Sign(t, protocol.DocPolicy, &p), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// withTimeout returns a server whose pushes time out after timeout.
func (e *env) withTimeout() *push.Server { return e.withTimeoutOf(timeout) }

// withTimeoutOf is withTimeout with another push timeout.
func (e *env) withTimeoutOf(d time.Duration) *push.Server {
	cfg := e.cfg
	cfg.Timeout = d
	return push.New(cfg)
}

// serve puts the phone on the network, answering with answer.
func (e *env) serve(t *testing.T, p *agenttest.Phone, answer func(protocol.PushRequest) agenttest.PushReply) <-chan agenttest.PushDone {
	return p.ServePush(t, e.net, e.agent.Keys.NoisePublic(), nil, answer)
}

// begin starts a push and returns it with the number shown.
func begin(t *testing.T, s *push.Server, email string) (*push.Request, uint8) {
	t.Helper()
	r, err := s.Begin(t.Context(), protocol.ActionLogon, email)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-r.Number():
		if n < 10 || n > 99 {
			t.Fatalf("number %d", n)
		}
		return r, n
	case <-time.After(5 * time.Second):
		t.Fatal("no number shown")
	}
	return nil, 0
}

// result waits for the push's result.
func result(t *testing.T, r *push.Request) (lifecycle.Grant, error) {
	t.Helper()
	select {
	case <-r.Done():
		return r.Result()
	case <-time.After(10 * time.Second):
		t.Fatal("push without a result")
	}
	return lifecycle.Grant{}, nil
}

// lastRecord returns the newest audit record of event.
func (e *env) lastRecord(t *testing.T, event string) protocol.AuditRecord {
	t.Helper()
	recs := e.agent.Records(t)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Event == event {
			return recs[i]
		}
	}
	t.Fatalf("no %s in %v", event, agenttest.Events(recs))
	return protocol.AuditRecord{}
}

func TestPushApproved(t *testing.T) {
	e := newEnv(t, nil)
	numbers := make(chan uint8, 1)
	done := e.serve(t, e.nik, func(req protocol.PushRequest) agenttest.PushReply {
		return agenttest.PushReply{Pick: uint16(<-numbers)}
	})
	r, n := begin(t, e.srv, "NIK@msp.example") // case-insensitive
	numbers <- n
	g, err := result(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if g.Account != "msp-nik" || len(g.Password.Bytes()) == 0 {
		t.Fatalf("grant %+v", g)
	}
	d := <-done
	if d.Err != nil || !d.Result.OK || !slices.Contains(d.Request.Candidates, uint16(n)) {
		t.Fatalf("phone: %+v", d)
	}
	if d.Request.Account != "msp-nik" || d.Request.Action != protocol.ActionLogon {
		t.Fatalf("request %+v", d.Request)
	}
	rec := e.lastRecord(t, audit.LoginApproved)
	if rec.Method != protocol.MethodPush || rec.Username != "nik" || !rec.Online {
		t.Fatalf("record %+v", rec)
	}
	if acc, err := e.backend.Lookup(t.Context(), "msp-nik"); err != nil || !acc.Enabled {
		t.Fatalf("account %+v %v", acc, err)
	}
	// The username works too.
	r, n = begin(t, e.srv, "nik")
	numbers <- n
	if _, err := result(t, r); err != nil {
		t.Fatal(err)
	}
}

func TestPushWrongNumber(t *testing.T) {
	e := newEnv(t, nil)
	numbers := make(chan uint8, 1)
	done := e.serve(t, e.nik, func(req protocol.PushRequest) agenttest.PushReply {
		n := <-numbers
		for _, c := range req.Candidates {
			if c != uint16(n) {
				return agenttest.PushReply{Pick: c}
			}
		}
		t.Error("no decoy")
		return agenttest.PushReply{}
	})
	r, n := begin(t, e.srv, "nik@msp.example")
	numbers <- n
	if _, err := result(t, r); !errors.Is(err, push.ErrWrongNumber) {
		t.Fatalf("err %v", err)
	}
	if d := <-done; d.Result.OK || d.Result.Code != protocol.CodeRefused {
		t.Fatalf("phone: %+v", d)
	}
	rec := e.lastRecord(t, audit.LoginDenied)
	if !strings.HasPrefix(rec.Reason, "wrong number picked") || rec.Method != protocol.MethodPush {
		t.Fatalf("record %+v", rec)
	}
	if acc, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil && acc.Enabled {
		t.Fatal("account enabled after a wrong number")
	}
}

func TestPushDenied(t *testing.T) {
	e := newEnv(t, nil)
	done := e.serve(t, e.nik, func(protocol.PushRequest) agenttest.PushReply { return agenttest.PushReply{Deny: true} })
	r, _ := begin(t, e.srv, "nik@msp.example")
	if _, err := result(t, r); !errors.Is(err, push.ErrDenied) {
		t.Fatalf("err %v", err)
	}
	if d := <-done; d.Result.Code != protocol.CodeDenied {
		t.Fatalf("phone: %+v", d)
	}
	if rec := e.lastRecord(t, audit.LoginDenied); rec.Reason != "denied by the technician" {
		t.Fatalf("record %+v", rec)
	}
}

// A tampered approval (another session's handshake hash) is refused
// like any other mismatch, whatever the number.
func TestPushApprovalMismatch(t *testing.T) {
	e := newEnv(t, nil)
	numbers := make(chan uint8, 1)
	e.serve(t, e.nik, func(protocol.PushRequest) agenttest.PushReply {
		return agenttest.PushReply{Pick: uint16(<-numbers), Tamper: func(a *protocol.Approval) { a.HandshakeHash = make([]byte, 32) }}
	})
	r, n := begin(t, e.srv, "nik@msp.example")
	numbers <- n
	if _, err := result(t, r); !errors.Is(err, push.ErrNoAnswer) {
		t.Fatalf("err %v", err)
	}
	if rec := e.lastRecord(t, audit.LoginDenied); !strings.Contains(rec.Reason, "approval") {
		t.Fatalf("record %+v", rec)
	}
}

func TestPushTimeout(t *testing.T) {
	e := newEnv(t, nil)
	// The phone is not connected: the agent tries again until the push
	// times out.
	r, _ := begin(t, e.withTimeout(), "nik@msp.example")
	if _, err := result(t, r); !errors.Is(err, push.ErrNoAnswer) {
		t.Fatalf("err %v", err)
	}
	if rec := e.lastRecord(t, audit.LoginCancelled); rec.Reason != "push timed out" || rec.Username != "nik" {
		t.Fatalf("record %+v", rec)
	}
}

// Every refused push gives the same answer as an unknown email: a
// number, then nothing until the timeout; the phone is never contacted.
func TestPushRefusalsLookAlike(t *testing.T) {
	cases := []struct {
		name, email, reason string
		edit                func(p *protocol.Policy)
	}{
		{"unknown", "eve@msp.example", "", nil},
		{"revoked", "ann@msp.example", "access rule", nil},
		{"not shared", "bob@msp.example", "access rule", nil},
		{"push disabled", "nik@msp.example", "push login disabled by the policy", func(p *protocol.Policy) { p.PushLogin = false }},
		{"empty", "", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.edit)
			contacted := make(chan struct{}, 3)
			answer := func(protocol.PushRequest) agenttest.PushReply {
				contacted <- struct{}{}
				return agenttest.PushReply{Deny: true}
			}
			for _, p := range []*agenttest.Phone{e.nik, e.ann, e.bob} {
				e.serve(t, p, answer)
			}
			before := len(e.agent.Records(t))
			start := time.Now()
			r, _ := begin(t, e.withTimeout(), tc.email)
			_, err := result(t, r)
			if !errors.Is(err, push.ErrNoAnswer) {
				t.Fatalf("err %v", err)
			}
			if el := time.Since(start); el < timeout {
				t.Fatalf("answered after %v, before the timeout", el)
			}
			select {
			case <-contacted:
				t.Fatal("a phone was contacted")
			default:
			}
			recs := e.agent.Records(t)[before:]
			if tc.reason == "" {
				if len(recs) != 0 {
					t.Fatalf("unknown email recorded: %+v", recs)
				}
				return
			}
			if len(recs) != 1 || recs[0].Event != audit.LoginDenied || !strings.HasPrefix(recs[0].Reason, tc.reason) || recs[0].Method != protocol.MethodPush {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

func TestPushReportBlocks(t *testing.T) {
	e := newEnv(t, func(p *protocol.Policy) { p.PushBlock = 600 })
	contacted := make(chan struct{}, 4)
	done := e.serve(t, e.nik, func(protocol.PushRequest) agenttest.PushReply {
		contacted <- struct{}{}
		return agenttest.PushReply{Report: true}
	})
	r, _ := begin(t, e.srv, "nik@msp.example")
	if _, err := result(t, r); !errors.Is(err, push.ErrReported) {
		t.Fatalf("err %v", err)
	}
	if d := <-done; d.Err != nil || d.Result.Code != protocol.CodeDenied {
		t.Fatalf("phone: %+v", d)
	}
	<-contacted
	rec := e.lastRecord(t, protocol.EventPushReported)
	if rec.Username != "nik" || !strings.Contains(rec.Detail, "blocked until") {
		t.Fatalf("record %+v", rec)
	}
	// Blocked: the next push does not reach the phone and looks like any
	// refusal.
	r, _ = begin(t, e.withTimeout(), "nik@msp.example")
	if _, err := result(t, r); !errors.Is(err, push.ErrNoAnswer) {
		t.Fatalf("err %v", err)
	}
	select {
	case <-contacted:
		t.Fatal("blocked technician's phone contacted")
	default:
	}
	if rec := e.lastRecord(t, audit.LoginDenied); !strings.HasPrefix(rec.Reason, "push blocked after a report") {
		t.Fatalf("record %+v", rec)
	}
	// After the block (600 s) the push goes out again.
	e.clock.Advance(601 * time.Second)
	r, _ = begin(t, e.srv, "nik@msp.example")
	if _, err := result(t, r); !errors.Is(err, push.ErrReported) {
		t.Fatalf("err %v", err)
	}
}

// A flood of pushes: at most PushMaxPending reach the phone at once, at
// most PushPerHour in an hour, and the count survives a restart of the
// agent (a new store handle and server on the same database).
func TestPushFloodLimitedAcrossRestart(t *testing.T) {
	e := newEnv(t, func(p *protocol.Policy) { p.PushMaxPending = 2; p.PushPerHour = 4 })
	hold := make(chan struct{})
	var mu sync.Mutex
	reached := 0
	e.serve(t, e.nik, func(protocol.PushRequest) agenttest.PushReply {
		mu.Lock()
		reached++
		mu.Unlock()
		<-hold
		return agenttest.PushReply{Deny: true}
	})
	// The timeout only ends the refused pushes here (as a phone that never
	// answers); the two admitted ones must reach the phone first, which
	// the test waits for, so it is long against a loaded machine's
	// handshakes (the 400 ms of the other tests was not: "0 pushes
	// reached the phone" once at load 16).
	srv := e.withTimeoutOf(5 * time.Second)
	var reqs []*push.Request
	for range 5 {
		r, _ := begin(t, srv, "nik@msp.example")
		reqs = append(reqs, r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := reached
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(hold)
	for _, r := range reqs {
		result(t, r)
	}
	mu.Lock()
	if reached != 2 {
		t.Fatalf("%d pushes reached the phone, want 2 (pending limit)", reached)
	}
	mu.Unlock()
	limited := 0
	for _, rec := range e.agent.Records(t) {
		if rec.Event == audit.LoginDenied && strings.HasPrefix(rec.Reason, "push limit: 2 pushes pending") {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d pushes denied for the pending limit, want 3: %v", limited, agenttest.Events(e.agent.Records(t)))
	}
	// Two more go out (the hourly limit is 4), the fifth does not.
	e2 := restart(t, e)
	srv = e2.withTimeoutOf(5 * time.Second)
	for i := range 3 {
		r, _ := begin(t, srv, "nik@msp.example")
		result(t, r)
		if i == 2 {
			if rec := e2.lastRecord(t, audit.LoginDenied); !strings.HasPrefix(rec.Reason, "push limit: 4 pushes within an hour") {
				t.Fatalf("record %+v", rec)
			}
		}
	}
	mu.Lock()
	if reached != 4 {
		t.Fatalf("%d pushes reached the phone, want 4 (hourly limit)", reached)
	}
	mu.Unlock()
	// Restarted again, an hour later: the limit has lifted.
	e3 := restart(t, e2)
	e3.clock.Advance(time.Hour + time.Second)
	r, _ := begin(t, e3.withTimeoutOf(5*time.Second), "nik@msp.example")
	result(t, r)
	mu.Lock()
	defer mu.Unlock()
	if reached != 5 {
		t.Fatalf("%d pushes reached the phone, want 5", reached)
	}
}

// restart closes e's store and opens the same database again, with a new
// push server on it that runs Start (as the agent does at each start).
func restart(t *testing.T, e *env) *env {
	t.Helper()
	if err := e.agent.Store.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), filepath.Join(e.agent.Dir, "agent.db"), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e2 := *e
	a := *e.agent
	a.Store = st
	a.Audit = audit.NewRecorder(a.Keys.Identity, a.Device.DeviceID, nil)
	e2.agent = &a
	e2.cfg.Store, e2.cfg.Audit = st, a.Audit
	e2.cfg.Lifecycle = lifecycle.New(lifecycle.Config{Backend: e.backend, Store: st, Audit: a.Audit, Rand: rand.Reader})
	e2.srv = push.New(e2.cfg)
	if err := e2.srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &e2
}

// Cancelling a push (the surface went away) ends it at once.
func TestPushCancel(t *testing.T) {
	e := newEnv(t, nil)
	r, _ := begin(t, e.srv, "nik@msp.example")
	if err := r.Cancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := result(t, r); !errors.Is(err, push.ErrCancelled) {
		t.Fatalf("err %v", err)
	}
}

func TestNumberOf(t *testing.T) {
	seen := map[uint8]bool{}
	for i := range 2000 {
		seed := []byte{byte(i), byte(i >> 8)}
		n, err := push.NumberOf(seed)
		if err != nil || n < 10 || n > 99 {
			t.Fatalf("%d: %d %v", i, n, err)
		}
		seen[n] = true
	}
	if len(seen) != 90 {
		t.Fatalf("%d numbers of 90 drawn", len(seen))
	}
}

// TestPushTimingsAlike runs with the production delays on a fake clock
// (testing/synctest): the number is shown exactly DefaultAnswerDelay
// after Begin and the push ends exactly DefaultTimeout after it, for a
// known technician whose phone does not answer and for every refused
// case alike.
func TestPushTimingsAlike(t *testing.T) {
	for _, tc := range []struct{ name, email string }{
		{"known, phone offline", "nik@msp.example"},
		{"unknown", "eve@msp.example"},
		{"revoked", "ann@msp.example"},
		{"not shared", "bob@msp.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, nil)
				cfg := e.cfg
				cfg.AnswerDelay, cfg.Timeout, cfg.Retry, cfg.Now = 0, 0, 0, time.Now
				srv := push.New(cfg)
				start := time.Now()
				r, err := srv.Begin(t.Context(), protocol.ActionLogon, tc.email)
				if err != nil {
					t.Fatal(err)
				}
				n := <-r.Number()
				if d := time.Since(start); d != push.DefaultAnswerDelay || n < 10 || n > 99 {
					t.Fatalf("number %d after %v", n, d)
				}
				<-r.Done()
				if d := time.Since(start); d != push.DefaultTimeout {
					t.Fatalf("ended after %v", d)
				}
				if _, err := r.Result(); !errors.Is(err, push.ErrNoAnswer) {
					t.Fatalf("err %v", err)
				}
				synctest.Wait()
			})
		})
	}
}
