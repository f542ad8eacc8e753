//go:build linux

package testbed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/domain"
	"github.com/jitkey/jitkey/agent/domain/sambatest"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/testbed/harness"
)

// TestDomainLogin (SPEC.md 11.7, 8.2) with real processes: a real Samba
// AD DC on loopback, the relay, jitkey-console, a DC agent
// (`jitkey-agent run --role dc`), a domain-joined workstation agent and
// Nik's phone (jitkey-phone). The console lists each side's FlowDomain
// peers in its pushes; the phone chooses a domain account; the surface
// gets JITKEY\msp-nik; the account is enabled and in Domain Admins only
// while the surface holds the session; the logout disables it and
// removes the membership; both agents' audit reaches the console.
func TestDomainLogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dc, err := sambatest.Start(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Close)
	ou, err := dc.AddOU("testbed")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := domain.New(domain.Config{
		URL: sambatest.URL, RootCAs: dc.CAPool, BindDN: sambatest.AdminDN,
		BindPassword: password.FromBytes([]byte(sambatest.AdminPass)), OU: ou, AdminGroup: sambatest.AdminGroup,
		UPNSuffix: sambatest.UPNSuffix,
	})
	if err != nil {
		t.Fatal(err)
	}

	w := newWorld(t, ctx)
	if _, err := w.Console.Must(ctx, "tenant", "set", harness.TenantContoso, "--selective-login", "--domain-accounts"); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(t.TempDir(), "bind.pw")
	if err := os.WriteFile(pwFile, []byte(sambatest.AdminPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dca, _, err := w.NewAgent(ctx, "CONTOSO-DC1")
	if err != nil {
		t.Fatal(err)
	}
	dca.EnrollArgs = []string{"--dc"}
	dca.RunArgs = []string{"--role", "dc", "--ldaps-url", sambatest.URL, "--ldaps-ca", dc.CAFile,
		"--bind-dn", sambatest.AdminDN, "--bind-password-file", pwFile, "--ou", ou,
		"--admin-group", sambatest.AdminGroup, "--upn-suffix", sambatest.UPNSuffix}
	ws, _, err := w.NewAgent(ctx, "CONTOSO-WS2")
	if err != nil {
		t.Fatal(err)
	}
	ws.EnrollArgs = []string{"--domain-joined"}
	ws.RunArgs = []string{"--domain", sambatest.Domain}
	for _, a := range []*harness.Agent{dca, ws} {
		tok, err := w.Console.Token(ctx, harness.TenantContoso)
		if err != nil {
			t.Fatal(err)
		}
		if res := a.Enroll(ctx, tok); !res.OK() {
			t.Fatalf("enroll %s: %s", a.Name, res)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The console's pushes: the DC agent learns the workstation (and
	// itself, a DC counts as domain-joined), the workstation its DC agent.
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if _, err := dca.Proc.WaitFor(wctx, 0, regexp.MustCompile(`domain workstations" count=2`)); err != nil {
		t.Fatalf("DC agent never got the workstations: %v", err)
	}
	if _, err := ws.Proc.WaitFor(wctx, 0, regexp.MustCompile(`domain controllers" count=1`)); err != nil {
		t.Fatalf("workstation never got its DC agent: %v", err)
	}
	if err := w.SyncUntil(ctx, w.Nik, 4); err != nil {
		t.Fatal(err)
	}

	s, err := ws.StartSurfaceNoProof("logon", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitQR(wctx, 0); err != nil {
		t.Fatal(err)
	}
	sc := w.ScanQR(ctx, w.Nik, s, true, "--account", "domain")
	if !sc.OK() || sc.Status != "approved" {
		t.Fatalf("scan: %+v", sc)
	}
	name, err := s.WaitLoggedIn(wctx)
	if err != nil || name != sambatest.Domain+`\msp-nik` {
		t.Fatalf("surface logged in as %q (%v)", name, err)
	}
	e, err := dir.Lookup(ctx, "msp-nik")
	if err != nil || !e.Enabled() || !e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("during the session: %+v %v, want enabled, in Domain Admins", e, err)
	}
	if err := s.Logout(wctx); err != nil {
		t.Fatal(err)
	}
	e, err = dir.Lookup(ctx, "msp-nik")
	if err != nil || e.Enabled() || e.InGroup(sambatest.AdminGroup) {
		t.Fatalf("after the session: %+v %v, want disabled, no membership", e, err)
	}
	if _, err := w.WaitAudit(ctx, 30*time.Second, func(l harness.AuditLog) error {
		if !l.Has("login.approved", sambatest.Domain+`\msp-nik`) || !l.Has("session.ended", sambatest.Domain+`\msp-nik`) ||
			!l.Has("account.enabled", "msp-nik") || !l.Has("account.disabled", "msp-nik") {
			return errors.New("domain login not in the audit yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
