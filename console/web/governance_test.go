package web

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

// TestTenantGovernanceForm (issue 20): the tenant form sets the
// governance switches the command line has (required reason, ticket
// pattern, warning before the cap, end-user notice, push limits); the
// console signs them into the next policy. Values out of bounds are
// refused on the server with the reason, whatever the browser checked,
// and change nothing; without the CSRF token nothing changes either.
func TestTenantGovernanceForm(t *testing.T) {
	e := newEnv(t)
	sam := e.addTech("sam", true)
	b := e.browser()
	csrf := b.signIn(sam)
	base := func(tok string) url.Values {
		v := url.Values{"name": {"acme"}, "mode": {"named"}, "max_session": {"8h"}, "inactivity_days": {"30"}}
		if tok != "" {
			v.Set("csrf", tok)
		}
		return v
	}
	if resp, body := b.do(http.MethodPost, "/tenants/add", base(csrf), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %d %s", resp.StatusCode, body)
	}
	version := func() uint64 {
		ti, err := e.con.Tenant(e.ctx, "acme")
		e.must(err)
		return ti.Policy.Version
	}
	v0 := version()

	gov := base(csrf)
	for k, val := range map[string]string{"require_reason": "on", "ticket_pattern": "INC-[0-9]+", "warn_before": "10m",
		"end_user_notice": "on", "push_max_pending": "5", "push_per_hour": "20", "push_block": "30m", "breakglass_off": "on"} {
		gov.Set(k, val)
	}
	// Without the token: refused, nothing changed.
	noTok := base("")
	for k, vs := range gov {
		if k != "csrf" {
			noTok[k] = vs
		}
	}
	if resp, _ := b.do(http.MethodPost, "/tenants/set", noTok, nil); resp.StatusCode != http.StatusForbidden || version() != v0 {
		t.Fatalf("governance change without the CSRF token: %d, policy v%d (was v%d)", resp.StatusCode, version(), v0)
	}
	if resp, body := b.do(http.MethodPost, "/tenants/set", gov, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set: %d %s", resp.StatusCode, body)
	}
	ti, err := e.con.Tenant(e.ctx, "acme")
	e.must(err)
	p := ti.Policy
	if !p.RequireReason || p.TicketPattern != "INC-[0-9]+" || p.WarnBefore != 600 || !p.EndUserNotice ||
		p.PushMaxPending != 5 || p.PushPerHour != 20 || p.PushBlock != 1800 || !p.BreakGlassOff {
		t.Fatalf("signed policy v%d: %+v", p.Version, p)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	// The page shows them.
	if _, body := b.do(http.MethodGet, "/tenants", nil, nil); !strings.Contains(html.UnescapeString(body), "reason required") ||
		!strings.Contains(html.UnescapeString(body), "<code>INC-[0-9]+</code>") || !strings.Contains(body, "warn 10m0s before") ||
		!strings.Contains(body, "push: 5 pending, 20/h, block 30m0s") || !strings.Contains(body, "break-glass off") ||
		!strings.Contains(body, `name="breakglass_off" checked`) {
		t.Fatalf("tenants page does not show the settings:\n%s", body)
	}
	v1 := version()

	for _, c := range []struct{ field, value, want string }{
		{"ticket_pattern", "INC-(", "ticket pattern"},
		{"ticket_pattern", strings.Repeat("a", protocol.MaxTicketPatternLen+1), "ticket pattern"},
		{"ticket_pattern", "INC-\x01", "ticket pattern"},
		{"warn_before", "25h", "warning before the session cap"},
		{"warn_before", "1.5s", "warning before the session cap"},
		{"warn_before", "-1m", "warning before the cap must be a duration"},
		{"push_max_pending", "17", "pending push logins per computer must be 1..16"},
		{"push_max_pending", "0", "pending push logins per computer must be 1..16"},
		{"push_per_hour", "101", "push logins per technician and hour must be 1..100"},
		{"push_per_hour", "ten", "must be a whole number"},
		{"push_block", "30s", "push block after a fraud report"},
		{"push_block", "8d", "push block after a fraud report must be a duration"},
		{"end_user_notice", "yes", "must be on or absent"},
		{"breakglass_off", "yes", "must be on or absent"},
	} {
		bad := url.Values{}
		for k, vs := range gov {
			bad[k] = vs
		}
		bad.Set(c.field, c.value)
		resp, body := b.do(http.MethodPost, "/tenants/set", bad, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, c.want) {
			t.Errorf("%s=%q: %d, want 422 saying %q:\n%s", c.field, c.value, resp.StatusCode, c.want, errorLine(body))
		}
		if version() != v1 {
			t.Fatalf("%s=%q: a refused form published policy v%d", c.field, c.value, version())
		}
	}

	// Clearing: no pattern, no warning, no notice, no reason, break-glass
	// back on (an unchecked box is absent); push
	// fields left empty keep their values.
	cleared := base(csrf)
	for k, val := range map[string]string{"ticket_pattern": "", "warn_before": "0s", "push_max_pending": "", "push_block": ""} {
		cleared.Set(k, val)
	}
	if resp, body := b.do(http.MethodPost, "/tenants/set", cleared, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear: %d %s", resp.StatusCode, body)
	}
	ti, err = e.con.Tenant(e.ctx, "acme")
	e.must(err)
	p = ti.Policy
	if p.RequireReason || p.TicketPattern != "" || p.WarnBefore != 0 || p.EndUserNotice || p.BreakGlassOff || p.PushMaxPending != 5 || p.PushBlock != 1800 {
		t.Fatalf("after clearing: %+v", p)
	}
}

// errorLine returns the page's error message, for failure reports.
func errorLine(body string) string {
	i := strings.Index(body, `id="error"`)
	if i < 0 {
		return "(no error shown)"
	}
	return body[i:min(len(body), i+300)]
}
