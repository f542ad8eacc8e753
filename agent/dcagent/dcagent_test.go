//go:build linux

package dcagent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/domain"
	"github.com/jitkey/jitkey/agent/domain/sambatest"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// TestDomainSession: a valid request yields a password that binds while
// the session is active and fails after the workstation's DomainEnd
// (52e/533); the admin membership exists only during the session.
func TestDomainSession(t *testing.T) {
	w := newWorld(t, "nik", nil)
	ctx := t.Context()
	res, err := w.svc.Request(ctx, w.peer(), w.request(t, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Account != "msp-nik" || len(res.Password) < 32 {
		t.Fatalf("result %+v", res.Account)
	}
	if err := bind(res.Account, res.Password); err != nil {
		t.Fatalf("bind during session: %v", err)
	}
	e, err := w.dir.Lookup(ctx, "msp-nik")
	if err != nil || !e.Enabled() || !e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("during session: %v %+v", err, e)
	}
	// Another workstation (KK peer) cannot end it.
	if err := w.svc.End(ctx, w.target.NoiseKey, &protocol.DomainEnd{Session: w.sessionOf(t, "msp-nik"), Account: "msp-nik"}); err == nil {
		t.Fatal("end from another peer accepted")
	}
	if err := bind(res.Account, res.Password); err != nil {
		t.Fatalf("session ended by another peer: %v", err)
	}
	if err := w.svc.End(ctx, w.peer(), &protocol.DomainEnd{Session: w.sessionOf(t, "msp-nik"), Account: "msp-nik"}); err != nil {
		t.Fatal(err)
	}
	wantRefusedBind(t, bind(res.Account, res.Password))
	e, err = w.dir.Lookup(ctx, "msp-nik")
	if err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after session: %v %+v", err, e)
	}
	ev := agenttest.Events(w.dc.Records(t))
	for _, want := range []string{audit.AccountCreated, audit.AccountEnabled, audit.LoginApproved, audit.AccountDisabled} {
		if !slices.Contains(ev, want) {
			t.Fatalf("audit %v lacks %s", ev, want)
		}
	}
	for _, r := range w.dc.Records(t) {
		if r.Detail != "" && containsSecret(r, res.Password) {
			t.Fatal("password in audit")
		}
		if r.Event != audit.AccountDisabled {
			continue
		}
		// The end receipt (SPEC.md 6.6) states what Directory.End did.
		rc, err := protocol.VerifyEndReceipt(r.Receipt, w.dc.Keys.IdentityPublic(), w.dc.Device.DeviceID, "msp-nik")
		if err != nil || !rc.Disabled || !rc.PasswordRotated || !rc.AdminRemoved || rc.ProcessesEnded {
			t.Fatalf("end receipt %+v: %v", rc, err)
		}
	}
}

