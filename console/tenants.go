package console

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Defaults of a new tenant.
var (
	DefaultOffline = protocol.OfflineParams{
		Digits: 6, Period: 30, Skew: 1, MaxFailures: 5, LockoutBase: 30, LockoutLimit: 3600,
	}
	DefaultMaxSession     = 8 * time.Hour
	DefaultInactivityDays = 30
	// DefaultWarnBefore is how long before the hard session cap a new
	// tenant's users are warned (SPEC.md 11.13).
	DefaultWarnBefore = 5 * time.Minute
)

// TenantChange lists settings to change; nil fields stay as they are (or
// take their defaults for a new tenant).
type TenantChange struct {
	LoginMode      *string
	PushLogin      *bool
	OTPWhileOnline *bool
	SelectiveLogin *bool
	DomainAccounts *bool
	Digits         *int
	Period         *int
	Skew           *int
	MaxFailures    *int
	LockoutBase    *time.Duration
	LockoutLimit   *time.Duration
	MaxSession     *time.Duration
	InactivityDays *int
	// Offline login: Algorithm "sha1" or "sha256"; MaxLogins and MaxDays
	// bound offline logins since the agent's last contact (SPEC.md 11.6).
	Algorithm *string
	MaxLogins *int
	MaxDays   *int
	// RequireReason and TicketPattern govern approvals (SPEC.md 6.3).
	RequireReason *bool
	TicketPattern *string
	// WarnBefore is how long before the hard cap the user is warned
	// (0: not at all).
	WarnBefore *time.Duration
	// EndUserNotice: the computer's users are told when a technician
	// session starts.
	EndUserNotice *bool
	// BreakGlassOff turns break-glass off (true) or on (false) on the
	// tenant's computers (SPEC.md 6.3, 11.15).
	BreakGlassOff *bool
	// Push login limits (SPEC.md 6.3, 11.5): pending pushes per device,
	// pushes per technician and device per hour, and how long a "this was
	// not me" report blocks the technician's pushes.
	PushMaxPending *int
	PushPerHour    *int
	PushBlock      *time.Duration
	// SecondApprovers replaces the tenant's list of second approvers
	// (SPEC.md 6.3, 11.14): share-list entries; empty: none needed.
	SecondApprovers *[]string
	// SecondApproverDevice sets one device's own list.
	SecondApproverDevice *DeviceApprovers
}

// DeviceApprovers is one device's list of second approvers (SPEC.md
// 6.3, Policy 27): Entries empty exempts the device; Remove drops the
// override (the device follows its tenant's list).
type DeviceApprovers struct {
	Device  string // the device's name or hex id
	Entries []string
	Remove  bool
}

