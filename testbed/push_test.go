//go:build linux

package testbed

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// TestPushLogin (SPEC.md 11.5): with push login on for Contoso, a login
// screen asks Nik's phone by his email; the screen shows a number, the
// phone shows the computer's name, the account, the action and three
// numbers; Nik picks the screen's number and is logged in through PAM.
// A second push is answered "this was not me": the screen shows the
// denial, the console's audit listing starts with the alarm, and no
// account stays enabled.
func TestPushLogin(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--push-login"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, acct, n, shown, err := w.PushLogin(ctx, w.Contoso, w.Nik, "Nik@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("push login: screen to PAM login in %v", time.Since(start).Round(time.Millisecond))
	if acct != harness.NamedAccountNik || shown.Request.Device != harness.DeviceContoso || shown.Request.Account != harness.NamedAccountNik ||
		shown.Request.Action != "logon" || len(shown.Numbers) != 3 || !slices.Contains(shown.Numbers, n) {
		t.Fatalf("logged in as %s; phone showed %+v; screen showed %d", acct, shown, n)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)

	if err := w.PushReport(ctx, w.Contoso, w.Nik, "nik@acme.example"); err != nil {
		t.Fatal(err)
	}
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w, "login.approved="+harness.NamedAccountNik)
	if _, err := w.WaitAudit(ctx, 20*time.Second, func(a harness.AuditLog) error {
		for _, r := range a.Records(harness.DeviceContoso) {
			if r.Event == "push.reported" && r.Username == harness.TechNik && r.Method == "push" {
				return nil
			}
		}
		return fmt.Errorf("no push.reported")
	}); err != nil {
		t.Fatal(err)
	}
	out := w.Console.Run(ctx, "audit", "--tenant", harness.TenantContoso)
	first, _, _ := strings.Cut(out.Stdout, "\n")
	if !strings.HasPrefix(first, "!!! PUSH LOGIN REPORTED AS FRAUD on device "+harness.DeviceContoso) {
		t.Fatalf("audit listing does not start with the alarm:\n%s", out.Stdout)
	}
}

// TestPushWakesPhone (SPEC.md 11.5, 12.6): the relay runs with a push
// gateway (jitkey-relay --push-gateway) that the phone serves itself
// while offline (jitkey-phone listen --wake-gateway, the pushgw
// stand-in). A first push login hands the agent the phone's sealed
// ticket; for the second the phone is not connected: the relay wakes it
// through the gateway, the phone connects, shows the request and Nik
// logs in with the screen's number.
func TestPushWakesPhone(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := ln.Addr().String()
	ln.Close()
	w := harness.NewWorld(newBed(t))
	w.PushGateway = "http://" + gw + "/wake"
	if err := w.Setup(ctx); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--push-login"); err != nil {
		t.Fatal(err)
	}
	s, acct, _, _, err := w.PushLogin(ctx, w.Contoso, w.Nik, "nik@acme.example", "--wake-token", "nik-phone-token")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, acct2, n, shown, err := w.PushLogin(ctx, w.Contoso, w.Nik, "nik@acme.example",
		"--wake-token", "nik-phone-token", "--wake-gateway", gw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("woken push login: screen to PAM login in %v", time.Since(start).Round(time.Millisecond))
	if acct != harness.NamedAccountNik || acct2 != acct || !slices.Contains(shown.Numbers, n) {
		t.Fatalf("logged in as %s then %s; phone showed %v, screen %d", acct, acct2, shown.Numbers, n)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustNoneEnabled(t, ctx, w)
}
