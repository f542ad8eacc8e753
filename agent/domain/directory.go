package domain

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/domain/adattr"
	"github.com/jitkey/jitkey/agent/password"
)

// PasswordLength is the length of every password jitkey sets on a domain
// account (rule 3: at least 32 characters of all four classes).
const PasswordLength = 32

// DefaultTimeout bounds one LDAP operation when Config.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Errors the Directory returns (wrapped).
var (
	// ErrNotFound: no account of that name in the OU.
	ErrNotFound = errors.New("domain: account not found")
	// ErrNotLDAPS: the URL is not ldaps:// (plain LDAP would carry
	// unicodePwd in the clear to Samba 4.17).
	ErrNotLDAPS = errors.New("domain: only ldaps:// URLs are allowed")
	// ErrUnreachable: the DC did not answer (dial, TLS or bind failed).
	ErrUnreachable = errors.New("domain: domain controller unreachable")
	// ErrReadBack: the directory does not show the change just made.
	ErrReadBack = errors.New("domain: change not visible on read-back")
	// ErrNotJIT: an account of that name exists but jitkey did not
	// create it (no marker in description); jitkey never touches it.
	ErrNotJIT = errors.New("domain: account exists and is not a jitkey account")
)

// Config configures a Directory.
type Config struct {
	// URL is the DC's LDAPS URL, e.g. ldaps://dc1.example.com:636.
	URL string
	// ServerName is the name the DC's certificate must carry; empty: the
	// URL's host.
	ServerName string
	// RootCAs holds the pinned CA (and nothing else).
	RootCAs *x509.CertPool
	// BindDN and BindPassword are the credentials the agent binds with.
	BindDN       string
	BindPassword password.Secret
	// OU is the DN of the organisational unit that holds the JIT accounts.
	OU string
	// AdminGroup is the DN of the group a session grants (e.g. Domain
	// Admins).
	AdminGroup string
	// ProtectedUsers is the DN of the Protected Users group; empty: none
	// (then accounts keep NTLM and delegation protections only).
	ProtectedUsers string
	// UPNSuffix, if set, gives accounts userPrincipalName name@UPNSuffix.
	UPNSuffix string
	// PageSize is the page size of Inventory's paged search
	// (InventoryPageSize if zero).
	PageSize uint32
	// Timeout bounds each LDAP operation (DefaultTimeout if zero).
	Timeout time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Directory manages JIT domain accounts over LDAPS. It keeps no state: the
// directory is the truth about accounts; the caller keeps its own records
// (sessions, last use). Safe for concurrent use: every call dials its own
// connection (servers drop idle ones).
type Directory struct {
	cfg Config
	tls *tls.Config
	// afterEnable, if set, runs in Begin between the enabling Modify and
	// the group membership (fault injection in tests).
	afterEnable func()
}

// New checks cfg and returns a Directory. It does not connect.
func New(cfg Config) (*Directory, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "ldaps" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrNotLDAPS, cfg.URL)
	}
	if cfg.RootCAs == nil {
		return nil, errors.New("domain: new directory: no pinned CA")
	}
	if cfg.OU == "" || cfg.AdminGroup == "" || cfg.BindDN == "" {
		return nil, errors.New("domain: new directory: OU, admin group and bind DN are required")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = InventoryPageSize
	}
	return &Directory{cfg: cfg, tls: &tls.Config{RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}}, nil
}

// conn dials, verifies the pinned CA and binds.
func (d *Directory) conn(ctx context.Context) (*ldap.Conn, error) {
	dl := &net.Dialer{Timeout: d.cfg.Timeout}
	if dead, ok := ctx.Deadline(); ok {
		dl.Deadline = dead
	}
	c, err := ldap.DialURL(d.cfg.URL, ldap.DialWithDialer(dl), ldap.DialWithTLSConfig(d.tls))
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %v", ErrUnreachable, d.cfg.URL, err)
	}
	c.SetTimeout(d.cfg.Timeout)
	if err := c.Bind(d.cfg.BindDN, string(d.cfg.BindPassword.Bytes())); err != nil {
		c.Close()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, fmt.Errorf("domain: bind as %s: %w", d.cfg.BindDN, err)
		}
		return nil, fmt.Errorf("%w: bind: %v", ErrUnreachable, err)
	}
	return c, nil
}