// approverEntries checks and sorts a list of second approvers.
func approverEntries(es []string) ([]string, error) {
	out := []string{}
	for _, e := range es {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if e != protocol.ShareAllAdmins && e != protocol.ShareAllUsers && !protocol.ValidUsername(e) {
			return nil, refuse("second approver %q must be %s, %s or a username", e, protocol.ShareAllAdmins, protocol.ShareAllUsers)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) > protocol.MaxSecondApproverEntries {
		return nil, refuse("at most %d second approvers per list", protocol.MaxSecondApproverEntries)
	}
	slices.Sort(out)
	return out, nil
}

// applyApprovers stores the second approvers ch sets for tenant.
func (ch *TenantChange) applyApprovers(tx *store.Tx, tenant string) error {
	if ch.SecondApprovers != nil {
		es, err := approverEntries(*ch.SecondApprovers)
		if err != nil {
			return err
		}
		if err := tx.SetSecondApprovers(tenant, nil, es); err != nil {
			return err
		}
	}
	d := ch.SecondApproverDevice
	if d == nil {
		return nil
	}
	dev, err := findDevice(tx, deviceRef{ref: d.Device, tenant: tenant})
	if err != nil {
		return err
	}
	id := &dev.ID
	if d.Remove {
		return tx.SetSecondApprovers(tenant, id, nil)
	}
	es, err := approverEntries(d.Entries)
	if err != nil {
		return err
	}
	return tx.SetSecondApprovers(tenant, id, es)
}

// Empty reports whether the change changes nothing.
func (ch *TenantChange) Empty() bool { return *ch == TenantChange{} }

func (ch *TenantChange) apply(tn *store.Tenant) error {
	set := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	if ch.LoginMode != nil {
		if *ch.LoginMode != protocol.ModeNamed && *ch.LoginMode != protocol.ModeShared {
			return refuse("login mode %q must be %q or %q", *ch.LoginMode, protocol.ModeNamed, protocol.ModeShared)
		}
		tn.LoginMode = *ch.LoginMode
	}
	set(&tn.PushLogin, ch.PushLogin)
	set(&tn.OTPWhileOnline, ch.OTPWhileOnline)
	set(&tn.SelectiveLogin, ch.SelectiveLogin)
	set(&tn.DomainAccounts, ch.DomainAccounts)
	set(&tn.RequireReason, ch.RequireReason)
	set(&tn.EndUserNotice, ch.EndUserNotice)
	set(&tn.BreakGlassOff, ch.BreakGlassOff)
	if ch.TicketPattern != nil {
		if _, err := protocol.CompileTicketPattern(*ch.TicketPattern); err != nil {
			return refuse("ticket pattern %q: %v (RE2 syntax, at most %d bytes, matched against the whole ticket)",
				*ch.TicketPattern, err, protocol.MaxTicketPatternLen)
		}
		tn.TicketPattern = *ch.TicketPattern
	}
	if ch.WarnBefore != nil {
		w := *ch.WarnBefore
		if w < 0 || w > protocol.MaxWarnBefore*time.Second || w%time.Second != 0 {
			return refuse("warning before the session cap must be whole seconds from 0 to 24h, not %v", w)
		}
		tn.WarnBefore = int64(w / time.Second)
	}
	if ch.Digits != nil {
		if *ch.Digits != 6 && *ch.Digits != 8 {
			return refuse("offline code digits must be 6 or 8, not %d", *ch.Digits)
		}
		tn.Offline.Digits = *ch.Digits
	}
	if ch.Period != nil {
		if *ch.Period != 30 && *ch.Period != 60 {
			return refuse("offline code period must be 30 or 60 seconds, not %d", *ch.Period)
		}
		tn.Offline.Period = *ch.Period
	}
	if ch.Skew != nil {
		if *ch.Skew < 0 || *ch.Skew > 1 {
			return refuse("offline code skew must be 0 or 1 steps, not %d", *ch.Skew)
		}
		tn.Offline.Skew = *ch.Skew
	}
	if ch.MaxFailures != nil {
		if *ch.MaxFailures < 1 || *ch.MaxFailures > 10 {
			return refuse("offline max failures must be 1..10, not %d", *ch.MaxFailures)
		}
		tn.Offline.MaxFailures = *ch.MaxFailures
	}
	if ch.LockoutBase != nil {
		if *ch.LockoutBase < time.Second || *ch.LockoutBase > time.Hour || *ch.LockoutBase%time.Second != 0 {
			return refuse("lockout base must be whole seconds between 1s and 1h, not %v", *ch.LockoutBase)
		}
		tn.Offline.LockoutBase = int64(*ch.LockoutBase / time.Second)
	}
	if ch.LockoutLimit != nil {
		if *ch.LockoutLimit < time.Second || *ch.LockoutLimit > 24*time.Hour || *ch.LockoutLimit%time.Second != 0 {
			return refuse("lockout cap must be whole seconds between 1s and 24h, not %v", *ch.LockoutLimit)
		}
		tn.Offline.LockoutLimit = int64(*ch.LockoutLimit / time.Second)
	}
	if tn.Offline.LockoutLimit < tn.Offline.LockoutBase {
		return refuse("lockout cap (%ds) must not be below the lockout base (%ds)", tn.Offline.LockoutLimit, tn.Offline.LockoutBase)
	}
	if ch.MaxSession != nil {
		if *ch.MaxSession < time.Minute || *ch.MaxSession > 7*24*time.Hour || *ch.MaxSession%time.Second != 0 {
			return refuse("maximum session length must be whole seconds between 1m and 168h, not %v", *ch.MaxSession)
		}
		tn.MaxSession = int64(*ch.MaxSession / time.Second)
	}
	if ch.InactivityDays != nil {
		if *ch.InactivityDays < 1 || *ch.InactivityDays > 3650 {
			return refuse("inactivity removal period must be 1..3650 days, not %d", *ch.InactivityDays)
		}
		tn.InactivityDays = *ch.InactivityDays
	}
	if tn.DomainAccounts && !tn.SelectiveLogin {
		return refuse("domain accounts need selective login (--selective-login) so the phone can offer them")
	}
	if err := ch.applyPush(tn); err != nil {
		return err
	}
	return ch.applyOffline(tn)
}

// applyPush applies the push login limits of ch, within the bounds an
// agent accepts (Policy.Check).
func (ch *TenantChange) applyPush(tn *store.Tenant) error {
	if ch.PushMaxPending != nil {
		if *ch.PushMaxPending < 1 || *ch.PushMaxPending > protocol.MaxPushMaxPending {
			return refuse("pending push logins per computer must be 1..%d, not %d", protocol.MaxPushMaxPending, *ch.PushMaxPending)
		}
		tn.PushMaxPending = *ch.PushMaxPending
	}
	if ch.PushPerHour != nil {
		if *ch.PushPerHour < 1 || *ch.PushPerHour > protocol.MaxPushPerHour {
			return refuse("push logins per technician and hour must be 1..%d, not %d", protocol.MaxPushPerHour, *ch.PushPerHour)
		}
		tn.PushPerHour = *ch.PushPerHour
	}
	if ch.PushBlock != nil {
		max := time.Duration(protocol.MaxPushBlock) * time.Second
		if *ch.PushBlock < time.Minute || *ch.PushBlock > max || *ch.PushBlock%time.Second != 0 {
			return refuse("push block after a fraud report must be whole seconds between 1m and %v, not %v", max, *ch.PushBlock)
		}
		tn.PushBlock = int64(*ch.PushBlock / time.Second)
	}
	return nil
}

// AddTenant creates a tenant with default settings changed by ch and
// publishes its first policy (version 1).
func (c *Console) AddTenant(ctx context.Context, name string, ch TenantChange) (*store.Tenant, *protocol.Policy, error) {
	if err := CheckTenantName(name); err != nil {
		return nil, nil, err
	}
	if c.auth == nil {
		return nil, nil, ErrLocked
	}
	tn := &store.Tenant{
		Name: name, LoginMode: protocol.ModeNamed, Offline: DefaultOffline,
		MaxSession: int64(DefaultMaxSession / time.Second), InactivityDays: DefaultInactivityDays,
		WarnBefore: int64(DefaultWarnBefore / time.Second),
		Created:    c.unix(), OfflineSecret: make([]byte, 32), OfflineGeneration: 1,
	}
	if err := ch.apply(tn); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(c.rand, tn.OfflineSecret); err != nil {
		return nil, nil, fmt.Errorf("console: random: %w", err)
	}
	var pol *protocol.Policy
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Tenant(name); err == nil {
			return refuse("tenant %s already exists", name)
		}
		acct, err := c.newSharedAccount(tx)
		if err != nil {
			return err
		}
		tn.SharedAccount = acct
		if err := tx.InsertTenant(tn); err != nil {
			return err
		}
		if err := ch.applyApprovers(tx, name); err != nil {
			return err
		}
		pol, err = c.publish(tx, name)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.log.Info("tenant added", "tenant", name, "mode", tn.LoginMode, "policy_version", pol.Version)
	return tn, pol, nil
}

// newSharedAccount picks msp-NNNN, four random digits, unused by any tenant.
func (c *Console) newSharedAccount(tx *store.Tx) (string, error) {
	for range 200 {
		var b [2]byte
		if _, err := io.ReadFull(c.rand, b[:]); err != nil {
			return "", fmt.Errorf("console: random: %w", err)
		}
		v := binary.BigEndian.Uint16(b[:])
		if v >= 60000 { // keep v % 10000 uniform
			continue
		}
		acct := fmt.Sprintf("msp-%04d", v%10000)
		taken, err := tx.SharedAccountTaken(acct)
		if err != nil {
			return "", err
		}
		if !taken {
			return acct, nil
		}
	}
	return "", refuse("no free shared account name msp-NNNN is left")
}

// SetTenant changes a tenant's settings and publishes a new policy.
func (c *Console) SetTenant(ctx context.Context, name string, ch TenantChange) (*store.Tenant, *protocol.Policy, error) {
	if ch.Empty() {
		return nil, nil, refuse("nothing to change: give at least one setting flag")
	}
	if c.auth == nil {
		return nil, nil, ErrLocked
	}
	var tn *store.Tenant
	var pol *protocol.Policy
	var rots []rotation
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		var err error
		if tn, err = tx.Tenant(name); err != nil {
			return refuse("no tenant %q", name)
		}
		wasShared := tn.LoginMode == protocol.ModeShared
		if err := ch.apply(tn); err != nil {
			return err
		}
		if err := tx.UpdateTenant(tn); err != nil {
			return err
		}
		if err := ch.applyApprovers(tx, name); err != nil {
			return err
		}
		if !wasShared && tn.LoginMode == protocol.ModeShared {
			// Keys handed out while the tenant was shared before stay dead.
			if rots, err = c.rotateOffline(tx, []string{name}, RotateModeShared); err != nil {
				return err
			}
			if tn, err = tx.Tenant(name); err != nil {
				return err
			}
		}
		pol, err = c.publish(tx, name)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.logRotations(rots)
	c.log.Info("tenant changed", "tenant", name, "policy_version", pol.Version)
	return tn, pol, nil
}

// Tenants lists the tenants with their latest policy versions.
func (c *Console) Tenants(ctx context.Context) ([]*store.Tenant, map[string]uint64, error) {
	var tns []*store.Tenant
	vers := map[string]uint64{}
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		if tns, err = tx.Tenants(); err != nil {
			return err
		}
		for _, tn := range tns {
			if vers[tn.Name], err = tx.PolicyVersion(tn.Name); err != nil {
				return err
			}
		}
		return nil
	})
	return tns, vers, err
}

