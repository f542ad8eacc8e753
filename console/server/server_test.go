package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/consoletest"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	ctx   context.Context
	con   *console.Console
	db    *store.DB
	net   *channeltest.Network
	clock *clock
	logs  *logBuf
	dir   string // the console's state directory
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
	full  []string // message and attributes, "k=v" separated by spaces
}

func (l *logBuf) Enabled(context.Context, slog.Level) bool { return true }
func (l *logBuf) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message)
	full := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { full += " " + a.Key + "=" + a.Value.Resolve().String(); return true })
	l.full = append(l.full, full)
	l.mu.Unlock()
	return nil
}
func (l *logBuf) WithAttrs(as []slog.Attr) slog.Handler { return &attrLog{l, as} }
func (l *logBuf) WithGroup(string) slog.Handler         { return l }

// attrLog keeps the attributes of a logger.With, so that a secret
// attached that way is in what the tests search too.
type attrLog struct {
	l  *logBuf
	as []slog.Attr
}

func (a *attrLog) Enabled(context.Context, slog.Level) bool { return true }
func (a *attrLog) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(a.as...)
	return a.l.Handle(ctx, r)
}
func (a *attrLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrLog{a.l, append(append([]slog.Attr(nil), a.as...), as...)}
}
func (a *attrLog) WithGroup(string) slog.Handler { return a }
func (l *logBuf) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if x == s {
			return true
		}
	}
	return false
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env { return newEnvWith(t, envOptions{}) }

// envOptions tune newEnvWith.
type envOptions struct {
	timeout time.Duration        // the env's lifetime; default 40 s
	server  func(*server.Config) // if set, changes the server's configuration
}

// newEnvWith starts a console server on an in-memory relay.
func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 40 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	t.Cleanup(cancel)
	dir := filepath.Join(t.TempDir(), "state")
	clk := &clock{t: time.Now()}
	logs := &logBuf{}
	con, db := consoletest.NewConsole(ctx, t, dir, consoletest.Relay{Addr: "relay-a:443", Pin: [32]byte{1}}, clk.Now, slog.New(logs))
	n := channeltest.NewNetwork()
	cp := n.Join(con.Addr())
	cfg := server.Config{Console: con, Relay: cp, Recv: cp.Recv, PollInterval: 20 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond, SessionTimeout: 5 * time.Second, Logger: slog.New(logs)}
	if o.server != nil {
		o.server(&cfg)
	}
	consoletest.RunServer(ctx, t, cfg)
	return &env{t: t, ctx: ctx, con: con, db: db, net: n, clock: clk, logs: logs, dir: dir}
}

