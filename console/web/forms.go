package web

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/protocol"
)

// The form decoders turn a submitted form into the arguments of a console
// call. They check shape only (presence, syntax, bounds of numbers); the
// console checks meaning, as it does for the command-line tool. Each has
// an encoder, used by the fuzz targets: what decodes re-encodes to a form
// that decodes to the same value.

// maxField bounds every form value.
const maxField = 256

// formError is a form the user must correct; its text is shown.
type formError struct{ msg string }

func (e *formError) Error() string { return e.msg }

func formErr(format string, args ...any) error { return &formError{msg: fmt.Sprintf(format, args...)} }

// one returns the single value of a field ("" when absent), refusing a
// field given twice or too long.
func one(v url.Values, name string) (string, error) {
	vs := v[name]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", formErr("field %s given %d times", name, len(vs))
	case len(vs[0]) > maxField:
		return "", formErr("field %s is longer than %d bytes", name, maxField)
	}
	return vs[0], nil
}

// check reads a checkbox: absent is false, "on" is true.
func check(v url.Values, name string) (bool, error) {
	s, err := one(v, name)
	if err != nil {
		return false, err
	}
	switch s {
	case "":
		return false, nil
	case "on":
		return true, nil
	}
	return false, formErr("field %s must be on or absent", name)
}

// tenantForm is the tenant form: name (new tenants), login mode and
// switches, maximum session and inactivity period, and the governance
// settings (SPEC.md 6.3 fields 19-25): required reason, ticket pattern,
// warning before the cap, end-user notice, push limits, and the
// break-glass switch (field 28, SPEC.md 11.15).
type tenantForm struct {
	Name           string
	Mode           string
	PushLogin      bool
	OTPWhileOnline bool
	SelectiveLogin bool
	DomainAccounts bool
	MaxSession     time.Duration
	InactivityDays int
	RequireReason  bool
	EndUserNotice  bool
	BreakGlassOff  bool
	// The fields below are nil when the form does not carry them (the
	// setting stays as it is); an empty ticket pattern is a value (no
	// pattern), an empty number or duration field counts as absent.
	TicketPattern  *string
	WarnBefore     *time.Duration
	PushMaxPending *int
	PushPerHour    *int
	PushBlock      *time.Duration
}

// optDuration reads an optional duration field: nil when absent or
// empty; a negative one is refused here, bounds are the console's.
func optDuration(v url.Values, name, what string) (*time.Duration, error) {
	s, err := one(v, name)
	if err != nil || s == "" {
		return nil, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return nil, formErr("%s must be a duration such as 10m or 0s", what)
	}
	return &d, nil
}

// optInt reads an optional whole-number field: nil when absent or empty;
// bounds are the console's.
func optInt(v url.Values, name, what string) (*int, error) {
	s, err := one(v, name)
	if err != nil || s == "" {
		return nil, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, formErr("%s must be a whole number", what)
	}
	return &n, nil
}

// decodeGovernance reads the governance fields of the tenant form.
func (f *tenantForm) decodeGovernance(v url.Values) error {
	var err error
	if f.RequireReason, err = check(v, "require_reason"); err != nil {
		return err
	}
	if f.EndUserNotice, err = check(v, "end_user_notice"); err != nil {
		return err
	}
	if f.BreakGlassOff, err = check(v, "breakglass_off"); err != nil {
		return err
	}
	if _, ok := v["ticket_pattern"]; ok {
		tp, err := one(v, "ticket_pattern")
		if err != nil {
			return err
		}
		f.TicketPattern = &tp
	}
	if f.WarnBefore, err = optDuration(v, "warn_before", "warning before the cap"); err != nil {
		return err
	}
	if f.PushMaxPending, err = optInt(v, "push_max_pending", "pending push logins per computer"); err != nil {
		return err
	}
	if f.PushPerHour, err = optInt(v, "push_per_hour", "push logins per technician and hour"); err != nil {
		return err
	}
	f.PushBlock, err = optDuration(v, "push_block", "push block after a fraud report")
	return err
}