// TenantInfo is what `tenant show` and `policy show` print.
type TenantInfo struct {
	Tenant  *store.Tenant
	Policy  *protocol.Policy // latest published
	Signed  protocol.Signed
	Devices []*store.Device
	Techs   []*store.Tech // delegated technicians, global admins included
}

// Tenant returns a tenant with its latest policy, devices and technicians.
func (c *Console) Tenant(ctx context.Context, name string) (*TenantInfo, error) {
	var ti TenantInfo
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		if ti.Tenant, err = tx.Tenant(name); err != nil {
			return refuse("no tenant %q", name)
		}
		row, err := tx.LatestPolicy(name)
		if err != nil {
			return err
		}
		ti.Signed = row.Signed
		ti.Policy = new(protocol.Policy)
		if err := row.Signed.VerifyEd25519(protocol.DocPolicy, c.set.MSPKey, ti.Policy); err != nil {
			return fmt.Errorf("console: stored policy of %s does not verify: %w", name, err)
		}
		if ti.Devices, err = tx.Devices(name); err != nil {
			return err
		}
		techs, err := tx.Techs()
		if err != nil {
			return err
		}
		for _, t := range techs {
			if !t.Removed && t.RoleIn(name) != "" {
				ti.Techs = append(ti.Techs, t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ti, nil
}
