package server_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/protocol"
)

// offlineEnv is a console with a shared-mode tenant (globex) and a
// named-mode one (acme), their technicians and agents.
type offlineEnv struct {
	*env
	secrets [][]byte // every tenant secret seen, to check logs and phones
}

func newOfflineEnv(t *testing.T) *offlineEnv {
	e := &offlineEnv{env: newEnv(t)}
	_, _, err := e.con.AddTenant(e.ctx, "globex", console.TenantChange{LoginMode: ptr(protocol.ModeShared)})
	e.must(err)
	_, _, err = e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	for _, tt := range []struct {
		name   string
		global bool
		grants []protocol.Grant
	}{
		{"sam", false, []protocol.Grant{{Tenant: "globex", Role: protocol.RoleReadOnly}}},
		{"ann", false, []protocol.Grant{{Tenant: "globex", Role: protocol.RoleAdmin}, {Tenant: "acme", Role: protocol.RoleReadOnly}}},
		{"nik", false, []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}}},
		{"boss", true, nil},
	} {
		_, err := e.con.AddTech(e.ctx, tt.name, tt.name+"@example.com", tt.global, tt.grants)
		e.must(err)
	}
	return e
}

// secret returns a tenant's current offline secret and generation.
func (e *offlineEnv) secret(tenant string) ([]byte, uint64) {
	e.t.Helper()
	ti, err := e.con.Tenant(e.ctx, tenant)
	e.must(err)
	e.secrets = append(e.secrets, ti.Tenant.OfflineSecret)
	return ti.Tenant.OfflineSecret, ti.Tenant.OfflineGeneration
}

func (e *offlineEnv) pair(username string) (*fakepeer.Peer, *protocol.PairResponse, *protocol.TechCert) {
	e.t.Helper()
	q, err := e.con.NewPairing(e.ctx, username)
	e.must(err)
	text, err := q.Encode()
	e.must(err)
	phone, _ := e.peer("relay-c:443")
	resp, tc, err := phone.Pair(e.ctx, text)
	e.must(err)
	return phone, resp, tc
}

// checkTechKeys checks that a phone's offline keys are exactly its
// technician's tech keys of the shared-mode tenants it may see, with their
// generations, and never a tenant secret.
func (e *offlineEnv) checkTechKeys(what string, got []protocol.TenantSecret, tc *protocol.TechCert, tenants ...string) {
	e.t.Helper()
	if len(got) != len(tenants) {
		e.t.Fatalf("%s: %d offline keys, want %d (%v)", what, len(got), len(tenants), tenants)
	}
	for i, tenant := range tenants {
		secret, gen := e.secret(tenant)
		want, err := protocol.Derive(secret, protocol.LabelOTPSharedTech, []byte(tc.TechID), 32)
		e.must(err)
		if got[i].Tenant != tenant || got[i].Generation != gen || !bytes.Equal(got[i].Secret, want) {
			e.t.Fatalf("%s: offline key %d: tenant %s generation %d, want %s generation %d (right key: %v)",
				what, i, got[i].Tenant, got[i].Generation, tenant, gen, bytes.Equal(got[i].Secret, want))
		}
		for _, s := range e.secrets {
			if bytes.Equal(got[i].Secret, s) {
				e.t.Fatalf("%s: a phone got a tenant secret", what)
			}
		}
	}
}

// agentSecret checks what an agent was sent: the current secret of its
// shared-mode tenant, or nothing.
func (e *offlineEnv) agentSecret(what string, got []protocol.TenantSecret, tenant string) {
	e.t.Helper()
	if tenant == "" {
		if len(got) != 0 {
			e.t.Fatalf("%s: %d offline secrets, want none", what, len(got))
		}
		return
	}
	secret, gen := e.secret(tenant)
	if len(got) != 1 || got[0].Tenant != tenant || got[0].Generation != gen || !bytes.Equal(got[0].Secret, secret) {
		e.t.Fatalf("%s: offline secrets of generations %v, want %s generation %d", what, gens(got), tenant, gen)
	}
}

