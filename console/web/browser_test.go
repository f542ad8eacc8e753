package web

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitkey/jitkey/console"

	"github.com/jitkey/jitkey/console/web/webtest"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// signInBrowser signs the browser in with phone p: the phone decodes the
// QR from a screenshot of the page, as its camera would, and approves.
func (e *env) signInBrowser(b *webtest.Browser, p *phone, shot string) {
	e.t.Helper()
	b.Do("open sign-in", chromedp.Navigate(e.origin+"/signin"), chromedp.WaitVisible(chromedp.CSS("#signin-qr svg")))
	b.Shot(shot)
	text, err := qrcode.Decode(b.Element("#signin-qr"))
	if err != nil {
		e.t.Fatalf("decode the sign-in QR from the screenshot: %v", err)
	}
	out, shown, err := p.scan(e.ctx, text, true)
	if err != nil || out.Status != app.StatusApproved {
		e.t.Fatalf("phone approval: %v %+v", err, out)
	}
	e.t.Logf("the phone showed: %s", shown.Summary())
	// The page notices the approval by itself (no reload by the test).
	b.Do("signed in", chromedp.WaitVisible(chromedp.CSS("#whoami")))
}

// TestBrowser drives the web console in headless chromium: sign-in with
// the simulated phone, a tenant and its governance switches (a bad ticket
// pattern refused by the server), a technician with a pairing QR, a token,
// the pages at phone width, CSRF and expired-session refusals, and a
// read-only technician who cannot change anything.
func TestBrowser(t *testing.T) {
	e := newEnv(t)
	sam := e.addTech("sam", true)
	b := webtest.New(t, e.ctx)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log:\n%s", e.logs.all())
		}
	})

	e.signInBrowser(b, sam, "signin")
	if who := b.Text("#whoami"); !strings.Contains(who, "sam") || !strings.Contains(who, "global-admin") {
		t.Fatalf("signed in as %q", who)
	}
	if u := b.Location(); !strings.HasSuffix(u, "/tenants") {
		t.Fatalf("after sign-in at %s", u)
	}
	if httpOnly := webtest.Eval[string](b, `document.cookie`); httpOnly != "" {
		t.Fatalf("page script sees cookies %q (must be HttpOnly)", httpOnly)
	}

	// A tenant.
	b.Do("add tenant",
		chromedp.SendKeys(chromedp.CSS("#new-tenant-name"), "contoso"),
		chromedp.SetValue(chromedp.CSS("#new-mode"), "shared"),
		chromedp.Click(chromedp.CSS(`#add-tenant input[name="push_login"]`)),
		chromedp.Submit(chromedp.CSS("#add-tenant")),
		chromedp.WaitVisible(chromedp.CSS("#tenant-contoso")))
	if f := b.Text("#flash"); !strings.Contains(f, "Tenant contoso added") {
		t.Fatalf("flash %q", f)
	}
	b.Shot("tenants")
	ti, err := e.con.Tenant(e.ctx, "contoso")
	e.must(err)
	if ti.Tenant.LoginMode != protocol.ModeShared || !ti.Tenant.PushLogin {
		t.Fatalf("tenant as created: %+v", ti.Tenant)
	}
	// Governance switches through the tenant's change form (issue 20).
	set := `#tenant-contoso form[action="/tenants/set"]`
	b.Do("governance",
		chromedp.Click(chromedp.CSS(`#tenant-contoso summary`)),
		chromedp.WaitVisible(chromedp.CSS(set)),
		chromedp.Click(chromedp.CSS(set+` input[name="require_reason"]`)),
		chromedp.SendKeys(chromedp.CSS("#ticket-contoso"), "INC-[0-9]+"),
		chromedp.SetValue(chromedp.CSS("#warn-contoso"), "10m"),
		chromedp.Click(chromedp.CSS(set+` input[name="end_user_notice"]`)),
		chromedp.SetValue(chromedp.CSS("#push-hour-contoso"), "20"),
		chromedp.Submit(chromedp.CSS(set)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := b.Text("#flash"); !strings.Contains(f, "Tenant contoso changed") {
		t.Fatalf("flash %q", f)
	}
	ti, err = e.con.Tenant(e.ctx, "contoso")
	e.must(err)
	if p := ti.Policy; !p.RequireReason || p.TicketPattern != "INC-[0-9]+" || p.WarnBefore != 600 || !p.EndUserNotice ||
		p.PushPerHour != 20 || p.PushMaxPending != protocol.DefaultPushMaxPending || p.LoginMode != protocol.ModeShared || !p.PushLogin {
		t.Fatalf("policy after the governance form: %+v", p)
	}
	b.Shot("tenants-governance")
	// A pattern the browser cannot check: the server refuses it and says
	// why; the policy stays.
	version := ti.Policy.Version
	b.Do("bad pattern",
		chromedp.Click(chromedp.CSS(`#tenant-contoso summary`)),
		chromedp.WaitVisible(chromedp.CSS(set)),
		chromedp.SetValue(chromedp.CSS("#ticket-contoso"), "INC-("),
		chromedp.Submit(chromedp.CSS(set)),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := b.Text("#error"); !strings.Contains(msg, "ticket pattern") {
		t.Fatalf("error %q", msg)
	}
	ti, err = e.con.Tenant(e.ctx, "contoso")
	e.must(err)
	if ti.Policy.Version != version || ti.Policy.TicketPattern != "INC-[0-9]+" {
		t.Fatalf("refused pattern changed the policy: v%d %q", ti.Policy.Version, ti.Policy.TicketPattern)
	}
	b.Do("tenants again", chromedp.Navigate(e.origin+"/tenants"), chromedp.WaitVisible(chromedp.CSS("#tenant-contoso")))

	// An error is shown, nothing created.
	b.Do("bad tenant", chromedp.SendKeys(chromedp.CSS("#new-tenant-name"), "Bad Name"),
		chromedp.Submit(chromedp.CSS("#add-tenant")), chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := b.Text("#error"); !strings.Contains(msg, "may only use a-z") {
		t.Fatalf("error %q", msg)
	}

	// A technician, then its pairing QR.
	b.Do("add technician", chromedp.Navigate(e.origin+"/techs"),
		chromedp.SendKeys(chromedp.CSS("#tech-username"), "nik"),
		chromedp.SendKeys(chromedp.CSS("#tech-email"), "nik@acme.example"),
		chromedp.SetValue(chromedp.CSS("#role-contoso"), "admin"),
		chromedp.Submit(chromedp.CSS("#add-tech")),
		chromedp.WaitVisible(chromedp.CSS("#tech-nik")))
	if f := b.Text("#flash"); !strings.Contains(f, "Technician nik added") {
		t.Fatalf("flash %q", f)
	}
	b.Do("pair nik", chromedp.Click(chromedp.CSS(`button[aria-label="Pair a phone for nik"]`)),
		chromedp.WaitVisible(chromedp.CSS("#pair svg")))
	b.Shot("techs-pairing")
	pairText, err := qrcode.Decode(b.Element("#pair .qr"))
	if err != nil {
		t.Fatalf("decode the pairing QR: %v", err)
	}
	if q, err := protocol.ParseQR(pairText); err != nil || q.Kind != protocol.QRPair {
		t.Fatalf("pairing QR %q: %v", pairText, err)
	}

	// An enrollment token, shown once.
	b.Do("token", chromedp.Navigate(e.origin+"/tokens"), chromedp.SetValue(chromedp.CSS("#tok-uses"), "3"),
		chromedp.Submit(chromedp.CSS("#add-token")), chromedp.WaitVisible(chromedp.CSS("#token-text")))
	tok, err := chromedp.Run(b.Ctx, chromedp.Value(chromedp.CSS("#token-text")))
	e.must(err)
	if dt, err := protocol.DecodeEnrollToken(tok, e.clock.Now()); err != nil || dt.Tenant != "contoso" {
		t.Fatalf("token %q: %v", tok, err)
	}
	b.Shot("tokens")
	b.Do("devices", chromedp.Navigate(e.origin+"/devices"), chromedp.WaitVisible(chromedp.CSS("#dev-q")))
	b.Shot("devices")
	b.Do("audit", chromedp.Navigate(e.origin+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit-live")))
	b.Shot("audit")

	// Phone width: nothing wider than the screen.
	b.Do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(e.origin+"/techs"),
		chromedp.WaitVisible(chromedp.CSS("#tech-nik")))
	if w := webtest.Eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("technicians page is %d px wide at phone width 390", w)
	}
	b.Shot("techs-phone-width")
	b.Do("desktop width", chromedp.EmulateViewport(1280, 900))

	// Keyboard: the first Tab reaches the skip link, visibly focused.
	b.Do("keyboard", chromedp.Navigate(e.origin+"/tenants"), chromedp.WaitVisible(chromedp.CSS("#whoami")),
		chromedp.KeyEvent("\t"))
	if a := webtest.Eval[string](b, `document.activeElement.className + "|" + getComputedStyle(document.activeElement).outlineStyle`); a != "skip|solid" {
		t.Errorf("first Tab focuses %q, want the skip link with a solid outline", a)
	}

	// CSRF: a request without the page's token is refused.
	status := webtest.Eval[int](b, `fetch("/tenants/add", {method: "POST", body: new URLSearchParams({name: "evil", mode: "named", max_session: "8h", inactivity_days: "1"})}).then(r => r.status)`)
	if status != 403 {
		t.Fatalf("POST without CSRF token: %d, want 403", status)
	}
	if _, err := e.con.Tenant(e.ctx, "evil"); err == nil {
		t.Fatal("the refused request created a tenant")
	}

	// Session expiry: after the idle time the next page is the sign-in.
	e.clock.Add(DefaultMaxIdle + time.Second)
	b.Do("expired", chromedp.Navigate(e.origin+"/techs"), chromedp.WaitVisible(chromedp.CSS("#signin-qr svg")))
	if u := b.Location(); !strings.Contains(u, "/signin") || !strings.Contains(u, "why=ended") {
		t.Fatalf("expired session landed on %s", u)
	}
	if note := b.Text(".signin .note"); !strings.Contains(note, "Your session has ended") {
		t.Fatalf("sign-in note %q", note)
	}
	b.Shot("expired-session")

	// A read-only technician sees but cannot change.
	_, _, err = e.con.AddTenant(e.ctx, "fabrikam", consoleChange())
	e.must(err)
	rita := e.addTech("rita", false, protocol.Grant{Tenant: "contoso", Role: protocol.RoleReadOnly})
	e.signInBrowser(b, rita, "signin-read-only")
	b.Do("read-only tenants", chromedp.WaitVisible(chromedp.CSS("#tenant-contoso")))
	b.Shot("tenants-read-only")
	forms := webtest.Eval[int](b, `document.querySelectorAll("form[method=post]:not([action='/logout'])").length`)
	if forms != 0 {
		t.Fatalf("read-only page has %d change forms", forms)
	}
	if n := webtest.Eval[int](b, `document.querySelectorAll("#tenant-fabrikam").length`); n != 0 {
		t.Fatal("read-only technician sees a tenant it is not delegated to")
	}
	status = webtest.Eval[int](b, `fetch("/tenants/set", {method: "POST", headers: {"X-CSRF-Token": document.getElementById("main").dataset.csrf}, body: new URLSearchParams({name: "contoso", mode: "named", max_session: "1h", inactivity_days: "1"})}).then(r => r.status)`)
	if status != 403 {
		t.Fatalf("read-only change with a valid token: %d, want 403", status)
	}
	b.Do("read-only techs", chromedp.Navigate(e.origin+"/techs"), chromedp.WaitVisible(chromedp.CSS("#tech-rita")))
	b.Shot("techs-read-only")
}

func consoleChange() console.TenantChange { return console.TenantChange{} }