// peer joins a fake agent or phone to the network.
func (e *env) peer(relay string) (*fakepeer.Peer, *channeltest.Peer) {
	id, kp, ap := fakepeer.Keys()
	np := e.net.Join(protocol.PeerAddr{Relay: relay, Mailbox: fakepeer.Mailbox(id)})
	p := fakepeer.New(id, kp, ap, np)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Mux.Pump(ctx, np.Recv) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return p, np
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func peerCode(err error) uint8 {
	var pe *protocol.PeerError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

func (e *env) enrol(tenant, name string) *fakepeer.Peer { return e.enrolTB(e.t, tenant, name) }

func (e *env) enrolTB(_ testing.TB, tenant, name string) *fakepeer.Peer {
	e.t.Helper()
	tok, _, err := e.con.NewToken(e.ctx, tenant, time.Hour, 1)
	e.must(err)
	a, _ := e.peer("relay-b:443")
	if _, err := a.Enroll(e.ctx, tok, name, func() int64 { return e.clock.Now().Unix() }); err != nil {
		e.t.Fatalf("enroll %s: %v", name, err)
	}
	return a
}

func TestEnrollmentTokenExpiryAndUses(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	now := func() int64 { return e.clock.Now().Unix() }

	tok, _, err := e.con.NewToken(e.ctx, "acme", time.Hour, 2)
	e.must(err)
	a1, _ := e.peer("relay-b:443")
	resp, err := a1.Enroll(e.ctx, tok, "W11-L-PASSWORD", now)
	e.must(err)
	if a1.DeviceCert.Tenant != "acme" || a1.DeviceCert.Name != "W11-L-PASSWORD" || a1.DeviceCert.NoiseKey != protocol.NoiseKey(a1.Noise.Public) {
		t.Fatalf("device cert %+v", a1.DeviceCert)
	}
	var pol protocol.Policy
	e.must(resp.Policy.VerifyEd25519(protocol.DocPolicy, a1.MSPKey, &pol))
	if pol.Tenant != "acme" || pol.Version != 1 || pol.Console != e.con.Addr().String() {
		t.Fatalf("policy %+v", pol)
	}
	a2, _ := e.peer("relay-b:443")
	_, err = a2.Enroll(e.ctx, tok, "second", now)
	e.must(err)
	a3, _ := e.peer("relay-b:443")
	_, err = a3.Enroll(e.ctx, tok, "third", now)
	if peerCode(err) != protocol.CodeExpired {
		t.Fatalf("third use of a 2-use token: %v, want CodeExpired", err)
	}

	tok2, _, err := e.con.NewToken(e.ctx, "acme", time.Hour, 5)
	e.must(err)
	e.clock.Add(61 * time.Minute)
	_, err = a3.Enroll(e.ctx, tok2, "late", now)
	if peerCode(err) != protocol.CodeExpired {
		t.Fatalf("expired token: %v, want CodeExpired", err)
	}
	devs, err := e.con.Devices(e.ctx, "acme")
	e.must(err)
	if len(devs) != 2 {
		t.Fatalf("%d devices, want 2", len(devs))
	}
	// The same agent cannot enrol twice.
	tok3, _, err := e.con.NewToken(e.ctx, "acme", time.Hour, 5)
	e.must(err)
	_, err = a1.Enroll(e.ctx, tok3, "again", now)
	if peerCode(err) != protocol.CodeRefused {
		t.Fatalf("re-enrolment: %v, want CodeRefused", err)
	}
}

func TestPairingSyncAndPush(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	_, _, err = e.con.AddTenant(e.ctx, "other", console.TenantChange{LoginMode: ptr(protocol.ModeShared)})
	e.must(err)
	_, err = e.con.AddTech(e.ctx, "nik", "nik@example.com", false, []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}})
	e.must(err)
	agent := e.enrol("acme", "W11")

	q, err := e.con.NewPairing(e.ctx, "nik")
	e.must(err)
	text, err := q.Encode()
	e.must(err)
	phone, _ := e.peer("relay-c:443")
	resp, tc, err := phone.Pair(e.ctx, text)
	e.must(err)
	if tc.Username != "nik" || tc.RoleIn("acme") != protocol.RoleAdmin || tc.RoleIn("other") != "" || resp.Org != "Acme MSP" {
		t.Fatalf("tech cert %+v org %q", tc, resp.Org)
	}
	if len(resp.Policies) != 1 || len(resp.Directory) != 1 || len(resp.OfflineSecrets) != 0 {
		t.Fatalf("pair response: %d policies, %d devices, %d secrets", len(resp.Policies), len(resp.Directory), len(resp.OfflineSecrets))
	}
	// In a shared-mode tenant the phone gets its technician's own offline
	// key, derived from the tenant secret, never the secret itself.
	_, err = e.con.AddTech(e.ctx, "sam", "sam@example.com", false, []protocol.Grant{{Tenant: "other", Role: protocol.RoleReadOnly}})
	e.must(err)
	qs, err := e.con.NewPairing(e.ctx, "sam")
	e.must(err)
	stext, err := qs.Encode()
	e.must(err)
	sphone, _ := e.peer("relay-c:443")
	sresp, stc, err := sphone.Pair(e.ctx, stext)
	e.must(err)
	tn, err := e.con.Tenant(e.ctx, "other")
	e.must(err)
	want, err := protocol.Derive(tn.Tenant.OfflineSecret, protocol.LabelOTPSharedTech, []byte(stc.TechID), 32)
	e.must(err)
	if len(sresp.OfflineSecrets) != 1 || sresp.OfflineSecrets[0].Tenant != "other" ||
		!bytes.Equal(sresp.OfflineSecrets[0].Secret, want) || bytes.Equal(sresp.OfflineSecrets[0].Secret, tn.Tenant.OfflineSecret) {
		t.Fatalf("shared-mode offline key: %+v", sresp.OfflineSecrets)
	}
	// The code is single use.
	p2, _ := e.peer("relay-c:443")
	if _, _, err := p2.Pair(e.ctx, text); peerCode(err) != protocol.CodeExpired {
		t.Fatalf("second use of a pairing code: %v", err)
	}

	// Pairing changed acme's roster (version 2): the agent gets it pushed.
	push := waitPush(t, agent)
	var pol protocol.Policy
	e.must(push.Policies[0].VerifyEd25519(protocol.DocPolicy, agent.MSPKey, &pol))
	if pol.Version != 2 || len(pol.Roster) != 1 || pol.Roster[0].Username != "nik" || pol.Roster[0].NoiseKey != protocol.NoiseKey(phone.Noise.Public) {
		t.Fatalf("pushed policy %+v", pol)
	}
	if err := pol.Authorize(tc, &agent.DeviceCert); err != nil {
		t.Fatalf("nik on W11: %v", err)
	}
	waitAcked(t, e, agent, 2)

	// Share W11 only with nobody: a new version reaches agent and phone.
	_, _, err = e.con.SetShare(e.ctx, "W11", console.ShareChange{Remove: []string{"all-admins", "all-users"}})
	e.must(err)
	waitPush(t, agent)
	pp := waitPush(t, phone)
	var ppol protocol.Policy
	e.must(pp.Policies[0].VerifyEd25519(protocol.DocPolicy, phone.MSPKey, &ppol))
	if ppol.Version != 3 || !errors.Is(ppol.Authorize(tc, &agent.DeviceCert), protocol.ErrNotShared) {
		t.Fatalf("phone got version %d; authorize: %v", ppol.Version, ppol.Authorize(tc, &agent.DeviceCert))
	}
	waitAcked(t, e, agent, 3)

	// Sync returns the same view.
	sp, err := phone.Sync(e.ctx)
	e.must(err)
	if len(sp.Policies) != 1 || len(sp.Directory) != 1 {
		t.Fatalf("sync: %d policies, %d devices", len(sp.Policies), len(sp.Directory))
	}

	// Revoke: serial in acme's policy, not in other's; sync now refused.
	serials, pols, err := e.con.RevokeTech(e.ctx, "nik")
	e.must(err)
	if len(serials) != 1 || serials[0] != tc.Serial || len(pols) != 1 || pols[0].Tenant != "acme" || !pols[0].IsRevoked(tc.Serial) {
		t.Fatalf("revoke: %v %+v", serials, pols)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := phone.Mux.Dial(ctx, dialSync(phone)); err == nil {
		t.Fatal("a revoked phone could still open a sync session")
	}
}

func TestPushAgainOnReconnect(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11")
	e.net.Leave(protocol.PeerAddr{Mailbox: fakepeer.Mailbox(agent.ID)})
	_, _, err = e.con.SetTenant(e.ctx, "acme", console.TenantChange{PushLogin: ptr(true)})
	e.must(err)
	time.Sleep(150 * time.Millisecond) // a few failed push rounds
	if agent.Held("acme") != 1 {
		t.Fatal("an offline agent got a push")
	}
	np := e.net.Join(protocol.PeerAddr{Relay: "relay-b:443", Mailbox: fakepeer.Mailbox(agent.ID)})
	// The agent's audit shipping on reconnect carries the policy back.
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go agent.Mux.Pump(ctx, np.Recv)
	acks, err := agent.Ship(e.ctx, protocol.AuditBatch{PolicyVersion: 1, Name: "W11", OS: "linux"})
	e.must(err)
	if acks[0].Policy == nil || agent.Held("acme") != 2 {
		t.Fatalf("ack after reconnect carries no newer policy (held %d)", agent.Held("acme"))
	}
	// And the pusher, told the agent is back, delivers too.
	waitPush(t, agent)
	waitAcked(t, e, agent, 2)
}

func waitPush(t *testing.T, p *fakepeer.Peer) protocol.PolicyPush {
	t.Helper()
	select {
	case pp := <-p.Pushes:
		return pp
	case <-time.After(5 * time.Second):
		t.Fatal("no policy push")
	}
	return protocol.PolicyPush{}
}

func waitAcked(t *testing.T, e *env, p *fakepeer.Peer, v uint64) {
	t.Helper()
	for range 250 {
		d, err := e.con.DeviceByMailbox(e.ctx, fakepeer.Mailbox(p.ID))
		e.must(err)
		if d.AckedVersion >= v {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("device never acknowledged version %d", v)
}

func ptr[T any](v T) *T { return &v }

func dialSync(p *fakepeer.Peer) channel.DialConfig {
	return channel.DialConfig{To: p.Console, Flow: protocol.FlowSync, PeerStatic: p.ConsoleKey}
}

func TestAuditForgedReplayedOutOfOrder(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11-L-PASSWORD")
	login := protocol.AuditRecord{Time: e.clock.Now().UnixMilli(), Event: "login.approved", TechID: "t-1", Username: "nik",
		Account: "msp-nik", Method: protocol.MethodQR, Online: true, Action: protocol.ActionLogon}
	r1, r2 := agent.Record(login), agent.Record(protocol.AuditRecord{Time: login.Time + 1, Event: "account.disabled", Account: "msp-nik", Detail: "session ended"})
	batch := func(rs ...protocol.Signed) protocol.AuditBatch {
		return protocol.AuditBatch{Records: rs, PolicyVersion: 1, Name: "W11-L-PASSWORD", OS: "linux"}
	}
	r3, r4 := agent.Record(login), agent.Record(login)

	// A forged record: right shape, signed by another key.
	fid, _, _ := fakepeer.Keys()
	forged, err := protocol.SignEd25519(protocol.DocAudit, &protocol.AuditRecord{DeviceID: agent.DeviceCert.DeviceID, Seq: 5, Prev: mustHash(t, r4), Event: "login.approved"}, fid)
	e.must(err)
	// A record with the right signature but a wrong Prev.
	broken, err := protocol.SignEd25519(protocol.DocAudit, &protocol.AuditRecord{DeviceID: agent.DeviceCert.DeviceID, Seq: 5, Prev: [32]byte{9}, Event: "login.approved"}, agent.ID)
	e.must(err)
	// A different record under an already stored seq.
	conflict, err := protocol.SignEd25519(protocol.DocAudit, &protocol.AuditRecord{DeviceID: agent.DeviceCert.DeviceID, Seq: 1, Event: "login.denied"}, agent.ID)
	e.must(err)

	steps := []struct {
		name  string
		batch protocol.AuditBatch
		upTo  uint64
		alarm string
	}{
		{"first two", batch(r1, r2), 2, ""},
		{"replayed", batch(r1, r2), 2, ""},
		{"out of order", batch(r4), 2, console.AlarmGap},
		{"in order again", batch(r3, r4), 4, ""},
		{"forged", batch(forged), 4, console.AlarmBadSignature},
		{"broken chain", batch(broken), 4, console.AlarmBrokenChain},
		{"conflicting replay", batch(conflict), 4, console.AlarmConflict},
	}
	seen := map[string]bool{}
	for _, s := range steps {
		acks, err := agent.Ship(e.ctx, s.batch)
		e.must(err)
		if acks[0].UpTo != s.upTo {
			t.Errorf("%s: ack up to %d, want %d", s.name, acks[0].UpTo, s.upTo)
		}
		_, alarms, err := e.con.Audit(e.ctx, console.AuditQuery{})
		e.must(err)
		for _, a := range alarms {
			if !seen[a.Kind] {
				seen[a.Kind] = true
				if a.Kind != s.alarm {
					t.Errorf("%s: alarm %s, want %q", s.name, a.Kind, s.alarm)
				}
			}
		}
		if s.alarm != "" && !seen[s.alarm] {
			t.Errorf("%s: no %s alarm", s.name, s.alarm)
		}
	}
	rows, _, err := e.con.Audit(e.ctx, console.AuditQuery{Tenant: "acme"})
	e.must(err)
	if len(rows) != 4 || rows[0].Record.Username != "nik" || rows[0].DeviceName != "W11-L-PASSWORD" {
		t.Fatalf("stored %d records", len(rows))
	}
	if !e.logs.has("ERROR AUDIT CHAIN BROKEN") {
		t.Fatal("a broken chain was not logged at ERROR level")
	}
	// The store refuses to rewrite history whatever the caller.
	err = e.db.Update(e.ctx, func(tx *store.Tx) error { return tx.Exec(`DELETE FROM audit`) })
	if err == nil {
		t.Fatal("audit records could be deleted")
	}
}

func mustHash(t *testing.T, s protocol.Signed) [32]byte {
	h, err := s.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
