package web

import (
	"context"
	"crypto/rand"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/consoletest"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/console/signin"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// clock is the web server's and console's clock; tests move it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a console with its web UI over a real QUIC relay on loopback, and
// phones (mobilesim) paired with it.
type env struct {
	t      *testing.T
	ctx    context.Context
	con    *console.Console
	reg    *signin.Registry
	web    *Server
	ts     *httptest.Server
	origin string
	clock  *clock
	relay  string
	pin    [32]byte
	logs   *logBuf
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) Enabled(context.Context, slog.Level) bool { return true }
func (l *logBuf) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.Resolve().String(); return true })
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	return nil
}
func (l *logBuf) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logBuf) WithGroup(string) slog.Handler      { return l }
func (l *logBuf) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	relay := consoletest.StartRelay(t)
	e := &env{t: t, ctx: ctx, clock: &clock{t: time.Now()}, relay: relay.Addr, pin: relay.Pin, logs: &logBuf{}}
	log := slog.New(e.logs)
	e.con, _ = consoletest.NewConsole(ctx, t, "", relay, e.clock.Now, log)

	e.ts = httptest.NewUnstartedServer(nil)
	e.origin = "http://" + e.ts.Listener.Addr().String()
	e.reg = signin.New(signin.Config{Console: e.con, Origin: e.origin, Now: e.clock.Now, Rand: rand.Reader, Logger: log})
	var err error
	e.web, err = New(Config{Console: e.con, SignIn: e.reg, Origin: e.origin, Now: e.clock.Now, Rand: rand.Reader, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.ts.Config.Handler = e.web
	e.ts.Start()
	t.Cleanup(e.ts.Close)

	consoletest.Serve(ctx, t, relay, server.Config{Console: e.con, SignIn: e.reg, PollInterval: 100 * time.Millisecond,
		RetryInterval: 10 * time.Second, SessionTimeout: 20 * time.Second, Logger: log})
	return e
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// phone is a technician's paired phone on the relay.
type phone struct {
	app  *app.App
	link *cli.Link
	gate *biometric.Fixed
}

// addTech adds a technician and pairs a phone for it.
func (e *env) addTech(username string, global bool, grants ...protocol.Grant) *phone {
	e.t.Helper()
	_, err := e.con.AddTech(e.ctx, username, username+"@acme.example", global, grants)
	e.must(err)
	gate := &biometric.Fixed{}
	key, err := biometric.Generate(e.ctx, gate, rand.Reader)
	e.must(err)
	w, err := wallet.Create(filepath.Join(e.t.TempDir(), "phone-"+username), e.relay, [][32]byte{e.pin}, key, rand.Reader)
	e.must(err)
	a := app.New(app.Config{Wallet: w, Gate: gate, Now: e.clock.Now})
	link, err := cli.RelayConnect(e.ctx, cli.LinkConfig{Phone: w.Phone(), Accept: a.Accept, Handle: a.Handle})
	e.must(err)
	e.t.Cleanup(link.Close)
	q, err := e.con.NewPairing(e.ctx, username)
	e.must(err)
	text, err := q.Encode()
	e.must(err)
	if _, err := a.Pair(e.ctx, link.Mux, text); err != nil {
		e.t.Fatalf("pair %s: %v", username, err)
	}
	return &phone{app: a, link: link, gate: gate}
}

// scan has the phone scan a sign-in code and decide.
func (p *phone) scan(ctx context.Context, text string, approve bool) (*app.Outcome, *app.Request, error) {
	var shown *app.Request
	out, err := p.app.Scan(ctx, p.link.Mux, text, app.ScanOptions{Decide: func(_ context.Context, r *app.Request) (app.Decision, error) {
		shown = r
		return app.Decision{Approve: approve}, nil
	}})
	return out, shown, err
}

// browser is an HTTP client with cookies, sending what a browser sends
// with same-origin requests.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	e.must(err)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.e.ctx, method, b.e.origin+path, body)
	b.e.must(err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", b.e.origin)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	b.e.must(err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	b.e.must(err)
	return resp, string(out)
}

var (
	signinText = regexp.MustCompile(`id="signin-text">([^<]+)<`)
	csrfField  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// signIn signs the browser in by approving with p; it returns the
// session's CSRF token.
func (b *browser) signIn(p *phone) string {
	b.e.t.Helper()
	_, page := b.do(http.MethodGet, "/signin", nil, nil)
	m := signinText.FindStringSubmatch(page)
	if m == nil {
		b.e.t.Fatalf("sign-in page without a code: %s", page)
	}
	out, _, err := p.scan(b.e.ctx, html.UnescapeString(m[1]), true)
	if err != nil || out.Status != app.StatusApproved {
		b.e.t.Fatalf("phone approval: %v %+v\n%s", err, out, b.e.logs.all())
	}
	if resp, body := b.do(http.MethodPost, "/signin/status", nil, nil); !strings.Contains(body, `"approved"`) {
		b.e.t.Fatalf("sign-in status %d %s", resp.StatusCode, body)
	}
	_, page = b.do(http.MethodGet, "/tenants", nil, nil)
	c := csrfField.FindStringSubmatch(page)
	if c == nil {
		b.e.t.Fatalf("no CSRF token on the tenants page: %s", page)
	}
	return c[1]
}
