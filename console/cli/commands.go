package cli

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/auditview"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func cmdInit(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("init", env)
	relay := fs.String("relay", "", "home relay host:port")
	org := fs.String("org", "MSP", "organisation name shown on phones")
	var pins multi
	fs.Var(&pins, "relay-pin", "relay pin (hex SHA-256 of its SPKI); repeatable")
	if _, err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	if c.state == "" {
		return usagef("no state directory: give --state DIR or set JITKEY_CONSOLE_STATE")
	}
	if *relay == "" || len(pins) == 0 {
		return usagef("init needs --relay HOST:PORT and --relay-pin HEX")
	}
	var pinBytes [][32]byte
	for _, p := range pins {
		b, err := hex.DecodeString(strings.TrimPrefix(p, "pin="))
		if err != nil || len(b) != 32 {
			return &console.Refusal{Reason: fmt.Sprintf("relay pin %q must be 64 hex digits (jitkey-relay prints pin=<hex>)", p)}
		}
		pinBytes = append(pinBytes, [32]byte(b))
	}
	pass, err := c.passphrase()
	if err != nil {
		return err
	}
	addr, msp, err := console.Init(ctx, c.state, console.InitOptions{Org: *org, Relay: *relay, RelayPins: pinBytes, Passphrase: pass, ScryptLogN: env.ScryptLogN, Rand: env.Rand})
	if err != nil {
		return err
	}
	sealed := "no (key file 0600)"
	if len(pass) > 0 {
		sealed = "yes (scrypt + ChaCha20-Poly1305)"
	}
	fmt.Fprintf(env.Stdout, "initialised console in %s\nmsp-key=%s\nmsp-fingerprint=%s\npassphrase=%s\naddr=%s\n",
		c.state, hex.EncodeToString(msp[:]), msp.Fingerprint(), sealed, addr)
	return nil
}

// tenantFlags registers the settings flags and returns a function building
// the change from the flags that were given.
func tenantFlags(fs *flag.FlagSet) func() console.TenantChange {
	mode := fs.String("mode", "", "login mode: named or shared")
	push := fs.Bool("push-login", false, "allow push login")
	otp := fs.Bool("otp-online", false, "allow OTP login while online")
	sel := fs.Bool("selective-login", false, "offer domain or local account")
	dom := fs.Bool("domain-accounts", false, "JIT domain accounts")
	digits := fs.Int("digits", 0, "offline code digits (6, 8)")
	period := fs.Int("period", 0, "offline code period seconds (30, 60)")
	skew := fs.Int("skew", 0, "offline code steps accepted either side (0, 1)")
	fails := fs.Int("max-failures", 0, "offline failures before lockout (1..10)")
	lbase := fs.Duration("lockout-base", 0, "first lockout, doubling")
	lcap := fs.Duration("lockout-cap", 0, "longest lockout")
	maxs := fs.Duration("max-session", 0, "maximum session length")
	inact := fs.Int("inactivity-days", 0, "remove accounts unused this many days")
	reason := fs.Bool("require-reason", false, "approvals must carry a reason (SPEC.md 6.3)")
	ticket := fs.String("ticket-pattern", "", "approvals must carry a ticket matching this RE2 `pattern` as a whole; \"\" for none")
	notice := fs.Bool("end-user-notice", false, "tell the computer's users when a technician session starts")
	warn := fs.Duration("warn-before", 0, "warn the user this long before the session cap ends the session (0: no warning)")
	approvers := fs.String("second-approvers", "", "logins on the tenant's computers need a second approval by one of these comma-separated `entries` (all-admins, all-users, usernames; \"\" for none; SPEC.md 11.14)")
	devApprovers := fs.String("second-approver-device", "", "`DEVICE=ENTRIES`: the computer's own second approvers (an empty list exempts it; DEVICE=- follows the tenant's list)")
	var bgOn onOffFlag
	fs.Var(&bgOn, "break-glass", "`on` or off: whether the computers accept their break-glass recovery code (SPEC.md 11.15)")
	offline := offlineFlags(fs)
	pushLimits := pushFlags(fs)
	return func() console.TenantChange {
		var ch console.TenantChange
		fs.Visit(func(f *flag.Flag) {
			if offline(f, &ch) || pushLimits(f, &ch) {
				return
			}
			switch f.Name {
			case "mode":
				ch.LoginMode = mode
			case "push-login":
				ch.PushLogin = push
			case "otp-online":
				ch.OTPWhileOnline = otp
			case "selective-login":
				ch.SelectiveLogin = sel
			case "domain-accounts":
				ch.DomainAccounts = dom
			case "digits":
				ch.Digits = digits
			case "period":
				ch.Period = period
			case "skew":
				ch.Skew = skew
			case "max-failures":
				ch.MaxFailures = fails
			case "lockout-base":
				ch.LockoutBase = lbase
			case "lockout-cap":
				ch.LockoutLimit = lcap
			case "max-session":
				ch.MaxSession = maxs
			case "inactivity-days":
				ch.InactivityDays = inact
			case "require-reason":
				ch.RequireReason = reason
			case "ticket-pattern":
				ch.TicketPattern = ticket
			case "warn-before":
				ch.WarnBefore = warn
			case "end-user-notice":
				ch.EndUserNotice = notice
			case "break-glass":
				off := !bool(bgOn)
				ch.BreakGlassOff = &off
			case "second-approvers":
				es := strings.Split(*approvers, ",")
				ch.SecondApprovers = &es
			case "second-approver-device":
				name, list, _ := strings.Cut(*devApprovers, "=")
				d := console.DeviceApprovers{Device: name, Entries: strings.Split(list, ","), Remove: list == "-"}
				ch.SecondApproverDevice = &d
			}
		})
		return ch
	}
}

