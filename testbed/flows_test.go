//go:build linux

package testbed

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/testbed/harness"
)

// mustNoneEnabled fails unless no JIT account is enabled on any agent.
func mustNoneEnabled(t *testing.T, ctx context.Context, w *harness.World) {
	t.Helper()
	if err := w.NoneEnabled(ctx); err != nil {
		t.Fatal(err)
	}
}

// mustEnabled fails unless account exists in acc and is enabled (want)
// or disabled (!want).
func mustEnabled(t *testing.T, ctx context.Context, acc *harness.Accounts, account string, want bool) {
	t.Helper()
	on, err := harness.IsEnabled(ctx, acc, account)
	if err != nil {
		t.Fatalf("look up %s: %v", account, err)
	}
	if on != want {
		t.Fatalf("account %s enabled = %v, want %v", account, on, want)
	}
}

// mustAudit waits until the console's trail is contiguous (nothing lost)
// and holds every wanted event (event or event=account).
func mustAudit(t *testing.T, ctx context.Context, w *harness.World, want ...string) harness.AuditLog {
	t.Helper()
	return mustAuditWithin(t, ctx, w, 20*time.Second, want...)
}

// mustAuditWithin is mustAudit with a longer wait (agents retry shipping
// to an unreachable console every 30 s).
func mustAuditWithin(t *testing.T, ctx context.Context, w *harness.World, d time.Duration, want ...string) harness.AuditLog {
	t.Helper()
	log, err := w.WaitAudit(ctx, d, func(l harness.AuditLog) error {
		if err := l.CheckContiguous(); err != nil {
			return err
		}
		for _, e := range want {
			ev, acct, _ := strings.Cut(e, "=")
			if !l.Has(ev, acct) {
				return errors.New("no " + e + " record")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, log.Summary())
	}
	return log
}

// TestPairingAndEnrollment: phones pair through a pairing QR picture,
// agents enroll with one-time tokens, the phones list both computers
// with their tenants, and a used token cannot enroll again.
func TestPairingAndEnrollment(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	w := newWorld(t, ctx)
	for _, p := range []*harness.Phone{w.Nik, w.Sam} {
		var d struct {
			Devices []struct{ Name, Tenant string }
		}
		res := p.Run(ctx, "--json", "devices")
		if err := res.JSON(&d); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, x := range d.Devices {
			got[x.Name] = x.Tenant
		}
		if got[harness.DeviceContoso] != harness.TenantContoso || got[harness.DeviceFabrikam] != harness.TenantFabrikam {
			t.Errorf("phone %s lists %v", p.Name, got)
		}
		var o struct {
			Orgs []struct {
				Name, Username string
				Tenants        []struct{ Tenant, Role string }
			}
		}
		if err := p.Run(ctx, "--json", "orgs").JSON(&o); err != nil {
			t.Fatal(err)
		}
		if len(o.Orgs) != 1 || o.Orgs[0].Name != harness.OrgName || o.Orgs[0].Username != p.Name {
			t.Errorf("phone %s orgs = %+v", p.Name, o)
		}
	}
	out, err := w.Console.Must(ctx, "devices")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{harness.DeviceContoso, harness.DeviceFabrikam} {
		if !strings.Contains(out, d) {
			t.Errorf("console devices lacks %s:\n%s", d, out)
		}
	}
	// A token is single use by default.
	tok, err := w.Console.Token(ctx, harness.TenantContoso)
	if err != nil {
		t.Fatal(err)
	}
	a1, _, err := w.NewAgent(ctx, "CONTOSO-WS2")
	if err != nil {
		t.Fatal(err)
	}
	if res := a1.Enroll(ctx, tok); !res.OK() {
		t.Fatalf("first enrollment: %s", res)
	}
	a2, _, err := w.NewAgent(ctx, "CONTOSO-WS3")
	if err != nil {
		t.Fatal(err)
	}
	res := a2.Enroll(ctx, tok)
	if res.OK() {
		t.Fatal("a used token enrolled a second computer")
	}
	if !strings.Contains(res.Stderr, "expired or used up") {
		t.Errorf("second enrollment: want a readable 'expired or used up', got: %s", res)
	}
}

// TestQRLoginNamedMode: in a named-mode tenant a PAM login as msp-nik
// through the real pam_jitkey.so shows a QR code; Nik's approval makes
// his own account ready; pam_unix accepts the password the module hands
// on (the account's real one) and opens the session; closing the session
// disables the account again; the console's audit shows it all.
func TestQRLoginNamedMode(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	w := newWorld(t, ctx)
	l, err := w.PAMLogin(ctx, w.Contoso, w.Nik, harness.NamedAccountNik)
	if err != nil {
		t.Fatal(err)
	}
	acct := l.User
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	info, err := w.ContosoAcc.Lookup(ctx, acct)
	if err != nil || !info.Admin {
		t.Fatalf("%s admin = %v (%v), want a sudo member", acct, info.Admin, err)
	}
	if err := l.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)
	mustNoneEnabled(t, ctx, w)
	log := mustAudit(t, ctx, w, "login.approved="+acct, "account.enabled="+acct, "account.disabled="+acct)
	for _, r := range log.Records(harness.DeviceContoso) {
		if r.Event == "login.approved" && r.Username != harness.TechNik {
			t.Errorf("login.approved names %q, want %q", r.Username, harness.TechNik)
		}
	}

	// The module refuses when nobody approves: the phone denies, PAM
	// fails with the module's reason and nothing is enabled.
	l, err = w.Contoso.StartPAMLogin(ctx, harness.NamedAccountNik)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := l.WaitQR(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sc := w.ScanPayload(ctx, w.Nik, payload, false); sc.Status == "approved" {
		t.Fatalf("deny scan: %s", sc.Result)
	}
	if err := l.Enter(); err != nil {
		t.Fatal(err)
	}
	why, err := l.Failure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(why, "jitkey: login refused: denied by the technician") {
		t.Fatalf("PAM failure without the module's reason: %q", why)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)
}

// TestQRLoginSharedMode: in a shared-mode tenant two technicians log in
// to the same shared account one after the other through the real PAM
// module, and the audit still names each of them.
func TestQRLoginSharedMode(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	w := newWorld(t, ctx)
	shared, err := w.SharedAccount(ctx, harness.TenantFabrikam)
	if err != nil {
		t.Fatal(err)
	}
	if shared == harness.NamedAccountNik || shared == harness.NamedAccountSam {
		t.Fatalf("shared mode uses a named account %s", shared)
	}
	for _, p := range []*harness.Phone{w.Nik, w.Sam} {
		l, err := w.PAMLogin(ctx, w.Fabrikam, p, shared)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		mustEnabled(t, ctx, w.FabrikamAcc, shared, true)
		if err := l.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		mustEnabled(t, ctx, w.FabrikamAcc, shared, false)
	}
	mustNoneEnabled(t, ctx, w)
	log := mustAudit(t, ctx, w, "login.approved="+shared, "account.disabled="+shared)
	who := map[string]bool{}
	for _, r := range log.Records(harness.DeviceFabrikam) {
		if r.Event == "login.approved" {
			who[r.Username] = true
		}
	}
	if !who[harness.TechNik] || !who[harness.TechSam] {
		t.Errorf("audit of the shared account names %v, want nik and sam", who)
	}
}

// TestShareDeviceDenial: after "Share device" removes all-admins (and
// all-users) from FABRIKAM-SRV1, the agent refuses Nik (a tenant admin)
// with a readable message on his phone, enables nothing and audits the
// denial; Sam, a global admin, still gets in.
func TestShareDeviceDenial(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	w := newWorld(t, ctx)
	if _, err := w.Share(ctx, harness.DeviceFabrikam, "--remove", "all-admins", "--remove", "all-users"); err != nil {
		t.Fatal(err)
	}
	s := showLoginQR(t, ctx, w.Fabrikam)
	// The phone has not synced the new policy: the agent decides.
	sc := w.ScanQR(ctx, w.Nik, s, true)
	if sc.OK() || sc.Status == "approved" {
		t.Fatalf("Nik was let in: %s", sc.Result)
	}
	if !strings.Contains(sc.Stdout+sc.Stderr, "not allowed on this device") {
		t.Errorf("phone shows no readable refusal: %s", sc.Result)
	}
	mustNoneEnabled(t, ctx, w)
	// Sam, global admin, is not affected by share lists. A refused scan
	// ends only that scan (SPEC 11.3): the screen stays open and Sam
	// scans the very code it shows.
	if !s.Running() {
		t.Fatal("the login screen ended with a refused scan")
	}
	sc = w.ScanQR(ctx, w.Sam, s, true)
	if !sc.OK() {
		t.Fatalf("Sam (global admin) refused: %s", sc.Result)
	}
	if _, err := s.WaitLoggedIn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustNoneEnabled(t, ctx, w)
	log := mustAudit(t, ctx, w, "login.denied", "login.approved")
	for _, r := range log.Records(harness.DeviceFabrikam) {
		if r.Event == "login.denied" && r.Username != harness.TechNik {
			t.Errorf("login.denied names %q, want nik", r.Username)
		}
	}
}

// TestTechnicianDenies: the technician taps "deny": the surface is told,
// no account is made ready.
func TestTechnicianDenies(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	w := newWorld(t, ctx)
	s := showLoginQR(t, ctx, w.Contoso)
	sc := w.ScanQR(ctx, w.Nik, s, false)
	// A deny is the technician's decision carried out: status "denied", exit 0.
	if sc.Status != "denied" || sc.Code != 0 {
		t.Fatalf("deny failed: %s", sc.Result)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := s.WaitFor(wctx, 0, regexpDenied); err != nil {
		t.Fatalf("surface did not show the denial: %v", err)
	}
	if _, err := w.ContosoAcc.Lookup(ctx, harness.NamedAccountNik); err == nil {
		mustEnabled(t, ctx, w.ContosoAcc, harness.NamedAccountNik, false)
	} else if !errors.Is(err, accounts.ErrNotFound) {
		t.Fatal(err)
	}
	mustNoneEnabled(t, ctx, w)
}
