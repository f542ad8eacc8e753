package web

import (
	"crypto/rand"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/protocol"
)

func grant(tenant, role string) protocol.Grant { return protocol.Grant{Tenant: tenant, Role: role} }

// TestSignIn: the phone sees the console's organisation, origin and the
// browser; an approval signs in only the browser that showed the code,
// once; the session cookie is HttpOnly and SameSite=Strict.
func TestSignIn(t *testing.T) {
	e := newEnv(t)
	sam := e.addTech("sam", true)
	b := e.browser()
	resp, page := b.do(http.MethodGet, "/signin", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<svg") {
		t.Fatalf("sign-in page %d without an SVG QR:\n%s", resp.StatusCode, page)
	}
	text := html.UnescapeString(signinText.FindStringSubmatch(page)[1])
	q, err := protocol.ParseQR(text)
	e.must(err)
	if q.Kind != protocol.QRLogin || q.Action != protocol.ActionConsole || q.DeviceID != (protocol.DeviceID{}) || q.Static != e.con.Peer().NoisePublic() {
		t.Fatalf("sign-in QR %+v", q)
	}
	// Another browser polling gets nothing.
	other := e.browser()
	other.do(http.MethodGet, "/signin", nil, nil)

	out, shown, err := sam.scan(e.ctx, text, true)
	if err != nil || out.Status != app.StatusApproved {
		t.Fatalf("scan: %v %+v", err, out)
	}
	if c := shown.Console; c == nil || c.Org != "Acme MSP" || c.Origin != e.origin || !strings.Contains(c.Client, "127.0.0.1") {
		t.Fatalf("the phone showed %+v", shown.Console)
	}
	if !strings.Contains(shown.Summary(), "Sign in to the web console of Acme MSP at "+e.origin+" as sam") {
		t.Fatalf("summary %q", shown.Summary())
	}
	if _, body := other.do(http.MethodPost, "/signin/status", nil, nil); !strings.Contains(body, `"waiting"`) {
		t.Fatalf("another browser's status: %s", body)
	}
	resp, body := b.do(http.MethodPost, "/signin/status", nil, nil)
	if !strings.Contains(body, `"approved"`) {
		t.Fatalf("status after approval: %s", body)
	}
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieSession {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure || len(sc.Value) != 43 {
		t.Fatalf("session cookie %+v", sc)
	}
	// Redeemed once.
	if _, body := b.do(http.MethodPost, "/signin/status", nil, nil); !strings.Contains(body, `"expired"`) {
		t.Fatalf("second redeem: %s", body)
	}
	resp, page = b.do(http.MethodGet, "/tenants", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="whoami">sam <span class="role">(global-admin)`) {
		t.Fatalf("tenants page %d:\n%s", resp.StatusCode, page)
	}
	// The code is used: scanning it again is refused.
	if out, _, err := sam.scan(e.ctx, text, true); err == nil && out.Status == app.StatusApproved {
		t.Fatal("a used sign-in code approved again")
	}
	// Security headers.
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
}

// TestSignInRefusals: a deny signs nobody in; a revoked phone and a
// technician without a phone cannot; a phone never answers a code shown
// by another console.
func TestSignInRefusals(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	sam := e.addTech("sam", true)
	nik := e.addTech("nik", false, grant("acme", "admin"))

	b := e.browser()
	_, page := b.do(http.MethodGet, "/signin", nil, nil)
	text := html.UnescapeString(signinText.FindStringSubmatch(page)[1])
	out, _, err := sam.scan(e.ctx, text, false)
	if err != nil || out.Status != app.StatusDenied {
		t.Fatalf("deny: %v %+v", err, out)
	}
	resp, body := b.do(http.MethodPost, "/signin/status", nil, nil)
	if !strings.Contains(body, `"denied"`) || len(resp.Cookies()) != 0 {
		t.Fatalf("status after deny: %s %v", body, resp.Cookies())
	}

	// Revoked phone.
	_, _, err = e.con.RevokeTech(e.ctx, "nik")
	e.must(err)
	_, page = b.do(http.MethodGet, "/signin", nil, nil)
	text = html.UnescapeString(signinText.FindStringSubmatch(page)[1])
	out, _, err = nik.scan(e.ctx, text, true)
	if err != nil || out.Status != app.StatusRefused {
		t.Fatalf("revoked phone: %v %+v", err, out)
	}
	if _, body := b.do(http.MethodPost, "/signin/status", nil, nil); !strings.Contains(body, `"waiting"`) {
		t.Fatalf("status after a refused scan: %s (the code stays usable)", body)
	}
	if !strings.Contains(e.logs.all(), "console sign-in refused") {
		t.Fatal("refusal not logged")
	}

	// A code from another console: the phone does not even dial.
	var secret [protocol.QRSecretLen]byte
	rand.Read(secret[:])
	var rogue protocol.NoiseKey
	rand.Read(rogue[:])
	q := protocol.ConsoleQR(rogue, e.con.Peer().Mailbox(), e.relay, secret, e.clock.Now())
	fake, err := q.Encode()
	e.must(err)
	if _, _, err := sam.scan(e.ctx, fake, true); !errors.Is(err, app.ErrNotOurConsole) {
		t.Fatalf("foreign console code: %v, want ErrNotOurConsole", err)
	}
}

// TestCSRF: a change without the session's token, from another origin or
// cross-site is refused before it changes anything; with them it works.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	sam := e.addTech("sam", true)
	b := e.browser()
	csrf := b.signIn(sam)
	form := func(name, tok string) url.Values {
		v := url.Values{"name": {name}, "mode": {"named"}, "max_session": {"8h"}, "inactivity_days": {"30"}}
		if tok != "" {
			v.Set("csrf", tok)
		}
		return v
	}
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", form("t1", ""), nil},
		{"wrong token", form("t2", strings.Repeat("A", len(csrf))), nil},
		{"other origin", form("t3", csrf), map[string]string{"Origin": "http://evil.example"}},
		{"cross-site fetch", form("t4", csrf), map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range cases {
		resp, body := b.do(http.MethodPost, "/tenants/add", c.form, c.hdr)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
		}
	}
	tns, _, err := e.con.Tenants(e.ctx)
	e.must(err)
	if len(tns) != 0 {
		t.Fatalf("refused requests created %d tenants", len(tns))
	}
	resp, _ := b.do(http.MethodPost, "/tenants/add", form("acme", csrf), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good request: %d", resp.StatusCode)
	}
	if _, err := e.con.Tenant(e.ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	// A header token works for fetch requests too.
	resp, _ = b.do(http.MethodPost, "/tenants/add", form("globex", ""), map[string]string{"X-CSRF-Token": csrf})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("header token: %d", resp.StatusCode)
	}
	// Host check: a rebinding name is not served.
	req, _ := http.NewRequest(http.MethodGet, e.origin+"/signin", nil)
	req.Host = "rebind.example:80"
	r2, err := http.DefaultClient.Do(req)
	e.must(err)
	r2.Body.Close()
	if r2.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("foreign Host: %d", r2.StatusCode)
	}
}

// TestSessionExpiry: a session ends after MaxIdle without requests and
// after MaxAge whatever; logout ends it; a revoked technician is signed
// out at its next request.
func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	sam := e.addTech("sam", true)
	b := e.browser()
	b.signIn(sam)
	e.clock.Add(DefaultMaxIdle - time.Second)
	if resp, _ := b.do(http.MethodGet, "/tenants", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("within idle time: %d", resp.StatusCode)
	}
	e.clock.Add(DefaultMaxIdle + time.Second)
	resp, _ := b.do(http.MethodGet, "/tenants", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Fatalf("after idle time: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.do(http.MethodGet, "/audit/rows", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("poll after expiry: %d", resp.StatusCode)
	}

	// Maximum age, even when active.
	csrf := b.signIn(sam)
	for elapsed := time.Duration(0); elapsed <= DefaultMaxAge; elapsed += 20 * time.Minute {
		e.clock.Add(20 * time.Minute)
		b.do(http.MethodGet, "/tenants", nil, nil)
	}
	resp, body := b.do(http.MethodPost, "/tenants/add", url.Values{"csrf": {csrf}, "name": {"x"}, "mode": {"named"}, "max_session": {"8h"}, "inactivity_days": {"1"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("change after max age: %d %s", resp.StatusCode, body)
	}

	// Logout.
	csrf = b.signIn(sam)
	if resp, _ := b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.do(http.MethodGet, "/tenants", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}

	// Revocation signs out at once.
	b.signIn(sam)
	_, _, err := e.con.RevokeTech(e.ctx, "sam")
	e.must(err)
	resp, _ = b.do(http.MethodGet, "/tenants", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "revoked") {
		t.Fatalf("after revocation: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestRoles: a read-only technician sees its tenant and changes nothing;
// a tenant admin changes its tenant only and never technicians.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"acme", "globex"} {
		_, _, err := e.con.AddTenant(e.ctx, n, console.TenantChange{})
		e.must(err)
	}
	ro := e.addTech("rita", false, grant("acme", "read-only"))
	nik := e.addTech("nik", false, grant("acme", "admin"))
	set := func(tenant, csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "name": {tenant}, "mode": {"shared"}, "max_session": {"1h"}, "inactivity_days": {"5"}}
	}

	before, err := e.con.Tenant(e.ctx, "acme")
	e.must(err)
	b := e.browser()
	csrf := b.signIn(ro)
	_, page := b.do(http.MethodGet, "/tenants", nil, nil)
	if !strings.Contains(page, `id="tenant-acme"`) || strings.Contains(page, `id="tenant-globex"`) {
		t.Fatalf("read-only tenants page shows the wrong tenants:\n%s", page)
	}
	if strings.Contains(page, `action="/tenants/set"`) || strings.Contains(page, `action="/tenants/add"`) || !strings.Contains(page, "read-only access") {
		t.Fatalf("read-only page offers changes:\n%s", page)
	}
	for path, form := range map[string]url.Values{
		"/tenants/set": set("acme", csrf),
		"/tenants/add": set("new", csrf),
		"/techs/add":   {"csrf": {csrf}, "username": {"eve"}, "email": {"eve@x.example"}, "global_admin": {"on"}},
		"/techs/pair":  {"csrf": {csrf}, "username": {"rita"}},
		"/tokens/add":  {"csrf": {csrf}, "tenant": {"acme"}, "expires": {"1h"}, "uses": {"1"}},
	} {
		if resp, body := b.do(http.MethodPost, path, form, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Errorf("read-only %s: %d %s", path, resp.StatusCode, body)
		}
	}
	ti, err := e.con.Tenant(e.ctx, "acme")
	e.must(err)
	if ti.Tenant.LoginMode != "named" || ti.Policy.Version != before.Policy.Version {
		t.Fatalf("read-only changed acme: %+v v%d", ti.Tenant, ti.Policy.Version)
	}

	a := e.browser()
	csrf = a.signIn(nik)
	if resp, _ := a.do(http.MethodPost, "/tenants/set", set("acme", csrf), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tenant admin changes its tenant: %d", resp.StatusCode)
	}
	if resp, _ := a.do(http.MethodPost, "/tenants/set", set("globex", csrf), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tenant admin changes another tenant: %d", resp.StatusCode)
	}
	if resp, _ := a.do(http.MethodPost, "/techs/add", url.Values{"csrf": {csrf}, "username": {"eve"}, "email": {"e@x.example"}, "global_admin": {"on"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tenant admin adds a global admin: %d", resp.StatusCode)
	}
	resp, page := a.do(http.MethodPost, "/tokens/add", url.Values{"csrf": {csrf}, "tenant": {"acme"}, "expires": {"1h0m0s"}, "uses": {"2"}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "jk-enroll-") {
		t.Fatalf("tenant admin token: %d", resp.StatusCode)
	}
	// Shown once: the list names it by id only.
	if _, page := a.do(http.MethodGet, "/tokens", nil, nil); strings.Contains(page, "jk-enroll-") {
		t.Fatal("token shown again")
	}
	ti, err = e.con.Tenant(e.ctx, "acme")
	e.must(err)
	if ti.Tenant.LoginMode != "shared" || ti.Tenant.MaxSession != 3600 {
		t.Fatalf("acme after the tenant admin's change: %+v", ti.Tenant)
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0", "+1": "'+1", "-2": "'-2", "@x": "'@x", "nik": "nik", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAlarms: a push login reported as fraud and a broken audit chain head
// every page, named for what they are, and only for the tenants the
// technician may see.
func TestAlarms(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"acme", "globex"} {
		_, _, err := e.con.AddTenant(e.ctx, n, console.TenantChange{})
		e.must(err)
	}
	sam := e.addTech("sam", true)
	nik := e.addTech("nik", false, grant("globex", "admin"))
	dev := protocol.DeviceID{1}
	e.must(e.con.DB().Update(e.ctx, func(tx *store.Tx) error {
		serial, err := tx.NewSerial("device", e.clock.Now().Unix())
		if err != nil {
			return err
		}
		if err := tx.InsertDevice(&store.Device{ID: dev, Tenant: "acme", Name: "ACME-WS1", OS: "linux", Serial: serial}); err != nil {
			return err
		}
		if err := tx.InsertAlarm(&store.Alarm{DeviceID: dev, Seq: 7, Kind: console.AlarmPushReported, Detail: "nik answered: this was not me", Time: e.clock.Now().Unix()}); err != nil {
			return err
		}
		if err := tx.InsertAlarm(&store.Alarm{DeviceID: dev, Seq: 3, Kind: console.AlarmReceiptMissing, Detail: "no end receipt for the session of msp-nik", Time: e.clock.Now().Unix()}); err != nil {
			return err
		}
		return tx.InsertAlarm(&store.Alarm{DeviceID: dev, Seq: 9, Kind: console.AlarmGap, Detail: "expected seq 9, got 11", Time: e.clock.Now().Unix()})
	}))

	b := e.browser()
	b.signIn(sam)
	_, page := b.do(http.MethodGet, "/devices", nil, nil)
	fraud := strings.Index(page, "Push login reported as fraud")
	chain := strings.Index(page, "Audit chain broken for device ACME-WS1 at record 9")
	content := strings.Index(page, "<h1")
	if fraud < 0 || chain < 0 || !strings.Contains(page, "Alarms (3)") || !strings.Contains(page, "End receipt missing on device ACME-WS1: no end receipt for the session of msp-nik") {
		t.Fatalf("global admin's page does not show both alarms:\n%s", page)
	}
	if content < 0 || fraud > content || chain > content {
		t.Fatalf("alarms are not shown before the page's content (fraud at %d, chain at %d, heading at %d)", fraud, chain, content)
	}
	if strings.Contains(page, "Audit chain broken for device ACME-WS1 at record 7") {
		t.Fatal("the fraud report is shown as a broken audit chain")
	}

	g := e.browser()
	g.signIn(nik)
	if _, page := g.do(http.MethodGet, "/devices", nil, nil); strings.Contains(page, "ACME-WS1") || strings.Contains(page, "Alarms (") {
		t.Fatalf("globex's admin sees acme's alarms:\n%s", page)
	}
}