// waitSecret waits for a push to p that carries generation gen of the
// offline secret, skipping pushes of older versions.
func waitSecret(t *testing.T, p *fakepeer.Peer, gen uint64) protocol.PolicyPush {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case pp := <-p.Pushes:
			if len(pp.OfflineSecrets) == 1 && pp.OfflineSecrets[0].Generation == gen {
				return pp
			}
		case <-deadline:
			t.Fatalf("no push with generation %d of the offline secret", gen)
			return protocol.PolicyPush{}
		}
	}
}

// TestOfflineSecretsReachAgentsNeverPhones (SPEC.md 11.6): an agent of a
// shared-mode tenant gets the tenant's secret at enrollment and with every
// policy push; an agent of a named-mode tenant gets none; phones get only
// their technician's tech keys, with the generation; every roster entry
// names the technician's role.
func TestOfflineSecretsReachAgentsNeverPhones(t *testing.T) {
	e := newOfflineEnv(t)
	tok, _, err := e.con.NewToken(e.ctx, "globex", time.Hour, 1)
	e.must(err)
	gx, _ := e.peer("relay-b:443")
	resp, err := gx.Enroll(e.ctx, tok, "GX-1", func() int64 { return e.clock.Now().Unix() })
	e.must(err)
	e.agentSecret("enrollment in globex", resp.OfflineSecrets, "globex")
	if _, gen := e.secret("globex"); gen != 1 {
		t.Fatalf("first generation %d", gen)
	}
	tok, _, err = e.con.NewToken(e.ctx, "acme", time.Hour, 1)
	e.must(err)
	ac, _ := e.peer("relay-b:443")
	resp, err = ac.Enroll(e.ctx, tok, "AC-1", func() int64 { return e.clock.Now().Unix() })
	e.must(err)
	e.agentSecret("enrollment in acme (named)", resp.OfflineSecrets, "")

	sam, samResp, samCert := e.pair("sam")
	e.checkTechKeys("sam's pairing", samResp.OfflineSecrets, samCert, "globex")
	_, bossResp, bossCert := e.pair("boss")
	e.checkTechKeys("boss's pairing", bossResp.OfflineSecrets, bossCert, "globex")
	_, nikResp, nikCert := e.pair("nik")
	e.checkTechKeys("nik's pairing", nikResp.OfflineSecrets, nikCert)

	// Pairings changed both rosters: every push carries the secret to
	// globex's agent and nothing to acme's.
	waitAcked(t, e.env, gx, 3)
	waitAcked(t, e.env, ac, 3)
	for _, p := range []struct {
		peer   *fakepeer.Peer
		tenant string
	}{{gx, "globex"}, {ac, ""}} {
		pp := waitPush(t, p.peer)
		e.agentSecret("push", pp.OfflineSecrets, p.tenant)
	}
	sp, err := sam.Sync(e.ctx)
	e.must(err)
	e.checkTechKeys("sam's sync", sp.OfflineSecrets, samCert, "globex")

	roles := map[string]string{}
	for _, tenant := range []string{"globex", "acme"} {
		ti, err := e.con.Tenant(e.ctx, tenant)
		e.must(err)
		for _, r := range ti.Policy.Roster {
			roles[tenant+"/"+r.Username] = r.Role
			c := r.Cert(tenant)
			if got := c.RoleIn(tenant); got != r.Role {
				t.Errorf("roster entry %s/%s: role %q decides as %q", tenant, r.Username, r.Role, got)
			}
		}
	}
	want := map[string]string{
		"globex/sam": protocol.RoleReadOnly, "globex/boss": protocol.RoleGlobalAdmin,
		"acme/nik": protocol.RoleAdmin, "acme/boss": protocol.RoleGlobalAdmin,
	}
	if fmt.Sprint(roles) != fmt.Sprint(want) {
		t.Fatalf("roster roles %v, want %v", roles, want)
	}
}