func decodeTenantForm(v url.Values) (*tenantForm, error) {
	var f tenantForm
	var err error
	if f.Name, err = one(v, "name"); err != nil {
		return nil, err
	}
	if f.Mode, err = one(v, "mode"); err != nil {
		return nil, err
	}
	if f.Mode != protocol.ModeNamed && f.Mode != protocol.ModeShared {
		return nil, formErr("login mode must be %s or %s", protocol.ModeNamed, protocol.ModeShared)
	}
	for _, c := range []struct {
		name string
		dst  *bool
	}{{"push_login", &f.PushLogin}, {"otp_online", &f.OTPWhileOnline}, {"selective_login", &f.SelectiveLogin}, {"domain_accounts", &f.DomainAccounts}} {
		if *c.dst, err = check(v, c.name); err != nil {
			return nil, err
		}
	}
	ms, err := one(v, "max_session")
	if err != nil {
		return nil, err
	}
	if f.MaxSession, err = time.ParseDuration(ms); err != nil || f.MaxSession <= 0 {
		return nil, formErr("maximum session must be a duration such as 8h or 90m")
	}
	days, err := one(v, "inactivity_days")
	if err != nil {
		return nil, err
	}
	if f.InactivityDays, err = strconv.Atoi(days); err != nil || f.InactivityDays <= 0 {
		return nil, formErr("inactivity period must be a whole number of days")
	}
	if err := f.decodeGovernance(v); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *tenantForm) encode() url.Values {
	v := url.Values{"mode": {f.Mode}, "max_session": {f.MaxSession.String()}, "inactivity_days": {strconv.Itoa(f.InactivityDays)}}
	if f.Name != "" {
		v.Set("name", f.Name)
	}
	for name, on := range map[string]bool{"push_login": f.PushLogin, "otp_online": f.OTPWhileOnline,
		"selective_login": f.SelectiveLogin, "domain_accounts": f.DomainAccounts,
		"require_reason": f.RequireReason, "end_user_notice": f.EndUserNotice,
		"breakglass_off": f.BreakGlassOff} {
		if on {
			v.Set(name, "on")
		}
	}
	if f.TicketPattern != nil {
		v.Set("ticket_pattern", *f.TicketPattern)
	}
	for name, d := range map[string]*time.Duration{"warn_before": f.WarnBefore, "push_block": f.PushBlock} {
		if d != nil {
			v.Set(name, d.String())
		}
	}
	for name, n := range map[string]*int{"push_max_pending": f.PushMaxPending, "push_per_hour": f.PushPerHour} {
		if n != nil {
			v.Set(name, strconv.Itoa(*n))
		}
	}
	return v
}

// change is the console.TenantChange the form asks for: every field the
// form carries set; the console checks each against its bounds and the
// policy it signs against Policy.Check (SPEC.md 6.3).
func (f *tenantForm) change() console.TenantChange {
	mode, ms, days := f.Mode, f.MaxSession, f.InactivityDays
	push, otp, sel, dom := f.PushLogin, f.OTPWhileOnline, f.SelectiveLogin, f.DomainAccounts
	reason, notice, bgOff := f.RequireReason, f.EndUserNotice, f.BreakGlassOff
	return console.TenantChange{LoginMode: &mode, PushLogin: &push, OTPWhileOnline: &otp, SelectiveLogin: &sel,
		DomainAccounts: &dom, MaxSession: &ms, InactivityDays: &days,
		RequireReason: &reason, EndUserNotice: &notice, BreakGlassOff: &bgOff, TicketPattern: f.TicketPattern, WarnBefore: f.WarnBefore,
		PushMaxPending: f.PushMaxPending, PushPerHour: f.PushPerHour, PushBlock: f.PushBlock}
}

// techForm adds a technician: username, e-mail, and either global admin
// or a role (admin, read-only) per tenant ("role_" + tenant; "none" or
// absent: no grant).
type techForm struct {
	Username string
	Email    string
	Global   bool
	Grants   []protocol.Grant // sorted by tenant
}

func decodeTechForm(v url.Values) (*techForm, error) {
	var f techForm
	var err error
	if f.Username, err = one(v, "username"); err != nil {
		return nil, err
	}
	if f.Email, err = one(v, "email"); err != nil {
		return nil, err
	}
	if f.Username == "" || f.Email == "" {
		return nil, formErr("a technician needs a username and an e-mail address")
	}
	if f.Global, err = check(v, "global_admin"); err != nil {
		return nil, err
	}
	for name := range v {
		tenant, ok := strings.CutPrefix(name, "role_")
		if !ok {
			continue
		}
		role, err := one(v, name)
		if err != nil {
			return nil, err
		}
		switch role {
		case "", "none":
		case protocol.RoleAdmin, protocol.RoleReadOnly:
			f.Grants = append(f.Grants, protocol.Grant{Tenant: tenant, Role: role})
		default:
			return nil, formErr("role in %s must be admin, read-only or none", tenant)
		}
	}
	slices.SortFunc(f.Grants, func(a, b protocol.Grant) int { return strings.Compare(a.Tenant, b.Tenant) })
	return &f, nil
}

func (f *techForm) encode() url.Values {
	v := url.Values{"username": {f.Username}, "email": {f.Email}}
	if f.Global {
		v.Set("global_admin", "on")
	}
	for _, g := range f.Grants {
		v.Set("role_"+g.Tenant, g.Role)
	}
	return v
}

// shareForm is the "Share device" dialog: the device and the share list
// it should have (entries all-admins, all-users and usernames, sorted,
// each once).
type shareForm struct {
	Device  string // device id, hex
	Entries []string
}