func (d *Directory) dn(name string) string {
	return "CN=" + ldap.EscapeDN(name) + "," + d.cfg.OU
}

// encodePassword returns unicodePwd's value: the password in double
// quotes, UTF-16LE.
func encodePassword(pw password.Secret) string {
	r := []rune("\"" + string(pw.Bytes()) + "\"")
	u := utf16.Encode(r)
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	clear(r)
	clear(u)
	return string(b)
}

func newPassword(name string) (password.Secret, error) {
	pw, err := password.GenerateForAccount(rand.Reader, PasswordLength, name)
	if err != nil {
		return password.Secret{}, fmt.Errorf("domain: generate password: %w", err)
	}
	return pw, nil
}

// lookup reads one account from the OU.
func (d *Directory) lookup(c *ldap.Conn, name string) (adattr.Entry, error) {
	req := ldap.NewSearchRequest(d.cfg.OU, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		"(&(objectClass=user)(sAMAccountName="+ldap.EscapeFilter(name)+"))", adattr.EntryAttrs, nil)
	res, err := c.Search(req)
	if err != nil {
		return adattr.Entry{}, fmt.Errorf("domain: look up %s: %w", name, err)
	}
	switch len(res.Entries) {
	case 0:
		return adattr.Entry{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	case 1:
	default:
		return adattr.Entry{}, fmt.Errorf("domain: look up %s: %d entries", name, len(res.Entries))
	}
	return parseLDAPEntry(res.Entries[0])
}

func parseLDAPEntry(le *ldap.Entry) (adattr.Entry, error) {
	m := make(map[string][]string, len(le.Attributes))
	for _, a := range le.Attributes {
		for _, n := range adattr.EntryAttrs {
			if strings.EqualFold(a.Name, n) {
				m[n] = a.Values
			}
		}
	}
	return adattr.ParseEntry(le.DN, m)
}

// Lookup reports the account's state, or ErrNotFound.
func (d *Directory) Lookup(ctx context.Context, name string) (adattr.Entry, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return adattr.Entry{}, err
	}
	defer c.Close()
	return d.lookup(c, name)
}

// Marker is the description jitkey writes on the accounts it creates.
func Marker(name string) string { return accounts.JITFullNamePrefix + name }

func isJIT(e adattr.Entry) bool { return strings.HasPrefix(e.Description, accounts.JITFullNamePrefix) }

// ensure creates the account disabled (UAC 0x202 | NOT_DELEGATED, random
// password nobody keeps, accountExpires = now) in Protected Users, or
// finds it. It refuses an account of that name that jitkey did not create.
func (d *Directory) ensure(c *ldap.Conn, name string) (adattr.Entry, error) {
	if !accounts.ValidName(name, accounts.MaxNameWindows) || !strings.HasPrefix(name, accounts.DefaultPrefix) {
		return adattr.Entry{}, fmt.Errorf("domain: %w: %q", accounts.ErrInvalidName, name)
	}
	e, err := d.lookup(c, name)
	if err == nil {
		if !isJIT(e) {
			return e, fmt.Errorf("%w: %s", ErrNotJIT, name)
		}
		return e, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return e, err
	}
	pw, err := newPassword(name)
	if err != nil {
		return adattr.Entry{}, err
	}
	defer pw.Wipe()
	add := ldap.NewAddRequest(d.dn(name), nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{name})
	add.Attribute("description", []string{Marker(name)})
	add.Attribute("userAccountControl", []string{adattr.FormatUAC(adattr.UACDisabled)})
	add.Attribute("accountExpires", []string{adattr.FormatFileTime(d.cfg.Now())})
	add.Attribute("unicodePwd", []string{encodePassword(pw)})
	if d.cfg.UPNSuffix != "" {
		add.Attribute("userPrincipalName", []string{name + "@" + d.cfg.UPNSuffix})
	}
	if err := c.Add(add); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
		return adattr.Entry{}, fmt.Errorf("domain: create %s: %w", name, err)
	}
	if d.cfg.ProtectedUsers != "" {
		if err := d.member(c, d.cfg.ProtectedUsers, d.dn(name), true); err != nil {
			// Never leave an account outside Protected Users behind.
			_ = c.Del(ldap.NewDelRequest(d.dn(name), nil))
			return adattr.Entry{}, err
		}
	}
	e, err = d.lookup(c, name)
	if err != nil {
		return e, err
	}
	if e.Enabled() || e.UAC&adattr.UACPasswdNotReq != 0 || e.InGroup(d.cfg.AdminGroup) ||
		(d.cfg.ProtectedUsers != "" && !e.InGroup(d.cfg.ProtectedUsers)) {
		return e, fmt.Errorf("%w: create %s: uac %#x", ErrReadBack, name, e.UAC)
	}
	return e, nil
}