func cmdTenantAdd(ctx context.Context, env *Env, args []string, set bool) error {
	name, verb := "tenant add", "added"
	if set {
		name, verb = "tenant set", "changed"
	}
	fs, c := newFlags(name, env)
	change := tenantFlags(fs)
	return c.withConsole(ctx, args, 1, "NAME [settings flags]", signs, func(con *console.Console, pos []string) error {
		var pol *protocol.Policy
		var err error
		if set {
			_, pol, err = con.SetTenant(ctx, pos[0], change())
		} else {
			_, pol, err = con.AddTenant(ctx, pos[0], change())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "tenant %s %s; policy version %d\n", pos[0], verb, pol.Version)
		return nil
	})
}

func cmdTenantList(ctx context.Context, env *Env, args []string) error {
	_, c := newFlags("tenant list", env)
	return c.withConsole(ctx, args, 0, "", readOnly, func(con *console.Console, _ []string) error {
		tns, vers, err := con.Tenants(ctx)
		if err != nil {
			return err
		}
		tw := table(env.Stdout, "TENANT\tMODE\tACCOUNT\tPOLICY")
		for _, tn := range tns {
			acct := "msp-<username>"
			if tn.LoginMode == protocol.ModeShared {
				acct = tn.SharedAccount
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\tv%d\n", tn.Name, tn.LoginMode, acct, vers[tn.Name])
		}
		return tw.Flush()
	})
}

// table starts a column-aligned listing with its header ("A\tB\t...").
func table(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// onOffFlag is a flag taking the value "on" or "off".
type onOffFlag bool

func (f *onOffFlag) String() string { return onOff(bool(*f)) }

func (f *onOffFlag) Set(s string) error {
	switch s {
	case "on":
		*f = true
	case "off":
		*f = false
	default:
		return fmt.Errorf("cli: %q must be on or off", s)
	}
	return nil
}

func cmdTenantShow(ctx context.Context, env *Env, args []string) error {
	_, c := newFlags("tenant show", env)
	return c.withConsole(ctx, args, 1, "NAME", readOnly, func(con *console.Console, pos []string) error {
		ti, err := con.Tenant(ctx, pos[0])
		if err != nil {
			return err
		}
		tn, p := ti.Tenant, ti.Policy
		w := env.Stdout
		fmt.Fprintf(w, "tenant:            %s\n", tn.Name)
		fmt.Fprintf(w, "login mode:        %s\n", tn.LoginMode)
		fmt.Fprintf(w, "shared account:    %s\n", tn.SharedAccount)
		fmt.Fprintf(w, "push login:        %s\n", onOff(tn.PushLogin))
		showPush(w, tn)
		fmt.Fprintf(w, "otp while online:  %s\n", onOff(tn.OTPWhileOnline))
		fmt.Fprintf(w, "selective login:   %s\n", onOff(tn.SelectiveLogin))
		fmt.Fprintf(w, "domain accounts:   %s\n", onOff(tn.DomainAccounts))
		fmt.Fprintf(w, "offline codes:     %d digits, %ds period, skew %d, lockout after %d failures (%ds doubling, cap %ds)\n",
			tn.Offline.Digits, tn.Offline.Period, tn.Offline.Skew, tn.Offline.MaxFailures, tn.Offline.LockoutBase, tn.Offline.LockoutLimit)
		showOffline(w, tn)
		fmt.Fprintf(w, "max session:       %v\n", time.Duration(tn.MaxSession)*time.Second)
		fmt.Fprintf(w, "inactivity:        %d days\n", tn.InactivityDays)
		fmt.Fprintf(w, "require reason:    %s\n", onOff(tn.RequireReason))
		fmt.Fprintf(w, "ticket pattern:    %s\n", tn.TicketPattern)
		fmt.Fprintf(w, "cap warning:       %v before\n", time.Duration(tn.WarnBefore)*time.Second)
		fmt.Fprintf(w, "end-user notice:   %s\n", onOff(tn.EndUserNotice))
		fmt.Fprintf(w, "break-glass:       %s\n", onOff(!tn.BreakGlassOff))
		fmt.Fprintf(w, "second approvers:  %s\n", approverList(p.SecondApprovers, "none"))
		for _, d := range p.SecondApproverDevices {
			fmt.Fprintf(w, "  on %s: %s\n", deviceName(ti.Devices, d.DeviceID), approverList(d.Entries, "none (exempt)"))
		}
		fmt.Fprintf(w, "policy version:    %d (issued %s)\n", p.Version, time.Unix(p.IssuedAt, 0).UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "revoked serials:   %v\n", p.Revoked)
		fmt.Fprintf(w, "technicians:       %d\n", len(ti.Techs))
		for _, t := range ti.Techs {
			fmt.Fprintf(w, "  %s (%s)\n", t.Username, t.RoleIn(tn.Name))
		}
		fmt.Fprintf(w, "devices:           %d\n", len(ti.Devices))
		for _, d := range ti.Devices {
			fmt.Fprintf(w, "  %s  shared with: %s\n", d.Name, strings.Join(d.Shares, ", "))
		}
		return nil
	})
}

func cmdTechAdd(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("tech add", env)
	email := fs.String("email", "", "e-mail address (push login look-up)")
	global := fs.Bool("global-admin", false, "global admin: every tenant, every device")
	var roles multi
	fs.Var(&roles, "role", "TENANT=admin or TENANT=read-only; repeatable")
	pos, err := parse(fs, args, 1, "USERNAME --email ADDR (--global-admin | --role TENANT=ROLE ...)")
	if err != nil {
		return err
	}
	if *email == "" {
		return usagef("tech add needs --email")
	}
	var grants []protocol.Grant
	for _, r := range roles {
		tenant, role, ok := strings.Cut(r, "=")
		if !ok {
			return usagef("--role %q must be TENANT=admin or TENANT=read-only", r)
		}
		grants = append(grants, protocol.Grant{Tenant: tenant, Role: role})
	}
	return c.use(ctx, readOnly, func(con *console.Console) error {
		t, err := con.AddTech(ctx, pos[0], *email, *global, grants)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "technician %s added (id %s); pair a phone with: jitkey-console pair %s\n", t.Username, t.ID, t.Username)
		return nil
	})
}

func cmdTechList(ctx context.Context, env *Env, args []string) error {
	_, c := newFlags("tech list", env)
	return c.withConsole(ctx, args, 0, "", readOnly, func(con *console.Console, _ []string) error {
		ts, err := con.Techs(ctx)
		if err != nil {
			return err
		}
		tw := table(env.Stdout, "USERNAME\tEMAIL\tROLES\tPHONE\tSTATUS")
		now := env.Now().Unix()
		for _, t := range ts {
			var roles []string
			if t.GlobalAdmin {
				roles = append(roles, protocol.RoleGlobalAdmin)
			}
			for _, g := range t.Grants {
				roles = append(roles, g.Tenant+"="+g.Role)
			}
			status := "active"
			if t.Removed {
				status = "removed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Username, t.Email, strings.Join(roles, ","), t.Phone(now), status)
		}
		return tw.Flush()
	})
}

func cmdTechRevoke(ctx context.Context, env *Env, args []string, remove bool) error {
	name, verb := "tech revoke", "revoked"
	if remove {
		name, verb = "tech remove", "removed"
	}
	_, c := newFlags(name, env)
	return c.withConsole(ctx, args, 1, "USERNAME", signs, func(con *console.Console, pos []string) error {
		var serials []uint64
		var pols []*protocol.Policy
		var err error
		if remove {
			serials, pols, err = con.RemoveTech(ctx, pos[0])
		} else {
			serials, pols, err = con.RevokeTech(ctx, pos[0])
		}
		if err != nil {
			return err
		}
		var vs []string
		for _, p := range pols {
			vs = append(vs, fmt.Sprintf("%s v%d", p.Tenant, p.Version))
		}
		fmt.Fprintf(env.Stdout, "technician %s %s; revoked serials %v; new policies: %s\n", pos[0], verb, serials, orNone(strings.Join(vs, ", ")))
		return nil
	})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func cmdPair(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("pair", env)
	png := fs.String("png", "", "also write the QR code as a PNG file")
	return c.withConsole(ctx, args, 1, "USERNAME [--png FILE]", readOnly, func(con *console.Console, pos []string) error {
		q, err := con.NewPairing(ctx, pos[0])
		if err != nil {
			return err
		}
		text, err := q.Encode()
		if err != nil {
			return err
		}
		term, err := qrcode.Terminal(text)
		if err != nil {
			return err
		}
		if *png != "" {
			img, err := qrcode.PNG(text, 6)
			if err != nil {
				return err
			}
			if err := os.WriteFile(*png, img, 0o600); err != nil {
				return fmt.Errorf("write %s: %w", *png, err)
			}
		}
		fmt.Fprint(env.Stdout, term)
		fmt.Fprintf(env.Stdout, "scan with the jitkey app of %s; valid until %s, once; `jitkey-console serve` must be running\n",
			pos[0], q.Time.Add(console.PairingTTL).UTC().Format(time.RFC3339))
		if *png != "" {
			fmt.Fprintf(env.Stdout, "png=%s\n", *png)
		}
		fmt.Fprintf(env.Stdout, "qr=%s\n", text)
		return nil
	})
}

func cmdToken(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("token", env)
	exp := fs.Duration("expires", 24*time.Hour, "lifetime")
	uses := fs.Int("uses", 1, "number of enrollments")
	return c.withConsole(ctx, args, 1, "TENANT [--expires 24h] [--uses 1]", readOnly, func(con *console.Console, pos []string) error {
		text, row, err := con.NewToken(ctx, pos[0], *exp, *uses)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, text)
		fmt.Fprintf(env.Stderr, "enrollment token for tenant %s: %d use(s), expires %s (id %x)\n", pos[0], *uses,
			time.Unix(row.Expires, 0).UTC().Format(time.RFC3339), row.ID[:4])
		return nil
	})
}

func cmdTokens(ctx context.Context, env *Env, args []string) error {
	_, c := newFlags("tokens", env)
	return c.withConsole(ctx, args, 0, "", readOnly, func(con *console.Console, _ []string) error {
		toks, err := con.Tokens(ctx)
		if err != nil {
			return err
		}
		tw := table(env.Stdout, "ID\tTENANT\tUSES LEFT\tEXPIRES\tSTATUS")
		now := env.Now().Unix()
		for _, k := range toks {
			status := "valid"
			switch {
			case k.UsesLeft == 0:
				status = "used up"
			case k.Expires < now:
				status = "expired"
			}
			fmt.Fprintf(tw, "%x\t%s\t%d/%d\t%s\t%s\n", k.ID[:4], k.Tenant, k.UsesLeft, k.Uses,
				time.Unix(k.Expires, 0).UTC().Format(time.RFC3339), status)
		}
		return tw.Flush()
	})
}

func cmdDevices(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "remove" {
		return cmdDevicesRemove(ctx, env, args[1:])
	}
	fs, c := newFlags("devices", env)
	tenant := fs.String("tenant", "", "only this tenant")
	all := fs.Bool("all", false, "also list removed devices")
	return c.withConsole(ctx, args, 0, "", readOnly, func(con *console.Console, _ []string) error {
		list := con.Devices
		if *all {
			list = con.AllDevices
		}
		devs, err := list(ctx, *tenant)
		if err != nil {
			return err
		}
		tw := table(env.Stdout, "TENANT\tNAME\tOS\tDOMAIN\tLAST SEEN\tPOLICY\tSHARED WITH\tID\tSTATUS")
		for _, d := range devs {
			dom := "no"
			if d.DC {
				dom = "dc"
			} else if d.DomainJoined {
				dom = "yes"
			}
			status, shares := "enrolled", strings.Join(d.Shares, ",")
			if d.Removed != 0 {
				status = fmt.Sprintf("removed %s (policy v%d)", time.Unix(d.Removed, 0).UTC().Format("2006-01-02 15:04:05"), d.RemovedVersion)
				shares = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\tv%d\t%s\t%x\t%s\n", d.Tenant, d.Name, d.OS, dom,
				time.Unix(d.LastSeen, 0).UTC().Format("2006-01-02 15:04:05"), d.AckedVersion, shares, d.ID, status)
		}
		return tw.Flush()
	})
}

// cmdDevicesRemove removes a stolen, decommissioned or re-imaged device
// (SPEC.md 11.10).
func cmdDevicesRemove(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("devices remove", env)
	tenant := fs.String("tenant", "", "the device's tenant (when its name is not unique)")
	return c.withConsole(ctx, args, 1, "DEVICE [--tenant T]   (DEVICE: name, TENANT/NAME or id)", signs, func(con *console.Console, pos []string) error {
		d, pol, err := con.RemoveDevice(ctx, pos[0], *tenant)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "device %s removed from tenant %s (id %x); certificate serial %d revoked in policy version %d\n",
			d.Name, d.Tenant, d.ID, d.Serial, pol.Version)
		fmt.Fprintf(env.Stdout, "its agent gets this policy and no later one: it ends its sessions, disables its jitkey accounts and refuses logins\n")
		fmt.Fprintf(env.Stdout, "phones drop it from their directory at their next push or sync and refuse its login codes\n")
		return nil
	})
}

func cmdShare(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("share", env)
	var add, remove multi
	fs.Var(&add, "add", "add all-admins, all-users or a username; repeatable")
	fs.Var(&remove, "remove", "remove an entry; repeatable")
	reset := fs.Bool("reset", false, "back to the default: all-admins, all-users")
	pos, err := parse(fs, args, 1, "DEVICE [--add ENTRY] [--remove ENTRY] [--reset]")
	if err != nil {
		return err
	}
	change := len(add) > 0 || len(remove) > 0 || *reset
	return c.use(ctx, change, func(con *console.Console) error {
		var d *store.Device
		var pol *protocol.Policy
		if change {
			d, pol, err = con.SetShare(ctx, pos[0], console.ShareChange{Add: add, Remove: remove, Reset: *reset})
		} else {
			d, err = con.FindDevice(ctx, pos[0])
		}
		if err != nil {
			return err
		}
		list := strings.Join(d.Shares, ", ")
		if list == "" {
			list = "nobody else"
		}
		fmt.Fprintf(env.Stdout, "%s/%s shared with: %s (global admins always have access)\n", d.Tenant, d.Name, list)
		if pol != nil {
			fmt.Fprintf(env.Stdout, "policy version %d\n", pol.Version)
		}
		return nil
	})
}

func cmdPolicyShow(ctx context.Context, env *Env, args []string) error {
	_, c := newFlags("policy show", env)
	return c.withConsole(ctx, args, 1, "TENANT", readOnly, func(con *console.Console, pos []string) error {
		ti, err := con.Tenant(ctx, pos[0])
		if err != nil {
			return err
		}
		p, w := ti.Policy, env.Stdout
		fmt.Fprintf(w, "tenant=%s\nversion=%d\nissued=%s\nmode=%s\nshared-account=%s\n", p.Tenant, p.Version,
			time.Unix(p.IssuedAt, 0).UTC().Format(time.RFC3339), p.LoginMode, p.SharedAccount)
		fmt.Fprintf(w, "push-login=%v\notp-online=%v\nselective-login=%v\ndomain-accounts=%v\n", p.PushLogin, p.OTPWhileOnline, p.SelectiveLogin, p.DomainAccounts)
		fmt.Fprintf(w, "offline=%d digits/%ds/skew %d/%d failures/lockout %ds..%ds\n", p.Offline.Digits, p.Offline.Period, p.Offline.Skew,
			p.Offline.MaxFailures, p.Offline.LockoutBase, p.Offline.LockoutLimit)
		fmt.Fprintf(w, "offline-algorithm=%s\noffline-logins=%d\noffline-days=%d\n", console.AlgorithmName(p.Offline.Algorithm),
			p.Offline.Logins(), p.Offline.Days())
		pending, perHour, block := p.PushLimits()
		fmt.Fprintf(w, "push-max-pending=%d\npush-per-hour=%d\npush-block=%v\n", pending, perHour, block)
		fmt.Fprintf(w, "max-session=%ds\ninactivity-days=%d\nconsole=%s\n", p.MaxSession, p.InactivityDays, p.Console)
		fmt.Fprintf(w, "require-reason=%v\nticket-pattern=%s\nwarn-before=%ds\nend-user-notice=%v\n", p.RequireReason, p.TicketPattern, p.WarnBefore, p.EndUserNotice)
		fmt.Fprintf(w, "second-approvers=%s\n", strings.Join(p.SecondApprovers, ","))
		fmt.Fprintf(w, "break-glass-off=%v\n", p.BreakGlassOff)
		for _, d := range p.SecondApproverDevices {
			fmt.Fprintf(w, "second-approvers-device=%x:%s\n", d.DeviceID[:], strings.Join(d.Entries, ","))
		}
		var rs []string
		for _, r := range p.Revoked {
			rs = append(rs, strconv.FormatUint(r, 10))
		}
		fmt.Fprintf(w, "revoked=%s\n", strings.Join(rs, ","))
		var ds []string
		for _, r := range p.RevokedDevices {
			ds = append(ds, strconv.FormatUint(r, 10))
		}
		fmt.Fprintf(w, "revoked-devices=%s\n", strings.Join(ds, ","))
		for _, r := range p.Roster {
			fmt.Fprintf(w, "roster=%s <%s> serial %d role %s\n", r.Username, r.Email, r.Serial, r.Role)
		}
		for _, s := range p.Shares {
			fmt.Fprintf(w, "share=%x: %s\n", s.DeviceID, strings.Join(s.Entries, ","))
		}
		fmt.Fprintf(w, "signature=%s\n", hex.EncodeToString(ti.Signed.Sig))
		return nil
	})
}

// parseSince accepts a duration back from now, a date or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--since %q must be a duration (24h), a date (2006-01-02) or an RFC 3339 time", s)
}