func containsSecret(r protocol.AuditRecord, pw string) bool {
	for _, f := range []string{r.TechID, r.Username, r.Account, r.Reason, r.Detail} {
		if len(pw) > 0 && len(f) >= len(pw) && (f == pw || contains(f, pw)) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func (w *world) sessionOf(t *testing.T, name string) protocol.SessionID {
	t.Helper()
	var a store.DomainAccount
	if err := w.dc.Store.View(t.Context(), func(tx *store.Tx) error {
		var err error
		a, err = tx.DomainAccount(name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return a.Session
}

// TestRDPSession: an approval bound to source and target yields
// credentials; the same approval presented with another target does not.
func TestRDPSession(t *testing.T) {
	w := newWorld(t, "rdp", nil)
	res, err := w.svc.Request(t.Context(), w.peer(), w.request(t, true, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := bind(res.Account, res.Password); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.End(t.Context(), w.peer(), &protocol.DomainEnd{Session: w.sessionOf(t, res.Account), Account: res.Account}); err != nil {
		t.Fatal(err)
	}
	wantRefusedBind(t, bind(res.Account, res.Password))
	// Approval for target SRV-02 presented with a third machine's
	// certificate.
	_, other, otherCert := w.device(t, "SRV-03")
	r := w.request(t, true, nil)
	r.Target = otherCert
	_ = other
	wantRefusal(t, mustFail(w.svc.Request(t.Context(), w.peer(), r)), protocol.CodeRefused)
}

func mustFail(_ protocol.DomainResult, err error) error { return err }

// TestRefusals: the DC agent refuses, and changes nothing in the
// directory, for a request without a valid approval, an approval for
// another workstation, a replayed approval and a revoked technician.
func TestRefusals(t *testing.T) {
	w := newWorld(t, "refused", nil)
	ctx := t.Context()
	other := w.msp.NewPhone(t, "mallory", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	noApproval := w.request(t, false, nil)
	noApproval.Approval = protocol.Signed{}
	otherKey := w.request(t, false, nil)
	otherKey.TechCert = other.Signed // approval signed by nik's key, cert of mallory
	otherDevice := w.request(t, false, func(a *protocol.Approval) { a.DeviceID = w.target.DeviceID })
	local := w.request(t, false, func(a *protocol.Approval) { a.Account = protocol.AccountLocal })
	stale := w.request(t, false, func(a *protocol.Approval) { a.Time -= 121 })
	for name, r := range map[string]*protocol.DomainRequest{
		"no approval": noApproval, "approval by another key": otherKey, "approval for another workstation": otherDevice,
		"local account approval": local, "stale": stale,
	} {
		_, err := w.svc.Request(ctx, w.peer(), r)
		wantRefusal(t, err, protocol.CodeRefused)
		if _, err := w.dir.Lookup(ctx, "msp-refused"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("%s: account exists: %v", name, err)
		}
	}
	// A workstation presenting its certificate over another KK peer key.
	_, err := w.svc.Request(ctx, w.target.NoiseKey, w.request(t, false, nil))
	wantRefusal(t, err, protocol.CodeRefused)

	// Replay: the first use works, the second is refused.
	r := w.request(t, false, nil)
	res, err := w.svc.Request(ctx, w.peer(), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.End(ctx, w.peer(), &protocol.DomainEnd{Session: r.Session, Account: res.Account}); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.Request(ctx, w.peer(), r)
	wantRefusal(t, err, protocol.CodeExpired)
	e, err := w.dir.Lookup(ctx, res.Account)
	if err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after replay: %v %+v", err, e)
	}

	// Revoked technician.
	w.setPolicy(t, func(p *protocol.Policy) { p.Revoked = []uint64{w.phone.Cert.Serial} })
	_, err = w.svc.Request(ctx, w.peer(), w.request(t, false, nil))
	rf := wantRefusal(t, err, protocol.CodeRefused)
	if !errors.Is(rf, protocol.ErrRevoked) {
		t.Fatalf("revoked: %v", rf)
	}
	// Domain accounts switched off.
	w.setPolicy(t, func(p *protocol.Policy) { p.Revoked = nil; p.DomainAccounts = false })
	_, err = w.svc.Request(ctx, w.peer(), w.request(t, false, nil))
	if rf := wantRefusal(t, err, protocol.CodeRefused); !errors.Is(rf, protocol.ErrDomainOff) {
		t.Fatalf("domain off: %v", rf)
	}
	e, err = w.dir.Lookup(ctx, res.Account)
	if err != nil || e.Enabled() {
		t.Fatalf("after refusals: %v %+v", err, e)
	}
	denied := 0
	for _, rec := range w.dc.Records(t) {
		if rec.Event == audit.LoginDenied {
			denied++
		}
	}
	if denied < 9 {
		t.Fatalf("%d login.denied records, want one per refusal (9)", denied)
	}
}

// TestUnreachable: with the DC down the request fails with "unavailable",
// the directory is unchanged, and no session is recorded.
func TestUnreachable(t *testing.T) {
	w := newWorld(t, "unreach", func(c *domain.Config) { c.URL = "ldaps://127.0.0.1:1"; c.Timeout = 2 * time.Second })
	_, err := w.svc.Request(t.Context(), w.peer(), w.request(t, false, nil))
	rf := wantRefusal(t, err, protocol.CodeUnavailable)
	if !errors.Is(rf, domain.ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", rf)
	}
	if err := w.dc.Store.View(t.Context(), func(tx *store.Tx) error {
		_, err := tx.DomainAccount("msp-unreach")
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("record after failure: %v", err)
	}
	good, _ := domain.New(dirConfig(ous[t.Name()], nil))
	if _, err := good.Lookup(t.Context(), "msp-unreach"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("account after failure: %v", err)
	}
}

// TestExpiryAndRestart: a session whose MaxSession passed is ended by
// Expire; after Samba is killed during a session and the agent restarts
// with no record of it, Start ends the account.
func TestExpiryAndRestart(t *testing.T) {
	w := newWorld(t, "expiry", nil)
	ctx := t.Context()
	res, err := w.svc.Request(ctx, w.peer(), w.request(t, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bind(res.Account, res.Password); err != nil {
		t.Fatalf("expired early: %v", err)
	}
	w.clock.Add(time.Duration(w.policy.MaxSession)*time.Second + time.Second)
	if err := w.svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	wantRefusedBind(t, bind(res.Account, res.Password))

	// A session begins; Samba is killed; the agent's records are lost
	// (a new store) and it restarts along with Samba.
	w.clock = agenttest.NewClock(time.Now())
	w2 := newWorld(t, "expiry", nil)
	res, err = w2.svc.Request(ctx, w2.peer(), w2.request(t, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	testDC.Kill()
	if err := testDC.Run(ctx); err != nil {
		t.Fatal(err)
	}
	w3 := newWorld(t, "other", nil)
	if err := w3.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wantRefusedBind(t, bind(res.Account, res.Password))
	e, err := w3.dir.Lookup(ctx, res.Account)
	if err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after repair: %v %+v", err, e)
	}
	if !slices.Contains(agenttest.Events(w3.dc.Records(t)), audit.AccountDisabled) {
		t.Fatal("repair not audited")
	}
}

// TestInactivityRemoval: with InactivityDays 30, an account unused since
// day 0 is deleted on day 30 (audited), one used again on day 29 is kept
// until day 59, and a later login recreates a deleted account.
func TestInactivityRemoval(t *testing.T) {
	w := newWorld(t, "idle", nil)
	ctx := t.Context()
	day := 24 * time.Hour
	begin := func(w *world) {
		t.Helper()
		r := w.request(t, false, nil)
		res, err := w.svc.Request(ctx, w.peer(), r)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.svc.End(ctx, w.peer(), &protocol.DomainEnd{Session: r.Session, Account: res.Account}); err != nil {
			t.Fatal(err)
		}
	}
	begin(w) // msp-idle, day 0
	w29 := *w
	w29.phone = w.msp.NewPhone(t, "busy", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	begin(&w29) // msp-busy, day 0
	sweep := func() []string {
		t.Helper()
		d, err := w.svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	w.clock.Add(29 * day)
	if d := sweep(); len(d) != 0 {
		t.Fatalf("day 29: deleted %v", d)
	}
	begin(&w29) // msp-busy used on day 29
	w.clock.Add(day)
	if d := sweep(); !slices.Equal(d, []string{"msp-idle"}) {
		t.Fatalf("day 30: deleted %v, want [msp-idle]", d)
	}
	if _, err := w.dir.Lookup(ctx, "msp-idle"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("msp-idle after deletion: %v", err)
	}
	if _, err := w.dir.Lookup(ctx, "msp-busy"); err != nil {
		t.Fatalf("msp-busy: %v", err)
	}
	w.clock.Add(28*day + 23*time.Hour) // day 58 23:00: 29 d 23 h after the last use
	if d := sweep(); len(d) != 0 {
		t.Fatalf("day 58: deleted %v", d)
	}
	w.clock.Add(time.Hour)
	if d := sweep(); !slices.Equal(d, []string{"msp-busy"}) {
		t.Fatalf("day 59: deleted %v, want [msp-busy]", d)
	}
	n := 0
	for _, r := range w.dc.Records(t) {
		if r.Event == audit.AccountDeleted {
			n++
			if r.Reason != "unused for 30 days" {
				t.Fatalf("deletion reason %q", r.Reason)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d account.deleted records, want 2", n)
	}
	// A later login recreates the account.
	begin(w)
	if _, err := w.dir.Lookup(ctx, "msp-idle"); err != nil {
		t.Fatalf("recreated: %v", err)
	}
}

// TestEndReceiptConfirmed (SPEC.md 6.6, 11.13): the DC agent's end
// receipt states only what Directory.End's read-back LDAP lookup
// confirmed. A domain admin moves the session's account out of jitkey's
// OU during the session: the DC agent can no longer find it there, its
// DomainEnd closes the session with a receipt that claims neither the
// disable nor the admin group removal, and indeed the account is still
// enabled and in Domain Admins. A session ended in place gets a receipt
// that claims both.
func TestEndReceiptConfirmed(t *testing.T) {
	w := newWorld(t, "moved", nil)
	ctx := t.Context()
	res, err := w.svc.Request(ctx, w.peer(), w.request(t, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	e, err := w.dir.Lookup(ctx, res.Account)
	if err != nil || !e.Enabled() || !e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("during session: %v %+v", err, e)
	}
	// The OU it is moved to, made once per process (-count).
	away, ok := ous[t.Name()+"-away"]
	if !ok {
		if away, err = testDC.AddOU(strings.ReplaceAll(t.Name(), "/", "-") + "-away"); err != nil {
			t.Fatal(err)
		}
		ous[t.Name()+"-away"] = away
	}
	c, err := testDC.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	moved := "CN=" + ldap.EscapeDN(res.Account) + "," + away
	if err := c.ModifyDN(ldap.NewModifyDNRequest(e.DN, "CN="+ldap.EscapeDN(res.Account), true, away)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := testDC.Conn(); err == nil {
			_ = c.Del(ldap.NewDelRequest(moved, nil))
			c.Close()
		}
	})
	if err := w.svc.End(ctx, w.peer(), &protocol.DomainEnd{Session: w.sessionOf(t, res.Account), Account: res.Account}); err != nil {
		t.Fatal(err)
	}
	if rc := w.dc.LastReceipt(t, res.Account); rc.AdminRemoved || rc.Disabled || rc.PasswordRotated {
		t.Fatalf("receipt of an end the DC agent could not confirm: %+v", rc)
	}
	// What the receipt does not claim is true: the moved account is
	// still enabled, still a domain admin, its password unchanged.
	if err := bind(res.Account, res.Password); err != nil {
		t.Fatalf("premise: the moved account no longer binds: %v", err)
	}
	r, err := c.Search(ldap.NewSearchRequest(moved, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=user)", []string{"memberOf"}, nil))
	if err != nil || len(r.Entries) != 1 || !slices.ContainsFunc(r.Entries[0].GetAttributeValues("memberOf"), func(g string) bool { return strings.EqualFold(g, sambatest.AdminGroup) }) {
		t.Fatalf("premise: the moved account left the admin group: %v", err)
	}
	if err := c.Del(ldap.NewDelRequest(moved, nil)); err != nil {
		t.Fatal(err)
	}

	// A session ended in place: the receipt claims what the lookup saw.
	res, err = w.svc.Request(ctx, w.peer(), w.request(t, false, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.End(ctx, w.peer(), &protocol.DomainEnd{Session: w.sessionOf(t, res.Account), Account: res.Account}); err != nil {
		t.Fatal(err)
	}
	if rc := w.dc.LastReceipt(t, res.Account); !rc.AdminRemoved || !rc.Disabled || !rc.PasswordRotated {
		t.Fatalf("receipt of an end in place: %+v", rc)
	}
}