// TestOfflineSecretRotation (SPEC.md 11.6): the console rotates a
// shared-mode tenant's secret, one generation up, when a technician
// delegated to it re-pairs, is revoked or removed, when one of its devices
// is removed (not when an agent reports an offline login: the agent
// retires that key itself); the tenant's
// agents get the new secret pushed and phones their new tech key at the
// next sync; a removed device never gets it. Nothing else rotates it, a
// named-mode tenant is never rotated, and the log records each rotation
// without the secret.
func TestOfflineSecretRotation(t *testing.T) {
	e := newOfflineEnv(t)
	gx, gone, ac := e.enrol("globex", "GX-1"), e.enrol("globex", "GX-2"), e.enrol("acme", "AC-1")
	boss, _, bossCert := e.pair("boss")
	e.pair("sam")
	e.pair("ann")
	_, gen := e.secret("globex")
	_, acmeGen := e.secret("acme")
	if gen != 1 || acmeGen != 1 { // first pairings revoke no phone
		t.Fatalf("generations after setup %d, %d, want 1", gen, acmeGen)
	}
	drain(gx, gone, ac, boss)

	var upTo uint64
	var last protocol.AuditBatch
	offline := protocol.AuditRecord{Event: "login.approved", TechID: "t-x", Username: "sam", Account: "msp-1234",
		Method: protocol.MethodOTP, Online: false, Action: protocol.ActionLogon}
	ship := func(p *fakepeer.Peer, rs ...protocol.AuditRecord) protocol.AuditAck {
		t.Helper()
		b := protocol.AuditBatch{Name: p.DeviceCert.Name, OS: "linux", PolicyVersion: p.Held(p.DeviceCert.Tenant)}
		for _, r := range rs {
			r.Time = e.clock.Now().UnixMilli()
			b.Records = append(b.Records, p.Record(r))
		}
		acks, err := p.Ship(e.ctx, b)
		e.must(err)
		upTo, last = acks[0].UpTo, b
		return acks[0]
	}
	var replay protocol.AuditBatch
	steps := []struct {
		name   string
		do     func()
		rotate bool
		reason string
	}{
		{"technician paired a new phone", func() { e.pair("sam") }, true, console.RotateTechRepaired},
		{"technician revoked", func() { _, _, err := e.con.RevokeTech(e.ctx, "sam"); e.must(err) }, true, console.RotateTechRevoked},
		{"offline login reported", func() {
			// The agent that accepted it retires the technician's
			// derived key there (SPEC.md 11.6); the tenant's secret, and
			// every other computer's codes, stay as they are.
			ship(gx, offline)
			replay = last
		}, false, ""},
		{"online login, failed offline login, other events", func() {
			online := offline
			online.Method, online.Online = protocol.MethodQR, true
			denied := offline
			denied.Event = "login.denied"
			ship(gx, online, denied, protocol.AuditRecord{Event: "account.disabled"})
		}, false, ""},
		{"offline login record replayed", func() {
			// The record of the earlier batch again: a duplicate.
			acks, err := gx.Ship(e.ctx, replay)
			e.must(err)
			if acks[0].UpTo != upTo {
				t.Fatalf("replay acked up to %d, want %d", acks[0].UpTo, upTo)
			}
		}, false, ""},
		{"offline login in a named-mode tenant", func() { ship(ac, offline) }, false, ""},
		{"technician removed", func() { _, _, err := e.con.RemoveTech(e.ctx, "ann"); e.must(err) }, true, console.RotateTechRemoved},
		{"technician of the named-mode tenant revoked", func() {
			e.pair("nik")
			_, _, err := e.con.RevokeTech(e.ctx, "nik")
			e.must(err)
		}, false, ""},
		{"device removed", func() { _, _, err := e.con.RemoveDevice(e.ctx, "GX-2", ""); e.must(err) }, true, console.RotateDeviceRemoved},
	}
	for _, s := range steps {
		s.do()
		_, got := e.secret("globex")
		if _, g := e.secret("acme"); g != acmeGen {
			t.Fatalf("%s: the named-mode tenant's generation went from %d to %d", s.name, acmeGen, g)
		}
		if !s.rotate {
			if got != gen {
				t.Fatalf("%s: generation %d, want %d (no rotation)", s.name, got, gen)
			}
			continue
		}
		if got != gen+1 {
			t.Fatalf("%s: generation %d, want %d", s.name, got, gen+1)
		}
		gen = got
		pp := waitSecret(t, gx, gen)
		e.agentSecret(s.name+": push to the tenant's agent", pp.OfflineSecrets, "globex")
		sp, err := boss.Sync(e.ctx)
		e.must(err)
		e.checkTechKeys(s.name+": boss's sync", sp.OfflineSecrets, bossCert, "globex")
		want := fmt.Sprintf("WARN offline secret rotated tenant=globex generation=%d reason=%s", gen, s.reason)
		if !e.logs.hasFull(want) {
			t.Fatalf("%s: no log line %q", s.name, want)
		}
	}

	// The removed device got the removal policy without any secret, and
	// its acks carry none whatever generation it reports.
	for {
		pp := waitPush(t, gone)
		var pol protocol.Policy
		e.must(pp.Policies[0].VerifyEd25519(protocol.DocPolicy, gone.MSPKey, &pol))
		if pol.IsDeviceRevoked(gone.DeviceCert.Serial) {
			if len(pp.OfflineSecrets) != 0 {
				t.Fatalf("the removed device was pushed %d offline secrets", len(pp.OfflineSecrets))
			}
			break
		}
	}
	if ack := ship(gone); len(ack.OfflineSecrets) != 0 {
		t.Fatal("a removed device's audit ack carries an offline secret")
	}

	// Never a secret in the log.
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	for _, l := range e.logs.full {
		for _, s := range e.secrets {
			if strings.Contains(l, hex.EncodeToString(s)) || strings.Contains(l, string(s)) || strings.Contains(l, fmt.Sprint(s)) {
				t.Fatalf("log line holds a tenant secret: %q", l)
			}
		}
	}
}