func cmdAudit(ctx context.Context, env *Env, args []string) error {
	fs, c := newFlags("audit", env)
	tenant := fs.String("tenant", "", "only this tenant")
	tech := fs.String("tech", "", "only this technician (username)")
	device := fs.String("device", "", "only this device (name, TENANT/NAME or id)")
	since := fs.String("since", "", "only records since (24h, 2006-01-02, RFC 3339)")
	asJSON := fs.Bool("json", false, "JSON lines")
	limit := fs.Int("limit", 0, "at most this many records")
	if _, err := parse(fs, args, 0, ""); err != nil {
		return err
	}
	q := console.AuditQuery{Tenant: *tenant, Username: *tech, Device: *device, Limit: *limit}
	if *since != "" {
		t, err := parseSince(*since, env.Now())
		if err != nil {
			return err
		}
		q.SinceMs = t.UnixMilli()
	}
	return c.use(ctx, readOnly, func(con *console.Console) error {
		rows, alarms, err := con.Audit(ctx, q)
		if err != nil {
			return err
		}
		for _, a := range alarms {
			fmt.Fprintln(env.Stderr, auditview.AlarmLine(a))
		}
		if *asJSON {
			return auditview.JSON(env.Stdout, rows, alarms)
		}
		return auditview.Text(env.Stdout, rows, alarms)
	})
}

// approverList renders a list of second approvers, or none.
func approverList(es []string, none string) string {
	if len(es) == 0 {
		return none
	}
	return strings.Join(es, ", ")
}

// deviceName names a device by id from devs, else by its hex id.
func deviceName(devs []*store.Device, id protocol.DeviceID) string {
	for _, d := range devs {
		if d.ID == id {
			return d.Name
		}
	}
	return hex.EncodeToString(id[:])
}
