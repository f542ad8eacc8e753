// Package web is the console's web UI (`jitkey-console serve --web`): MSP
// admins manage tenants, technicians, devices and their share lists,
// enrollment tokens, and read the audit trail and its alarms, in a browser.
//
// It holds no authority of its own. Every change calls the same package
// console functions as the command-line tool (one authority, one audit),
// and every page reads through them or the console's store.
//
// Sign-in has no password: the page shows a console sign-in QR that the
// technician's paired phone approves (package console/signin, SPEC.md
// 11.12). The browser then holds a session cookie (random, HttpOnly,
// SameSite=Strict, Secure under TLS); the session lives in memory, bound to
// the technician's id and certificate serial, at most Config.MaxAge and
// Config.MaxIdle. Every request re-reads the technician, so a revoked or
// removed one is signed out at once. Every state-changing request must
// carry the session's CSRF token and come from the console's own origin
// (Origin, Sec-Fetch-Site); requests for another Host are refused (DNS
// rebinding).
//
// Roles: a global admin sees and changes everything; a tenant admin sees
// its tenants and changes those it is admin of (never technicians or new
// tenants); a read-only technician sees its tenants and changes nothing.
package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/signin"
	"github.com/jitkey/jitkey/console/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// maxBody bounds a submitted form.
const maxBody = 64 << 10

// Defaults of Config.
const (
	DefaultMaxAge  = 12 * time.Hour
	DefaultMaxIdle = 30 * time.Minute
)

// Cookie names. Under TLS the session cookie takes the __Host- prefix:
// Secure, Path=/, no Domain, so no sibling host can set it.
const (
	cookieSession    = "jk_session"
	cookieSessionTLS = "__Host-jk_session"
	cookieSignIn     = "jk_signin"
	cookieSignInTLS  = "__Host-jk_signin"
)

// Alarm is shown first on every page: an audit chain break, or another
// kind an AlarmSource reports.
type Alarm struct {
	Tenant string
	Kind   string // e.g. "broken-chain", "fraud-report"
	Text   string
	Time   time.Time
}

// AlarmSource reports alarms besides the audit chain's: the hook for fraud
// reports from push login ("I did not ask for this" on the phone), which
// the console records elsewhere. It returns every open alarm; the web UI
// shows each technician those of the tenants it may see.
type AlarmSource func(ctx context.Context) ([]Alarm, error)

// Config configures a Server.
type Config struct {
	Console *console.Console
	SignIn  *signin.Registry
	// Origin is the console's web origin, e.g. "https://console.example:8443"
	// or "http://127.0.0.1:8080": state-changing requests must come from
	// it, and only its host is served.
	Origin  string
	MaxAge  time.Duration // session lifetime; default DefaultMaxAge
	MaxIdle time.Duration // idle time before a session ends; default DefaultMaxIdle
	// Alarms are further alarm sources (fraud reports).
	Alarms []AlarmSource
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Server serves the web UI.
type Server struct {
	cfg      Config
	con      *console.Console
	log      *slog.Logger
	sess     *sessions
	origin   *url.URL
	tls      bool
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
	cSession string
	cSignIn  string
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.Origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("web: origin %q must be http(s)://host[:port]", cfg.Origin)
	}
	s := &Server{cfg: cfg, con: cfg.Console, log: log, sess: newSessions(cfg.MaxAge, cfg.MaxIdle), origin: u,
		tls: u.Scheme == "https", cSession: cookieSession, cSignIn: cookieSignIn}
	if s.tls {
		s.cSession, s.cSignIn = cookieSessionTLS, cookieSignInTLS
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(static))
	s.routes()
	return s, nil
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"utc": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"join": strings.Join,
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("web: templates: %w", err)
		}
		pages[base] = t
	}
	return pages, nil
}

// ServeHTTP serves the web UI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes chromium send "Origin: null" with form posts
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.tls {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	// Only the console's own host name: a rebinding DNS name pointing at
	// 127.0.0.1 gets nothing.
	if !strings.EqualFold(r.Host, s.origin.Host) {
		http.Error(w, "unknown host", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("GET /static/", s.static)
	m.HandleFunc("GET /signin", s.signInPage)
	m.HandleFunc("POST /signin/status", s.signInStatus)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/tenants", http.StatusSeeOther) })
	auth := func(pattern string, h func(http.ResponseWriter, *http.Request, *request)) {
		m.HandleFunc(pattern, s.authed(h))
	}
	auth("POST /logout", s.logout)
	auth("GET /tenants", s.tenantsPage)
	auth("POST /tenants/add", s.tenantAdd)
	auth("POST /tenants/set", s.tenantSet)
	auth("GET /techs", s.techsPage)
	auth("POST /techs/add", s.techAdd)
	auth("POST /techs/revoke", s.techRevoke)
	auth("POST /techs/remove", s.techRemove)
	auth("POST /techs/pair", s.techPair)
	auth("GET /devices", s.devicesPage)
	auth("GET /devices/share", s.sharePage)
	auth("POST /devices/share", s.shareSet)
	auth("POST /devices/remove", s.deviceRemove)
	auth("GET /tokens", s.tokensPage)
	auth("POST /tokens/add", s.tokenAdd)
	auth("GET /audit", s.auditPage)
	auth("GET /audit/rows", s.auditRows)
	auth("GET /audit/export", s.auditExport)
	s.mux = m
}

// request is an authenticated request: the session and the technician as
// the store holds it now.
type request struct {
	sess  *session
	admin *console.Admin
}

// sameOrigin checks a state-changing request's Origin and Sec-Fetch-Site
// headers, where the browser sends them.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != s.origin.Scheme+"://"+s.origin.Host {
		return false
	}
	if f := r.Header.Get("Sec-Fetch-Site"); f != "" && f != "same-origin" {
		return false
	}
	return true
}