// TestAuditAckCatchesUpOfflineSecret: an agent that missed a rotation
// (offline while it was pushed) reports its older generation in its audit
// batch and gets the current secret in the ack, with a newer policy or
// without one; an agent up to date gets none, and so does an agent of a
// named-mode tenant.
func TestAuditAckCatchesUpOfflineSecret(t *testing.T) {
	e := newOfflineEnv(t)
	gx, ac := e.enrol("globex", "GX-1"), e.enrol("acme", "AC-1")
	_, _, err := e.con.RemoveTech(e.ctx, "sam")
	e.must(err)
	secret, gen := e.secret("globex")
	if gen != 2 {
		t.Fatalf("generation %d, want 2", gen)
	}
	ti, err := e.con.Tenant(e.ctx, "globex")
	e.must(err)
	latest := ti.Policy.Version
	for _, c := range []struct {
		name       string
		peer       *fakepeer.Peer
		policy     uint64
		generation uint64
		secret     bool
		newPolicy  bool
	}{
		{"older policy, older secret", gx, 1, 1, true, true},
		{"latest policy, older secret", gx, latest, 1, true, false},
		{"latest policy, no secret yet", gx, latest, 0, true, false},
		{"up to date", gx, latest, 2, false, false},
		{"named-mode agent", ac, 1, 0, false, false},
	} {
		acks, err := c.peer.Ship(e.ctx, protocol.AuditBatch{Name: c.peer.DeviceCert.Name, OS: "linux", PolicyVersion: c.policy, OfflineGeneration: c.generation})
		e.must(err)
		ack := acks[0]
		if (ack.Policy != nil) != c.newPolicy {
			t.Errorf("%s: ack carries a policy: %v", c.name, ack.Policy != nil)
		}
		if !c.secret {
			if len(ack.OfflineSecrets) != 0 {
				t.Errorf("%s: ack carries %d offline secrets", c.name, len(ack.OfflineSecrets))
			}
			continue
		}
		if len(ack.OfflineSecrets) != 1 || ack.OfflineSecrets[0].Generation != gen || !bytes.Equal(ack.OfflineSecrets[0].Secret, secret) {
			t.Errorf("%s: ack secrets of generations %v, want %d", c.name, gens(ack.OfflineSecrets), gen)
		}
	}
}

// hasFull reports whether a log line, attributes included, is s.
func (l *logBuf) hasFull(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.full {
		if x == s {
			return true
		}
	}
	return false
}

// gens lists the generations of offline secrets (tests never print one).
func gens(ss []protocol.TenantSecret) []uint64 {
	var out []uint64
	for _, s := range ss {
		out = append(out, s.Generation)
	}
	return out
}
