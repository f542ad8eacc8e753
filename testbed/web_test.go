//go:build linux

package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jitkey/jitkey/console/web/webtest"
	"github.com/jitkey/jitkey/testbed/harness"
)

var webOrigin = regexp.MustCompile(`^web=(http://\S+)$`)

// TestWebConsole runs the web console of the real jitkey-console binary
// (`serve --web 127.0.0.1:0`) in headless chromium: Sam signs in by
// scanning the page's QR with the real jitkey-phone (from a screenshot
// of the page), shares CONTOSO-WS1 with Nik alone in the "Share device"
// dialog, sees the agent's signed "applied policy" record in the audit
// view, and then sees Nik's login on CONTOSO-WS1 appear in the open audit
// view without a reload.
func TestWebConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	w := newWorld(t, ctx)

	// Serve again, with the web console.
	if err := w.Console.Serve.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	w.Console.Serve, w.Console.ServeArgs = nil, []string{"--web", "127.0.0.1:0"}
	if err := w.Console.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := w.Console.Serve.WaitFor(ctx, 0, webOrigin)
	if err != nil {
		t.Fatal(err)
	}
	origin := m[1]
	b := webtest.New(t, ctx)

	// Sign in: the phone binary scans a screenshot of the page's QR.
	b.Do("sign-in page", chromedp.Navigate(origin+"/signin"), chromedp.WaitVisible(chromedp.CSS("#signin-qr svg")))
	b.Shot("signin")
	png := filepath.Join(t.TempDir(), "signin-qr.png")
	if err := os.WriteFile(png, b.Element("#signin-qr"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := w.Sam.Run(ctx, "--json", "scan", "--image", png, "--approve")
	if !res.OK() || !strings.Contains(res.Stdout, "signed in to the web console at "+origin) {
		t.Fatalf("phone scan of the sign-in code: %s", res)
	}
	b.Do("signed in", chromedp.WaitVisible(chromedp.CSS("#whoami")))
	if who := b.Text("#whoami"); !strings.Contains(who, harness.TechSam) {
		t.Fatalf("signed in as %q", who)
	}

	// Share CONTOSO-WS1 with Nik alone.
	b.Do("devices", chromedp.Navigate(origin+"/devices?tenant="+harness.TenantContoso),
		chromedp.WaitVisible(chromedp.CSS("#device-"+harness.DeviceContoso)))
	b.Shot("devices")
	b.Do("share dialog", chromedp.Click(chromedp.CSS(`a[aria-label="Share `+harness.DeviceContoso+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#share-dialog")))
	b.Do("choose nik",
		chromedp.Click(chromedp.CSS(`#share-dialog input[value="all-admins"]`)),
		chromedp.Click(chromedp.CSS(`#share-dialog input[value="all-users"]`)),
		chromedp.Click(chromedp.CSS(`#share-dialog input[value="`+harness.TechNik+`"]`)))
	b.Shot("share-dialog")
	b.Do("save share", chromedp.Click(chromedp.CSS("#share-save")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	flash := b.Text("#flash")
	var version int
	if _, err := fmt.Sscanf(flash[strings.Index(flash, "policy version"):], "policy version %d", &version); err != nil ||
		!strings.Contains(flash, "shared with nik (global admins always)") {
		t.Fatalf("flash %q", flash)
	}
	if got := b.Text("#device-" + harness.DeviceContoso + " .shares"); got != harness.TechNik {
		t.Fatalf("share column %q", got)
	}
	b.Shot("devices-shared")

	// The agent applies it and says so in its signed audit trail, which
	// the audit view shows.
	b.Do("audit", chromedp.Navigate(origin+"/audit?device="+harness.DeviceContoso), chromedp.WaitVisible(chromedp.CSS("#audit-live")))
	applied := fmt.Sprintf("%s applied policy (version %d)", harness.DeviceContoso, version)
	waitText(t, b, "#audit-rows", applied, 30*time.Second)
	if out, err := w.Console.Must(ctx, "devices", "--tenant", harness.TenantContoso); err != nil || !strings.Contains(out, fmt.Sprintf("v%d", version)) {
		t.Fatalf("console does not list the agent at v%d: %s %v", version, out, err)
	}

	// A login appears in the open audit view without a reload.
	webtest.Eval[bool](b, `window.noReload = true`)
	s, acct, err := w.Login(ctx, w.Contoso, w.Nik)
	if err != nil {
		t.Fatalf("nik's login on %s: %v", harness.DeviceContoso, err)
	}
	defer s.Logout(ctx)
	waitText(t, b, "#audit-rows", "nik logged into "+harness.DeviceContoso+" with account "+acct, 30*time.Second)
	if !webtest.Eval[bool](b, `window.noReload === true`) {
		t.Fatal("the audit page reloaded")
	}
	if live := b.Text("#audit-live"); !strings.Contains(live, "new record") {
		t.Fatalf("live status %q", live)
	}
	b.Shot("audit-live")

	// Exports carry the same records.
	csv := webtest.Eval[string](b, `fetch("/audit/export?format=csv&device=`+harness.DeviceContoso+`").then(r => r.text())`)
	if !strings.Contains(csv, "login.approved") || !strings.HasPrefix(csv, "type,time,tenant,device") {
		t.Fatalf("CSV export:\n%s", csv)
	}
	jsonl := webtest.Eval[string](b, `fetch("/audit/export?format=json&device=`+harness.DeviceContoso+`").then(r => r.text())`)
	if !strings.Contains(jsonl, `"event":"login.approved"`) {
		t.Fatalf("JSON export:\n%s", jsonl)
	}
}

// waitText polls the page until the text of sel contains want: records
// reach the console asynchronously.
func waitText(t *testing.T, b *webtest.Browser, sel, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if strings.Contains(webtest.Eval[string](b, `document.querySelector(`+fmt.Sprintf("%q", sel)+`).textContent`), want) {
			return
		}
		if time.Now().After(deadline) {
			b.Shot("failed-wait")
			t.Fatalf("%s never showed %q", sel, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