// authed wraps a handler that needs a signed-in technician; for anything
// but GET and HEAD it also checks the CSRF token and the origin.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		c, _ := r.Cookie(s.cSession)
		var ss *session
		if c != nil {
			ss = s.sess.get(c.Value, s.cfg.Now())
		}
		if ss == nil {
			s.signedOut(w, r, read, "ended")
			return
		}
		admin, err := s.con.SignedIn(r.Context(), ss.techID, ss.serial)
		if err != nil {
			s.sess.end(ss)
			s.log.Warn("web session ended: technician lost access", "username", ss.username, "err", err)
			s.signedOut(w, r, read, "revoked")
			return
		}
		if !read {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostForm.Get("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(tok), []byte(ss.csrf)) != 1 || !s.sameOrigin(r) {
				s.log.Warn("web request refused: CSRF check failed", "username", admin.Tech.Username, "path", r.URL.Path,
					"origin", r.Header.Get("Origin"), "fetch_site", r.Header.Get("Sec-Fetch-Site"))
				http.Error(w, "refused: this request did not come from a console page (CSRF check failed)", http.StatusForbidden)
				return
			}
		}
		h(w, r, &request{sess: ss, admin: admin})
	}
}

// whyText are the sign-in page's notes, by the code in its "why"
// parameter (a fixed set: the page never shows text from the URL).
var whyText = map[string]string{
	"ended":     "Your session has ended. Sign in again.",
	"revoked":   "Your access was revoked or changed. Sign in again if you still have access.",
	"signedout": "You are signed out.",
}

// signedOut sends a page request to the sign-in page and refuses
// anything else with 401.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, page bool, why string) {
	s.clearCookie(w, s.cSession)
	if page && r.URL.Path != "/audit/rows" && r.URL.Path != "/audit/export" {
		http.Redirect(w, r, "/signin?why="+url.QueryEscape(why), http.StatusSeeOther)
		return
	}
	http.Error(w, "signed out: "+whyText[why], http.StatusUnauthorized)
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: s.tls, SameSite: http.SameSiteStrictMode})
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.tls, SameSite: http.SameSiteStrictMode})
}

// errorText turns a console error into a sentence for the page: refusals
// are meant for people; anything else is logged and shown generically.
func (s *Server) errorText(err error, what string) string {
	var ref *console.Refusal
	var fe *formError
	switch {
	case errors.As(err, &ref):
		return ref.Reason
	case errors.As(err, &fe):
		return fe.msg
	case errors.Is(err, console.ErrLocked):
		return "this change must be signed with the MSP key, which is locked: restart serve with --passphrase-file"
	}
	s.log.Error("web: "+what, "err", err)
	return what + " failed; see the console log"
}

// alarmText is the sentence of a stored alarm: a push login reported as
// fraud (SPEC.md 11.5), an end receipt forged or missing (6.6), or a
// break in a device's audit chain.
func alarmText(al *store.Alarm) string {
	switch al.Kind {
	case console.AlarmPushReported:
		return fmt.Sprintf("Push login reported as fraud (\"this was not me\") on device %s: %s", al.DeviceName, al.Detail)
	case console.AlarmReceiptMissing:
		return fmt.Sprintf("End receipt missing on device %s: %s", al.DeviceName, al.Detail)
	case console.AlarmBreakGlassUsed:
		return fmt.Sprintf("Break-glass recovery code used on device %s: %s", al.DeviceName, al.Detail)
	case console.AlarmReceiptForged:
		return fmt.Sprintf("End receipt forged on device %s: %s", al.DeviceName, al.Detail)
	}
	return fmt.Sprintf("Audit chain broken for device %s at record %d: %s: %s", al.DeviceName, al.Seq, al.Kind, al.Detail)
}

// alarms reads the stored alarms (audit chain breaks, push fraud reports)
// and those of the further sources, keeping the tenants a may see.
func (s *Server) alarms(ctx context.Context, a *console.Admin) []Alarm {
	var out []Alarm
	var rows []*store.Alarm
	err := s.con.DB().View(ctx, func(tx *store.Tx) error {
		var err error
		rows, err = tx.Alarms("", nil)
		return err
	})
	if err != nil {
		s.log.Error("web: read alarms", "err", err)
	}
	for _, al := range rows {
		out = append(out, Alarm{Tenant: al.Tenant, Kind: al.Kind, Time: time.Unix(al.Time, 0), Text: alarmText(al)})
	}
	for _, src := range s.cfg.Alarms {
		more, err := src(ctx)
		if err != nil {
			s.log.Error("web: read alarms", "err", err)
			continue
		}
		out = append(out, more...)
	}
	vis := out[:0]
	for _, al := range out {
		if a.MaySee(al.Tenant) {
			vis = append(vis, al)
		}
	}
	return vis
}
