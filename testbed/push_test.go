//go:build linux

package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

var (
	phoneListening  = regexp.MustCompile(`"event":"listening"`)
	phonePushShown  = regexp.MustCompile(`^(\{.*"event":"push".*)$`)
	phonePushResult = regexp.MustCompile(`^(\{.*"event":"push-result".*)$`)
)

// pushShown is what the phone's listen --json prints for a push login.
type pushShown struct {
	Request struct {
		Device  string `json:"device"`
		Tenant  string `json:"tenant"`
		Account string `json:"account"`
		Action  string `json:"action"`
	} `json:"request"`
	Numbers []int `json:"numbers"`
}

// TestPushLogin (SPEC.md 11.5): with push login on for Contoso, a login
// screen asks Nik's phone by his email; the screen shows a number, the
// phone shows the computer's name, the account, the action and three
// numbers; Nik picks the screen's number and is logged in through PAM.
// A second push is answered "this was not me": the screen shows the
// denial, the console's audit listing starts with the alarm, and the
// account stays disabled.
func TestPushLogin(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	if _, err := w.TenantSet(ctx, harness.TenantContoso, harness.DeviceContoso, "--push-login"); err != nil {
		t.Fatal(err)
	}

	// Approve with the number on the screen.
	l, err := w.Nik.Start("listen", "--json", "listen", "--once")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitFor(ctx, 0, phoneListening); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := w.Contoso.StartPushSurface("Nik@acme.example", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	num, err := s.WaitPushNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := l.WaitFor(ctx, 0, phonePushShown)
	if err != nil {
		t.Fatal(err)
	}
	var shown pushShown
	if err := json.Unmarshal([]byte(m[1]), &shown); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(num)
	if shown.Request.Device != harness.DeviceContoso || shown.Request.Account != harness.NamedAccountNik ||
		shown.Request.Action != "logon" || len(shown.Numbers) != 3 || !slices.Contains(shown.Numbers, n) {
		t.Fatalf("phone showed %s; screen shows %s", m[1], num)
	}
	if err := l.Send(num + "\n"); err != nil {
		t.Fatal(err)
	}
	acct, err := s.WaitLoggedIn(ctx)
	if err != nil || acct != harness.NamedAccountNik {
		t.Fatalf("logged in as %q: %v", acct, err)
	}
	t.Logf("push login: screen to PAM login in %v", time.Since(start).Round(time.Millisecond))
	if m, err := l.WaitFor(ctx, 0, phonePushResult); err != nil || !strings.Contains(m[1], `"status":"approved"`) {
		t.Fatalf("phone result %v: %v", m, err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)

	// "This was not me".
	l, err = w.Nik.Start("report", "--json", "listen", "--once", "--report")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitFor(ctx, 0, phoneListening); err != nil {
		t.Fatal(err)
	}
	s, err = w.Contoso.StartPushSurface("nik@acme.example", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitPushNumber(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := l.WaitFor(ctx, 0, phonePushResult); err != nil || !strings.Contains(m[1], `"status":"reported"`) {
		t.Fatalf("phone result %v: %v", m, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := s.WaitFor(wctx, 0, regexpDenied); err != nil {
		t.Fatalf("surface did not show the denial: %v", err)
	}
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w, "login.approved="+harness.NamedAccountNik)
	if _, err := w.WaitAudit(ctx, 20*time.Second, func(a harness.AuditLog) error {
		for _, r := range a.Records(harness.DeviceContoso) {
			if r.Event == "push.reported" && r.Username == harness.TechNik {
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