func decodeShareForm(v url.Values) (*shareForm, error) {
	var f shareForm
	var err error
	if f.Device, err = one(v, "device"); err != nil {
		return nil, err
	}
	if len(f.Device) != 32 || strings.Trim(f.Device, "0123456789abcdef") != "" {
		return nil, formErr("device must be a device id (32 hex digits)")
	}
	for _, e := range v["share"] {
		if len(e) > maxField || e == "" {
			return nil, formErr("share entry must be 1..%d bytes", maxField)
		}
		if slices.Contains(f.Entries, e) {
			return nil, formErr("share entry %q given twice", e)
		}
		f.Entries = append(f.Entries, e)
	}
	if len(f.Entries) > 1024 {
		return nil, formErr("too many share entries")
	}
	slices.Sort(f.Entries)
	return &f, nil
}

func (f *shareForm) encode() url.Values {
	return url.Values{"device": {f.Device}, "share": slices.Clone(f.Entries)}
}

// shareChange turns the wanted list into a change of the current one.
func (f *shareForm) shareChange(current []string, custom bool) console.ShareChange {
	if !custom {
		current = []string{protocol.ShareAllAdmins, protocol.ShareAllUsers}
	}
	if slices.Equal(f.Entries, []string{protocol.ShareAllAdmins, protocol.ShareAllUsers}) {
		return console.ShareChange{Reset: true}
	}
	var ch console.ShareChange
	for _, e := range f.Entries {
		if !slices.Contains(current, e) {
			ch.Add = append(ch.Add, e)
		}
	}
	for _, e := range current {
		if !slices.Contains(f.Entries, e) {
			ch.Remove = append(ch.Remove, e)
		}
	}
	return ch
}

// tokenForm creates an enrollment token.
type tokenForm struct {
	Tenant  string
	Expires time.Duration
	Uses    int
}

func decodeTokenForm(v url.Values) (*tokenForm, error) {
	var f tokenForm
	var err error
	if f.Tenant, err = one(v, "tenant"); err != nil {
		return nil, err
	}
	if f.Tenant == "" {
		return nil, formErr("choose a tenant")
	}
	exp, err := one(v, "expires")
	if err != nil {
		return nil, err
	}
	if f.Expires, err = time.ParseDuration(exp); err != nil || f.Expires <= 0 {
		return nil, formErr("expiry must be a duration such as 24h")
	}
	uses, err := one(v, "uses")
	if err != nil {
		return nil, err
	}
	if f.Uses, err = strconv.Atoi(uses); err != nil || f.Uses <= 0 {
		return nil, formErr("uses must be a whole number")
	}
	return &f, nil
}

func (f *tokenForm) encode() url.Values {
	return url.Values{"tenant": {f.Tenant}, "expires": {f.Expires.String()}, "uses": {strconv.Itoa(f.Uses)}}
}

// auditForm is the audit filter (a GET query): tenant, technician,
// device and a start time (datetime-local "2006-01-02T15:04", a date, or
// a duration back from now such as 24h).
type auditForm struct {
	Tenant string
	Tech   string
	Device string
	Since  string
}

func decodeAuditForm(v url.Values) (*auditForm, error) {
	var f auditForm
	var err error
	for _, c := range []struct {
		name string
		dst  *string
	}{{"tenant", &f.Tenant}, {"tech", &f.Tech}, {"device", &f.Device}, {"since", &f.Since}} {
		if *c.dst, err = one(v, c.name); err != nil {
			return nil, err
		}
	}
	if f.Since != "" {
		if _, err := f.sinceTime(time.Unix(0, 0)); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

func (f *auditForm) encode() url.Values {
	v := url.Values{}
	for name, s := range map[string]string{"tenant": f.Tenant, "tech": f.Tech, "device": f.Device, "since": f.Since} {
		if s != "" {
			v.Set(name, s)
		}
	}
	return v
}

// sinceTime is the filter's start time (zero: no bound).
func (f *auditForm) sinceTime(now time.Time) (time.Time, error) {
	if f.Since == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(f.Since); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{"2006-01-02T15:04", time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, f.Since); err == nil {
			return t, nil
		}
	}
	return time.Time{}, formErr("since must be a time (2006-01-02T15:04), a date or a duration such as 24h")
}

// query is the console's audit query for the form.
func (f *auditForm) query(now time.Time) (console.AuditQuery, error) {
	t, err := f.sinceTime(now)
	if err != nil {
		return console.AuditQuery{}, err
	}
	q := console.AuditQuery{Tenant: f.Tenant, Username: f.Tech, Device: f.Device}
	if !t.IsZero() {
		q.SinceMs = t.UnixMilli()
	}
	return q, nil
}
