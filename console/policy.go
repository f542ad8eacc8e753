package console

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// publish builds the tenant's policy from the current state, signs it with
// the next version and stores it, all inside the caller's transaction.
func (c *Console) publish(tx *store.Tx, tenant string) (*protocol.Policy, error) {
	if c.auth == nil {
		return nil, ErrLocked
	}
	p, err := c.buildPolicy(tx, tenant)
	if err != nil {
		return nil, err
	}
	cur, err := tx.PolicyVersion(tenant)
	if err != nil {
		return nil, err
	}
	p.Version = cur + 1
	signed, err := c.auth.SignPolicy(p)
	if err != nil {
		return nil, err
	}
	if err := tx.InsertPolicy(&store.PolicyRow{Tenant: tenant, Version: p.Version, Signed: signed, Created: p.IssuedAt}); err != nil {
		return nil, err
	}
	return p, nil
}

// buildPolicy assembles a tenant policy (without version) from the store.
func (c *Console) buildPolicy(tx *store.Tx, tenant string) (*protocol.Policy, error) {
	tn, err := tx.Tenant(tenant)
	if err != nil {
		return nil, err
	}
	now := c.unix()
	p := &protocol.Policy{
		Tenant: tn.Name, IssuedAt: now, LoginMode: tn.LoginMode,
		PushLogin: tn.PushLogin, OTPWhileOnline: tn.OTPWhileOnline,
		SelectiveLogin: tn.SelectiveLogin, DomainAccounts: tn.DomainAccounts,
		Offline: tn.Offline, MaxSession: tn.MaxSession, InactivityDays: tn.InactivityDays,
		RequireReason: tn.RequireReason, TicketPattern: tn.TicketPattern, WarnBefore: tn.WarnBefore,
		EndUserNotice: tn.EndUserNotice, BreakGlassOff: tn.BreakGlassOff,
		PushMaxPending: tn.PushMaxPending, PushPerHour: tn.PushPerHour, PushBlock: tn.PushBlock,
		Console: c.Addr().String(), ConsoleNoise: c.peer.NoisePublic(),
		Shares: []protocol.DeviceShare{}, Revoked: []uint64{}, Roster: []protocol.RosterEntry{},
	}
	if tn.LoginMode == protocol.ModeShared {
		p.SharedAccount = tn.SharedAccount
	}
	devs, err := tx.Devices(tenant)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if d.CustomShare {
			p.Shares = append(p.Shares, protocol.DeviceShare{DeviceID: d.ID, Entries: slices.Sorted(slices.Values(d.Shares))})
		}
	}
	slices.SortFunc(p.Shares, func(a, b protocol.DeviceShare) int { return bytes.Compare(a.DeviceID[:], b.DeviceID[:]) })
	if p.SecondApprovers, p.SecondApproverDevices, err = tx.SecondApprovers(tenant); err != nil {
		return nil, err
	}

	// Removed devices: their serials stay revoked while their certificates
	// are valid (SPEC.md 11.10); afterwards R-11 refuses them anyway.
	all, err := tx.AllDevices(tenant)
	if err != nil {
		return nil, err
	}
	for _, d := range all {
		if d.Removed == 0 {
			continue
		}
		var dc protocol.DeviceCert
		if err := d.Cert.VerifyEd25519(protocol.DocDeviceCert, c.set.MSPKey, &dc); err != nil {
			return nil, fmt.Errorf("console: stored certificate of device %x does not verify: %w", d.ID, err)
		}
		if dc.NotAfter >= now {
			p.RevokedDevices = append(p.RevokedDevices, d.Serial)
		}
	}
	slices.Sort(p.RevokedDevices)
	p.RevokedDevices = slices.Compact(p.RevokedDevices)

	revoked, err := tx.RevokedCerts(now)
	if err != nil {
		return nil, err
	}
	for _, rc := range revoked {
		var tc protocol.TechCert
		if err := rc.Cert.VerifyEd25519(protocol.DocTechCert, c.set.MSPKey, &tc); err != nil {
			return nil, fmt.Errorf("console: stored certificate %d does not verify: %w", rc.Serial, err)
		}
		if tc.RoleIn(tenant) != "" {
			p.Revoked = append(p.Revoked, rc.Serial)
		}
	}
	slices.Sort(p.Revoked)
	p.Revoked = slices.Compact(p.Revoked)

	active, err := tx.ActiveCerts(now)
	if err != nil {
		return nil, err
	}
	latest := map[string]*store.TechCert{} // tech id -> newest active cert
	for _, ac := range active {
		latest[ac.TechID] = ac
	}
	for id, ac := range latest {
		t, err := tx.TechByID(id)
		if err != nil {
			return nil, err
		}
		if t.Removed || t.RoleIn(tenant) == "" {
			continue
		}
		var tc protocol.TechCert
		if err := ac.Cert.VerifyEd25519(protocol.DocTechCert, c.set.MSPKey, &tc); err != nil {
			return nil, fmt.Errorf("console: stored certificate %d does not verify: %w", ac.Serial, err)
		}
		// The role lets an agent decide an offline login from the roster
		// alone (RosterEntry.Cert): the certificate's, as online.
		role := tc.RoleIn(tenant)
		if role == "" {
			role = t.RoleIn(tenant)
		}
		p.Roster = append(p.Roster, protocol.RosterEntry{
			Serial: tc.Serial, TechID: tc.TechID, Username: tc.Username, Email: tc.Email,
			NoiseKey: tc.NoiseKey, IdentityKey: tc.IdentityKey, Relay: tc.Relay, Role: role,
		})
	}
	slices.SortFunc(p.Roster, func(a, b protocol.RosterEntry) int { return strings.Compare(a.Username, b.Username) })
	return p, nil
}