// member adds or removes dn in group; "already there" / "not there" count
// as success (rule 7). Samba 4.17 answers the add of a member already
// there with entryAlreadyExists (68) ("Attribute member already exists
// for target GUID"), not attributeOrValueExists (20).
func (d *Directory) member(c *ldap.Conn, group, dn string, add bool) error {
	m := ldap.NewModifyRequest(group, nil)
	if add {
		m.Add("member", []string{dn})
	} else {
		m.Delete("member", []string{dn})
	}
	err := c.Modify(m)
	switch {
	case err == nil:
		return nil
	case add && (ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) || ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists)):
		return nil
	case !add && (ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) || ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform)):
		return nil
	}
	verb := "remove from"
	if add {
		verb = "add to"
	}
	return fmt.Errorf("domain: %s %s: %w", verb, group, err)
}

// Ensure creates the account disabled if it does not exist.
func (d *Directory) Ensure(ctx context.Context, name string) (adattr.Entry, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return adattr.Entry{}, err
	}
	defer c.Close()
	return d.ensure(c, name)
}

// Begin starts a session on the account (creating it if needed): one
// Modify sets a fresh password, accountExpires = until and UAC enabled
// (rule 4); then the account joins the admin group. Everything is read
// back. On any failure after the Modify the account is ended again
// (disabled, another password, out of the group), so nothing is left
// half-enabled. The password is returned once; the caller wipes it.
func (d *Directory) Begin(ctx context.Context, name string, until time.Time) (password.Secret, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return password.Secret{}, err
	}
	defer c.Close()
	if _, err := d.ensure(c, name); err != nil {
		return password.Secret{}, err
	}
	pw, err := newPassword(name)
	if err != nil {
		return password.Secret{}, err
	}
	fail := func(err error) (password.Secret, error) {
		pw.Wipe()
		if endErr := d.end(c, name); endErr != nil {
			return password.Secret{}, errors.Join(err, endErr)
		}
		return password.Secret{}, err
	}
	m := ldap.NewModifyRequest(d.dn(name), nil)
	m.Replace("unicodePwd", []string{encodePassword(pw)})
	m.Replace("accountExpires", []string{adattr.FormatFileTime(until)})
	m.Replace("userAccountControl", []string{adattr.FormatUAC(adattr.UACEnabled)})
	if err := c.Modify(m); err != nil {
		return fail(fmt.Errorf("domain: enable %s: %w", name, err))
	}
	if d.afterEnable != nil {
		d.afterEnable()
	}
	if err := d.member(c, d.cfg.AdminGroup, d.dn(name), true); err != nil {
		return fail(err)
	}
	e, err := d.lookup(c, name)
	if err != nil {
		return fail(err)
	}
	if !e.Enabled() || !e.InGroup(d.cfg.AdminGroup) || e.PwdLastSet.IsZero() || e.NeverExpires {
		return fail(fmt.Errorf("%w: begin %s: uac %#x", ErrReadBack, name, e.UAC))
	}
	return pw, nil
}

