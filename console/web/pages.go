package web

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/auditview"
	"github.com/jitkey/jitkey/console/signin"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// page is what every page template gets.
type page struct {
	Title  string
	Nav    string
	User   string
	Role   string
	Global bool
	CSRF   string
	Flash  string
	Error  string
	Alarms []Alarm
	Org    string
	Data   any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, rq *request, name, title string, data any, status int, errText string) {
	p := page{Title: title, Nav: name, Org: s.con.Settings().Org, Data: data, Error: errText}
	if rq != nil {
		p.User, p.Role, p.CSRF = rq.admin.Tech.Username, rq.admin.Role(), rq.sess.csrf
		p.Global = rq.admin.Role() == console.WebGlobal
		p.Flash = s.sess.takeFlash(rq.sess)
		p.Alarms = s.alarms(r.Context(), rq.admin)
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout.html", &p); err != nil {
		s.log.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// done ends a successful change: flash and back to a page (POST,
// redirect, GET).
func (s *Server) done(w http.ResponseWriter, r *http.Request, rq *request, to, msg string) {
	s.sess.setFlash(rq.sess, msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// refused answers a change the technician's role does not allow.
func (s *Server) refused(w http.ResponseWriter, rq *request, what string) {
	s.log.Warn("web change refused: role", "username", rq.admin.Tech.Username, "role", rq.admin.Role(), "what", what)
	http.Error(w, "refused: your role ("+rq.admin.Role()+") may not "+what, http.StatusForbidden)
}

// globalOnly reports whether the technician is a global admin, as a
// change of the whole console (what) needs; if not, it answers refused.
func (s *Server) globalOnly(w http.ResponseWriter, rq *request, what string) bool {
	if rq.admin.Role() != console.WebGlobal {
		s.refused(w, rq, what)
		return false
	}
	return true
}

// mayChange reports whether the technician may change tenant, as the
// change what needs; if not, it answers refused.
func (s *Server) mayChange(w http.ResponseWriter, rq *request, tenant, what string) bool {
	if !rq.admin.MayChange(tenant) {
		s.refused(w, rq, what)
		return false
	}
	return true
}

// deviceToChange finds the device id names for a change of its tenant's
// devices (what, such as "share devices"): it answers 404 if there is
// none or the technician may not see it, and refused if the technician
// may not change its tenant; ok is false then.
func (s *Server) deviceToChange(w http.ResponseWriter, r *http.Request, rq *request, id, what string) (dv *store.Device, ok bool) {
	dv, err := s.con.FindDevice(r.Context(), id)
	if err != nil || !rq.admin.MaySee(dv.Tenant) {
		http.Error(w, "no such device", http.StatusNotFound)
		return nil, false
	}
	if !s.mayChange(w, rq, dv.Tenant, what+" of tenant "+dv.Tenant) {
		return nil, false
	}
	return dv, true
}

// --- sign-in ---------------------------------------------------------

type signInData struct {
	QR      template.HTML
	Text    string
	Expires time.Time
	Why     string
}

func clientOf(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > 90 {
		ua = ua[len(ua)-90:]
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.TrimSpace(host + " " + ua)
}

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	code, err := s.cfg.SignIn.Begin(clientOf(r))
	if err != nil {
		s.log.Error("web: sign-in code", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	svg, err := qrcode.SVG(code.QR, "sign-in code for the jitkey app")
	if err != nil {
		s.log.Error("web: sign-in QR", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	s.setCookie(w, s.cSignIn, code.Browser, 2*signin.TTL)
	why := whyText[r.URL.Query().Get("why")]
	s.render(w, r, nil, "signin", "Sign in", &signInData{QR: template.HTML(svg), Text: code.QR, Expires: code.Expires, Why: why}, http.StatusOK, "")
}

// signInStatus answers the sign-in page's poll; an approved sign-in is
// redeemed here, once, for a session cookie.
func (s *Server) signInStatus(w http.ResponseWriter, r *http.Request) {
	if !s.sameOrigin(r) {
		http.Error(w, "refused", http.StatusForbidden)
		return
	}
	state := signin.Expired
	var admin *console.Admin
	if c, err := r.Cookie(s.cSignIn); err == nil {
		admin, state = s.cfg.SignIn.Redeem(c.Value)
	}
	resp := map[string]string{"state": state.String()}
	if state == signin.Approved {
		id, _, err := s.sess.create(s.cfg.Rand, s.cfg.Now(), admin.Tech.ID, admin.Serial, admin.Tech.Username)
		if err != nil {
			s.log.Error("web: session", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		s.setCookie(w, s.cSession, id, s.cfg.MaxAge)
		s.clearCookie(w, s.cSignIn)
		s.log.Info("web session started", "username", admin.Tech.Username, "role", admin.Role(), "client", clientOf(r))
		resp["next"] = "/tenants"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, rq *request) {
	s.sess.end(rq.sess)
	s.clearCookie(w, s.cSession)
	s.log.Info("web session ended: logout", "username", rq.admin.Tech.Username)
	http.Redirect(w, r, "/signin?why=signedout", http.StatusSeeOther)
}

// --- tenants ---------------------------------------------------------

type tenantRow struct {
	*store.Tenant
	Version   uint64
	MayChange bool
	MaxSess   string
	// The governance settings as the form shows them: durations as text,
	// push limits in effect (the protocol's defaults where the tenant
	// sets none).
	Warn         string
	PushPending  int
	PushHour     int
	PushBlockFor string
}

// newTenantRow shows tn.
func newTenantRow(tn *store.Tenant, version uint64, mayChange bool) tenantRow {
	p := protocol.Policy{PushMaxPending: tn.PushMaxPending, PushPerHour: tn.PushPerHour, PushBlock: tn.PushBlock}
	pending, hour, block := p.PushLimits()
	return tenantRow{Tenant: tn, Version: version, MayChange: mayChange,
		MaxSess: (time.Duration(tn.MaxSession) * time.Second).String(), Warn: (time.Duration(tn.WarnBefore) * time.Second).String(),
		PushPending: pending, PushHour: hour, PushBlockFor: block.String()}
}

type tenantsData struct{ Tenants []tenantRow }

func (s *Server) tenantsPage(w http.ResponseWriter, r *http.Request, rq *request) {
	s.tenantsRender(w, r, rq, http.StatusOK, "")
}

func (s *Server) tenantsRender(w http.ResponseWriter, r *http.Request, rq *request, status int, errText string) {
	tns, vers, err := s.con.Tenants(r.Context())
	if err != nil {
		errText = s.errorText(err, "list tenants")
	}
	var d tenantsData
	for _, tn := range tns {
		if rq.admin.MaySee(tn.Name) {
			d.Tenants = append(d.Tenants, newTenantRow(tn, vers[tn.Name], rq.admin.MayChange(tn.Name)))
		}
	}
	s.render(w, r, rq, "tenants", "Tenants", &d, status, errText)
}

func (s *Server) tenantAdd(w http.ResponseWriter, r *http.Request, rq *request) {
	s.tenantChange(w, r, rq, false)
}

func (s *Server) tenantSet(w http.ResponseWriter, r *http.Request, rq *request) {
	s.tenantChange(w, r, rq, true)
}

// tenantChange adds a tenant from the tenant form (global admins only),
// or with set changes one (its admins).
func (s *Server) tenantChange(w http.ResponseWriter, r *http.Request, rq *request, set bool) {
	what, verb, change := "add tenant", "added", s.con.AddTenant
	if set {
		what, verb, change = "change tenant", "changed", s.con.SetTenant
	} else if !s.globalOnly(w, rq, "add tenants") {
		return
	}
	f, err := decodeTenantForm(r.PostForm)
	if err == nil && set && !s.mayChange(w, rq, f.Name, "change tenant "+f.Name) {
		return
	}
	if err == nil {
		var pol *protocol.Policy
		if _, pol, err = change(r.Context(), f.Name, f.change()); err == nil {
			s.log.Info("web: tenant "+verb, "by", rq.admin.Tech.Username, "tenant", f.Name, "policy_version", pol.Version)
			s.done(w, r, rq, "/tenants", fmt.Sprintf("Tenant %s %s (policy version %d).", f.Name, verb, pol.Version))
			return
		}
	}
	s.tenantsRender(w, r, rq, http.StatusUnprocessableEntity, s.errorText(err, what))
}

// --- technicians -----------------------------------------------------

type techRow struct {
	console.TechInfo
	Roles string
	Phone string
}

type techsData struct {
	Techs   []techRow
	Tenants []string
	Pair    *pairData
}

type pairData struct {
	Username string
	QR       template.HTML
	Text     string
	Until    time.Time
}

func (s *Server) techsPage(w http.ResponseWriter, r *http.Request, rq *request) {
	s.techsRender(w, r, rq, http.StatusOK, "", nil)
}

func (s *Server) techsRender(w http.ResponseWriter, r *http.Request, rq *request, status int, errText string, pair *pairData) {
	d := techsData{Pair: pair}
	ts, err := s.con.Techs(r.Context())
	if err != nil {
		errText = s.errorText(err, "list technicians")
	}
	now := s.cfg.Now().Unix()
	for _, t := range ts {
		visible := rq.admin.Role() == console.WebGlobal || t.GlobalAdmin
		var roles []string
		if t.GlobalAdmin {
			roles = append(roles, protocol.RoleGlobalAdmin)
		}
		for _, g := range t.Grants {
			if rq.admin.MaySee(g.Tenant) {
				visible = true
				roles = append(roles, g.Tenant+": "+g.Role)
			}
		}
		if !visible {
			continue
		}
		d.Techs = append(d.Techs, techRow{TechInfo: t, Roles: strings.Join(roles, ", "), Phone: t.Phone(now)})
	}
	tns, _, err := s.con.Tenants(r.Context())
	if err == nil {
		for _, tn := range tns {
			d.Tenants = append(d.Tenants, tn.Name)
		}
	}
	s.render(w, r, rq, "techs", "Technicians", &d, status, errText)
}

func (s *Server) techAdd(w http.ResponseWriter, r *http.Request, rq *request) {
	if !s.globalOnly(w, rq, "add technicians") {
		return
	}
	f, err := decodeTechForm(r.PostForm)
	if err == nil {
		var t *store.Tech
		if t, err = s.con.AddTech(r.Context(), f.Username, f.Email, f.Global, f.Grants); err == nil {
			s.log.Info("web: technician added", "by", rq.admin.Tech.Username, "username", t.Username, "tech_id", t.ID)
			s.done(w, r, rq, "/techs", fmt.Sprintf("Technician %s added. Pair a phone with “Pair phone”.", t.Username))
			return
		}
	}
	s.techsRender(w, r, rq, http.StatusUnprocessableEntity, s.errorText(err, "add technician"), nil)
}

func (s *Server) techDrop(w http.ResponseWriter, r *http.Request, rq *request, remove bool) {
	what, verb := "revoke technicians", "revoked"
	if remove {
		what, verb = "remove technicians", "removed"
	}
	if !s.globalOnly(w, rq, what) {
		return
	}
	username, err := one(r.PostForm, "username")
	if err == nil {
		var serials []uint64
		if remove {
			serials, _, err = s.con.RemoveTech(r.Context(), username)
		} else {
			serials, _, err = s.con.RevokeTech(r.Context(), username)
		}
		if err == nil {
			s.log.Warn("web: technician "+verb, "by", rq.admin.Tech.Username, "username", username, "serials", serials)
			s.done(w, r, rq, "/techs", fmt.Sprintf("Technician %s %s; revoked certificate serials %v.", username, verb, serials))
			return
		}
	}
	s.techsRender(w, r, rq, http.StatusUnprocessableEntity, s.errorText(err, what), nil)
}

func (s *Server) techRevoke(w http.ResponseWriter, r *http.Request, rq *request) {
	s.techDrop(w, r, rq, false)
}
func (s *Server) techRemove(w http.ResponseWriter, r *http.Request, rq *request) {
	s.techDrop(w, r, rq, true)
}

// techPair shows a pairing QR, once, on the page that answers the POST.
func (s *Server) techPair(w http.ResponseWriter, r *http.Request, rq *request) {
	if !s.globalOnly(w, rq, "pair phones") {
		return
	}
	username, err := one(r.PostForm, "username")
	var pd *pairData
	if err == nil {
		var q protocol.QRPayload
		if q, err = s.con.NewPairing(r.Context(), username); err == nil {
			var text, svg string
			if text, err = q.Encode(); err == nil {
				svg, err = qrcode.SVG(text, "pairing code for "+username)
			}
			if err == nil {
				s.log.Info("web: pairing code shown", "by", rq.admin.Tech.Username, "username", username)
				pd = &pairData{Username: username, QR: template.HTML(svg), Text: text, Until: q.Time.Add(console.PairingTTL)}
			}
		}
	}
	if err != nil {
		s.techsRender(w, r, rq, http.StatusUnprocessableEntity, s.errorText(err, "pair phone"), nil)
		return
	}
	s.techsRender(w, r, rq, http.StatusOK, "", pd)
}

// --- devices ---------------------------------------------------------

type deviceRow struct {
	*store.Device
	IDHex     string
	LastSeen  time.Time
	Domain    string
	Shares    string
	MayChange bool
}

type devicesData struct {
	Tenants []string
	Tenant  string
	Query   string
	Devices []deviceRow
}

func (s *Server) visibleTenants(r *http.Request, rq *request, changeOnly bool) []string {
	tns, _, err := s.con.Tenants(r.Context())
	if err != nil {
		return nil
	}
	var out []string
	for _, tn := range tns {
		if (!changeOnly && rq.admin.MaySee(tn.Name)) || rq.admin.MayChange(tn.Name) {
			out = append(out, tn.Name)
		}
	}
	return out
}

func (s *Server) devicesPage(w http.ResponseWriter, r *http.Request, rq *request) {
	s.devicesRender(w, r, rq, http.StatusOK, "")
}

func (s *Server) devicesRender(w http.ResponseWriter, r *http.Request, rq *request, status int, errText string) {
	q := r.URL.Query()
	d := devicesData{Tenants: s.visibleTenants(r, rq, false), Tenant: q.Get("tenant"), Query: strings.TrimSpace(q.Get("q"))}
	if d.Tenant != "" && !rq.admin.MaySee(d.Tenant) {
		d.Tenant = ""
		errText = "you may not see that tenant"
	}
	devs, err := s.con.Devices(r.Context(), d.Tenant)
	if err != nil {
		errText = s.errorText(err, "list devices")
	}
	needle := strings.ToLower(d.Query)
	for _, dv := range devs {
		if !rq.admin.MaySee(dv.Tenant) {
			continue
		}
		idh := hex.EncodeToString(dv.ID[:])
		if needle != "" && !strings.Contains(strings.ToLower(dv.Name+" "+dv.OS+" "+dv.Tenant+" "+idh), needle) {
			continue
		}
		dom := "no"
		if dv.DC {
			dom = "domain controller"
		} else if dv.DomainJoined {
			dom = "yes"
		}
		shares := strings.Join(dv.Shares, ", ")
		if !dv.CustomShare {
			shares = "all-admins, all-users (default)"
		} else if shares == "" {
			shares = "global admins only"
		}
		d.Devices = append(d.Devices, deviceRow{Device: dv, IDHex: idh, LastSeen: time.Unix(dv.LastSeen, 0), Domain: dom,
			Shares: shares, MayChange: rq.admin.MayChange(dv.Tenant)})
	}
	s.render(w, r, rq, "devices", "Devices", &d, status, errText)
}

type shareOption struct {
	Value   string
	Label   string
	Checked bool
}

type shareData struct {
	Device  deviceRow
	Options []shareOption
}

func (s *Server) sharePage(w http.ResponseWriter, r *http.Request, rq *request) {
	s.shareRender(w, r, rq, r.URL.Query().Get("device"), http.StatusOK, "")
}

func (s *Server) shareRender(w http.ResponseWriter, r *http.Request, rq *request, id string, status int, errText string) {
	if len(id) != 32 {
		http.Error(w, "no such device", http.StatusNotFound)
		return
	}
	dv, ok := s.deviceToChange(w, r, rq, id, "share devices")
	if !ok {
		return
	}
	current := dv.Shares
	if !dv.CustomShare {
		current = []string{protocol.ShareAllAdmins, protocol.ShareAllUsers}
	}
	d := shareData{Device: deviceRow{Device: dv, IDHex: hex.EncodeToString(dv.ID[:])}}
	d.Options = append(d.Options,
		shareOption{protocol.ShareAllAdmins, "All admins of " + dv.Tenant, slices.Contains(current, protocol.ShareAllAdmins)},
		shareOption{protocol.ShareAllUsers, "All technicians delegated to " + dv.Tenant, slices.Contains(current, protocol.ShareAllUsers)})
	ts, err := s.con.Techs(r.Context())
	if err != nil {
		errText = s.errorText(err, "list technicians")
	}
	for _, t := range ts {
		role := t.RoleIn(dv.Tenant)
		if t.Removed || role == "" || t.GlobalAdmin {
			continue
		}
		d.Options = append(d.Options, shareOption{t.Username, t.Username + " (" + role + ")", slices.Contains(current, t.Username)})
	}
	s.render(w, r, rq, "share", "Share device "+dv.Name, &d, status, errText)
}

func (s *Server) shareSet(w http.ResponseWriter, r *http.Request, rq *request) {
	f, err := decodeShareForm(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	dv, ok := s.deviceToChange(w, r, rq, f.Device, "share devices")
	if !ok {
		return
	}
	ch := f.shareChange(dv.Shares, dv.CustomShare)
	if !ch.Reset && len(ch.Add) == 0 && len(ch.Remove) == 0 {
		s.done(w, r, rq, "/devices?tenant="+dv.Tenant, "Nothing changed.")
		return
	}
	d, pol, err := s.con.SetShare(r.Context(), f.Device, ch)
	if err != nil {
		s.shareRender(w, r, rq, f.Device, http.StatusUnprocessableEntity, s.errorText(err, "share device"))
		return
	}
	list := strings.Join(d.Shares, ", ")
	if !d.CustomShare {
		list = "all-admins, all-users"
	} else if list == "" {
		list = "global admins only"
	}
	s.log.Info("web: share list changed", "by", rq.admin.Tech.Username, "device", d.Name, "tenant", d.Tenant, "entries", d.Shares, "policy_version", pol.Version)
	s.done(w, r, rq, "/devices?tenant="+d.Tenant, fmt.Sprintf("%s is shared with %s (global admins always); policy version %d.", d.Name, list, pol.Version))
}

func (s *Server) deviceRemove(w http.ResponseWriter, r *http.Request, rq *request) {
	id, err := one(r.PostForm, "device")
	if err != nil || len(id) != 32 {
		http.Error(w, "no such device", http.StatusBadRequest)
		return
	}
	dv, ok := s.deviceToChange(w, r, rq, id, "remove devices")
	if !ok {
		return
	}
	d, pol, err := s.con.RemoveDevice(r.Context(), id, dv.Tenant)
	if err != nil {
		s.devicesRender(w, r, rq, http.StatusUnprocessableEntity, s.errorText(err, "remove device"))
		return
	}
	s.log.Warn("web: device removed", "by", rq.admin.Tech.Username, "device", d.Name, "tenant", d.Tenant, "policy_version", pol.Version)
	s.done(w, r, rq, "/devices", fmt.Sprintf("%s removed from %s; its certificate is revoked in policy version %d.", d.Name, d.Tenant, pol.Version))
}

// --- enrollment tokens -----------------------------------------------

type tokenRow struct {
	*store.Token
	IDHex   string
	Expires time.Time
	Status  string
}

type tokensData struct {
	Tenants []string // those the technician may change
	Tokens  []tokenRow
	New     string // a token just created: shown once
	NewFor  string
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, rq *request) {
	s.tokensRender(w, r, rq, http.StatusOK, "", "", "")
}

func (s *Server) tokensRender(w http.ResponseWriter, r *http.Request, rq *request, status int, errText, newTok, newFor string) {
	d := tokensData{Tenants: s.visibleTenants(r, rq, true), New: newTok, NewFor: newFor}
	toks, err := s.con.Tokens(r.Context())
	if err != nil {
		errText = s.errorText(err, "list tokens")
	}
	now := s.cfg.Now().Unix()
	for _, k := range toks {
		if !rq.admin.MaySee(k.Tenant) {
			continue
		}
		st := "valid"
		switch {
		case k.UsesLeft == 0:
			st = "used up"
		case k.Expires < now:
			st = "expired"
		}
		d.Tokens = append(d.Tokens, tokenRow{Token: k, IDHex: hex.EncodeToString(k.ID[:4]), Expires: time.Unix(k.Expires, 0), Status: st})
	}
	s.render(w, r, rq, "tokens", "Enrollment tokens", &d, status, errText)
}

func (s *Server) tokenAdd(w http.ResponseWriter, r *http.Request, rq *request) {
	f, err := decodeTokenForm(r.PostForm)
	if err == nil && !s.mayChange(w, rq, f.Tenant, "create tokens for tenant "+f.Tenant) {
		return
	}
	if err == nil {
		var text string
		if text, _, err = s.con.NewToken(r.Context(), f.Tenant, f.Expires, f.Uses); err == nil {
			s.log.Info("web: enrollment token created", "by", rq.admin.Tech.Username, "tenant", f.Tenant, "uses", f.Uses, "expires_in", f.Expires)
			s.tokensRender(w, r, rq, http.StatusOK, "", text, f.Tenant)
			return
		}
	}
	s.tokensRender(w, r, rq, http.StatusUnprocessableEntity, s.errorText(err, "create token"), "", "")
}

// --- audit -----------------------------------------------------------

// maxAuditRows is how many records a page and a poll show: the newest.
const maxAuditRows = 500

type auditRow struct {
	Key    string `json:"key"`
	Time   string `json:"time"`
	Tenant string `json:"tenant"`
	Device string `json:"device"`
	Event  string `json:"event"`
	User   string `json:"username"`
	Text   string `json:"text"`
}

type auditData struct {
	Form    *auditForm
	Tenants []string
	Rows    []auditRow
	Query   string // the filter as a query string, for export links and polling
	Total   int
}

// audit runs the filtered query, restricted to the tenants the
// technician may see; rows newest first.
func (s *Server) audit(r *http.Request, rq *request) (*auditForm, []*store.AuditRow, []*store.Alarm, error) {
	f, err := decodeAuditForm(r.URL.Query())
	if err != nil {
		return &auditForm{}, nil, nil, err
	}
	if f.Tenant != "" && !rq.admin.MaySee(f.Tenant) {
		return f, nil, nil, formErr("you may not see tenant %s", f.Tenant)
	}
	q, err := f.query(s.cfg.Now())
	if err != nil {
		return f, nil, nil, err
	}
	rows, alarms, err := s.con.Audit(r.Context(), q)
	if err != nil {
		return f, nil, nil, err
	}
	vis := make([]*store.AuditRow, 0, len(rows))
	for i := len(rows) - 1; i >= 0; i-- {
		if rq.admin.MaySee(rows[i].Tenant) {
			vis = append(vis, rows[i])
		}
	}
	va := alarms[:0]
	for _, a := range alarms {
		if rq.admin.MaySee(a.Tenant) {
			va = append(va, a)
		}
	}
	return f, vis, va, nil
}

func rowOf(r *store.AuditRow) auditRow {
	return auditRow{Key: fmt.Sprintf("%x-%d", r.DeviceID[:], r.Seq), Time: time.UnixMilli(r.Record.Time).UTC().Format("2006-01-02 15:04:05"),
		Tenant: r.Tenant, Device: r.DeviceName, Event: r.Record.Event, User: r.Record.Username, Text: auditview.Sentence(r.DeviceName, &r.Record)}
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, rq *request) {
	f, rows, _, err := s.audit(r, rq)
	errText := ""
	status := http.StatusOK
	if err != nil {
		errText, status = s.errorText(err, "read audit"), http.StatusUnprocessableEntity
	}
	d := auditData{Form: f, Tenants: s.visibleTenants(r, rq, false), Query: f.encode().Encode(), Total: len(rows)}
	for i, row := range rows {
		if i == maxAuditRows {
			break
		}
		d.Rows = append(d.Rows, rowOf(row))
	}
	s.render(w, r, rq, "audit", "Audit", &d, status, errText)
}

// auditRows is the live view's poll: the newest records as JSON.
func (s *Server) auditRows(w http.ResponseWriter, r *http.Request, rq *request) {
	_, rows, _, err := s.audit(r, rq)
	if err != nil {
		http.Error(w, s.errorText(err, "read audit"), http.StatusUnprocessableEntity)
		return
	}
	out := struct {
		Rows  []auditRow `json:"rows"`
		Total int        `json:"total"`
	}{Rows: []auditRow{}, Total: len(rows)}
	for i, row := range rows {
		if i == maxAuditRows {
			break
		}
		out.Rows = append(out.Rows, rowOf(row))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&out)
}

// auditExport writes every matching record (oldest first) as CSV or JSON
// lines (the command-line tool's --json format), alarms first.
func (s *Server) auditExport(w http.ResponseWriter, r *http.Request, rq *request) {
	_, rows, alarms, err := s.audit(r, rq)
	if err != nil {
		http.Error(w, s.errorText(err, "read audit"), http.StatusUnprocessableEntity)
		return
	}
	slices.Reverse(rows)
	stamp := s.cfg.Now().UTC().Format("20060102-150405")
	s.log.Info("web: audit exported", "by", rq.admin.Tech.Username, "format", r.URL.Query().Get("format"), "records", len(rows))
	switch r.URL.Query().Get("format") {
	case "json":
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="jitkey-audit-`+stamp+`.jsonl"`)
		auditview.JSON(w, rows, alarms)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="jitkey-audit-`+stamp+`.csv"`)
		cw := csv.NewWriter(w)
		cw.Write([]string{"type", "time", "tenant", "device", "device_id", "seq", "event", "username", "account", "method", "online", "action", "reason", "detail", "text"})
		for _, a := range alarms {
			cw.Write([]string{"alarm", time.Unix(a.Time, 0).UTC().Format(time.RFC3339), csvSafe(a.Tenant), csvSafe(a.DeviceName),
				hex.EncodeToString(a.DeviceID[:]), strconv.FormatUint(a.Seq, 10), csvSafe(a.Kind), "", "", "", "", "", "", csvSafe(a.Detail), csvSafe(auditview.AlarmLine(a))})
		}
		for _, row := range rows {
			rec := &row.Record
			cw.Write([]string{"record", time.UnixMilli(rec.Time).UTC().Format("2006-01-02T15:04:05.000Z"), csvSafe(row.Tenant), csvSafe(row.DeviceName),
				hex.EncodeToString(row.DeviceID[:]), strconv.FormatUint(row.Seq, 10), csvSafe(rec.Event), csvSafe(rec.Username), csvSafe(rec.Account),
				csvSafe(rec.Method), strconv.FormatBool(rec.Online), protocol.ActionName(rec.Action), csvSafe(rec.Reason), csvSafe(rec.Detail),
				csvSafe(auditview.Sentence(row.DeviceName, rec))})
		}
		cw.Flush()
	default:
		http.Error(w, "format must be csv or json", http.StatusBadRequest)
	}
}

// csvSafe defuses spreadsheet formulas: audit text comes from agents and
// technicians, and a cell starting with = + - @ would run in a
// spreadsheet.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