// Extend moves the accountExpires backstop of an account in a session to
// until (the heartbeat, rule 6).
func (d *Directory) Extend(ctx context.Context, name string, until time.Time) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	m := ldap.NewModifyRequest(d.dn(name), nil)
	m.Replace("accountExpires", []string{adattr.FormatFileTime(until)})
	if err := c.Modify(m); err != nil {
		return fmt.Errorf("domain: extend %s: %w", name, err)
	}
	return nil
}

// end disables, re-randomises, expires, then removes the membership and
// reads back (rule 5).
func (d *Directory) end(c *ldap.Conn, name string) error {
	pw, err := newPassword(name)
	if err != nil {
		return err
	}
	defer pw.Wipe()
	m := ldap.NewModifyRequest(d.dn(name), nil)
	m.Replace("userAccountControl", []string{adattr.FormatUAC(adattr.UACDisabled)})
	m.Replace("unicodePwd", []string{encodePassword(pw)})
	m.Replace("accountExpires", []string{adattr.FormatFileTime(d.cfg.Now())})
	if err := c.Modify(m); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return fmt.Errorf("domain: disable %s: %w", name, err)
	}
	if err := d.member(c, d.cfg.AdminGroup, d.dn(name), false); err != nil {
		return err
	}
	e, err := d.lookup(c, name)
	if err != nil {
		return err
	}
	if e.Enabled() || e.InGroup(d.cfg.AdminGroup) {
		return fmt.Errorf("%w: end %s: uac %#x", ErrReadBack, name, e.UAC)
	}
	return nil
}

// End ends a session on the account: disabled, a password nobody knows,
// accountExpires = now, out of the admin group, read back: a nil error
// is that read-back's confirmation. An account that does not exist in
// the OU returns ErrNotFound.
func (d *Directory) End(ctx context.Context, name string) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return d.end(c, name)
}

// Delete removes the account. Only jitkey's own accounts are deleted.
func (d *Directory) Delete(ctx context.Context, name string) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	e, err := d.lookup(c, name)
	if err != nil {
		return err
	}
	if !isJIT(e) {
		return fmt.Errorf("%w: %s", ErrNotJIT, name)
	}
	if err := c.Del(ldap.NewDelRequest(e.DN, nil)); err != nil {
		return fmt.Errorf("domain: delete %s: %w", name, err)
	}
	return nil
}

// InventoryPageSize is the page size of Inventory's paged search.
const InventoryPageSize = 1000

// Inventory lists every jitkey account in the OU (accounts named
// accounts.DefaultPrefix* carrying jitkey's marker) with a paged search. An error
// on any page fails the whole listing (a partial list would look like
// deleted accounts).
func (d *Directory) Inventory(ctx context.Context) ([]adattr.Entry, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := ldap.NewSearchRequest(d.cfg.OU, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=user)(sAMAccountName="+ldap.EscapeFilter(accounts.DefaultPrefix)+"*))", adattr.EntryAttrs, nil)
	res, err := c.SearchWithPaging(req, d.cfg.PageSize)
	if err != nil {
		return nil, fmt.Errorf("domain: inventory: %w", err)
	}
	out := make([]adattr.Entry, 0, len(res.Entries))
	for _, le := range res.Entries {
		e, err := parseLDAPEntry(le)
		if err != nil {
			return nil, fmt.Errorf("domain: inventory: %s: %w", le.DN, err)
		}
		if isJIT(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Repair ends every jitkey account that is enabled or in the admin group
// although live reports no session for it (the agent or the DC stopped
// during a session, or in the middle of Begin). It returns the names it
// ended (each confirmed by End's read-back); it goes on after a failure
// and returns the failures joined.
func (d *Directory) Repair(ctx context.Context, live func(name string) bool) ([]string, error) {
	inv, err := d.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	var ended []string
	var errs []error
	for _, e := range inv {
		if live(e.Name) || (!e.Enabled() && !e.InGroup(d.cfg.AdminGroup)) {
			continue
		}
		if err := d.End(ctx, e.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		ended = append(ended, e.Name)
	}
	return ended, errors.Join(errs...)
}
