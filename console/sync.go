package console

import (
	"context"
	"fmt"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// DeviceByMailbox returns the enrolled device with that relay mailbox; the
// server accepts FlowAudit only from these.
func (c *Console) DeviceByMailbox(ctx context.Context, mb protocol.MailboxID) (*store.Device, error) {
	var d *store.Device
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		d, err = tx.DeviceByMailbox(mb)
		return err
	})
	return d, err
}

// PhoneByMailbox returns the active (unrevoked, valid, technician not
// removed) certificate of the phone with that mailbox; the server accepts
// FlowSync only from these.
func (c *Console) PhoneByMailbox(ctx context.Context, mb protocol.MailboxID) (*store.TechCert, *protocol.TechCert, error) {
	var row *store.TechCert
	var tc protocol.TechCert
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		if row, err = tx.ActiveCertByMailbox(mb, c.unix()); err != nil {
			return err
		}
		t, err := tx.TechByID(row.TechID)
		if err != nil {
			return err
		}
		if t.Removed {
			return fmt.Errorf("%w: technician removed", ErrRefused)
		}
		return row.Cert.VerifyEd25519(protocol.DocTechCert, c.set.MSPKey, &tc)
	})
	if err != nil {
		return nil, nil, err
	}
	return row, &tc, nil
}

// PhoneSync returns what the phone with that certificate should hold.
func (c *Console) PhoneSync(ctx context.Context, tc *protocol.TechCert) (*PhoneView, error) {
	var v *PhoneView
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		v, err = c.phoneView(tx, tc, true)
		return err
	})
	return v, err
}

// RecordPhoneAck records the versions a phone acknowledged, for tenants it
// may see and versions that exist.
func (c *Console) RecordPhoneAck(ctx context.Context, tc *protocol.TechCert, vs []protocol.TenantVersion) error {
	return c.db.Update(ctx, func(tx *store.Tx) error {
		for _, v := range vs {
			if tc.RoleIn(v.Tenant) == "" {
				continue
			}
			cur, err := tx.PolicyVersion(v.Tenant)
			if err != nil {
				return err
			}
			if v.Version == 0 || v.Version > cur {
				continue
			}
			if err := tx.SetPhoneAck(tc.Serial, v.Tenant, v.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordDeviceAck records the version a device acknowledged for its tenant.
func (c *Console) RecordDeviceAck(ctx context.Context, d *store.Device, vs []protocol.TenantVersion) error {
	return c.db.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.PolicyVersion(d.Tenant)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if v.Tenant == d.Tenant && v.Version <= cur {
				if err := tx.SetDeviceAck(d.ID, v.Version, c.unix()); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// PushTarget is a peer that holds an older policy than the latest.
type PushTarget struct {
	Key      string // "device:<id>" or "phone:<serial>", stable per peer
	Addr     protocol.PeerAddr
	NoiseKey protocol.NoiseKey
	// Pages is the transfer to send (SPEC.md 8.3): one page for an agent,
	// the phone's whole view for a phone.
	Pages    []protocol.PolicyPush
	Versions []protocol.TenantVersion // policy versions Pages carries
	Device   *store.Device            // set for agents
	Tech     *protocol.TechCert       // set for phones
}

// PushTargets lists the devices and phones whose acknowledged version of
// some tenant policy is lower than the latest, with what to send them:
// agents get their tenant's policy on one page; phones every policy they
// may see, the directory and their offline keys, as a paged transfer. A
// removed device is a target only until it acknowledged the policy that
// revoked it, and is sent that one (SPEC.md 11.10).
func (c *Console) PushTargets(ctx context.Context) ([]PushTarget, error) {
	var out []PushTarget
	err := c.db.View(ctx, func(tx *store.Tx) error {
		devs, err := tx.AllDevices("")
		if err != nil {
			return err
		}
		latest := map[string]*store.PolicyRow{}
		tenants := map[string]*store.Tenant{}
		for _, d := range devs {
			pol, ok := latest[d.Tenant]
			if !ok {
				if pol, err = tx.LatestPolicy(d.Tenant); err != nil {
					return err
				}
				latest[d.Tenant] = pol
				if tenants[d.Tenant], err = tx.Tenant(d.Tenant); err != nil {
					return err
				}
			}
			if d.Removed != 0 {
				// A removed device gets the policy that revoked it, so
				// that its agent locks itself down, and nothing later
				// (SPEC.md 11.10).
				if d.AckedVersion >= d.RemovedVersion {
					continue
				}
				if pol, err = tx.PolicyAt(d.Tenant, d.RemovedVersion); err != nil {
					return err
				}
			}
			if d.AckedVersion < pol.Version {
				// A shared-mode tenant's agents get its offline secret
				// with every policy (nothing for a removed device).
				secrets := agentSecrets(tenants[d.Tenant], d)
				out = append(out, PushTarget{
					Key: fmt.Sprintf("device:%x", d.ID), Addr: d.Addr(), NoiseKey: d.NoiseKey, Device: d,
					Versions: []protocol.TenantVersion{{Tenant: d.Tenant, Version: pol.Version}},
					Pages: []protocol.PolicyPush{{Policies: []protocol.Signed{pol.Signed}, Directory: []protocol.Signed{},
						OfflineSecrets: secrets}},
				})
			}
		}
		certs, err := tx.ActiveCerts(c.unix())
		if err != nil {
			return err
		}
		for _, row := range certs {
			t, err := tx.TechByID(row.TechID)
			if err != nil {
				return err
			}
			if t.Removed {
				continue
			}
			var tc protocol.TechCert
			if err := row.Cert.VerifyEd25519(protocol.DocTechCert, c.set.MSPKey, &tc); err != nil {
				return err
			}
			v, err := c.phoneView(tx, &tc, false)
			if err != nil {
				return err
			}
			behind := false
			for _, tv := range v.Versions {
				acked, err := tx.PhoneAck(tc.Serial, tv.Tenant)
				if err != nil {
					return err
				}
				behind = behind || acked < tv.Version
			}
			if !behind {
				continue
			}
			if v, err = c.phoneView(tx, &tc, true); err != nil {
				return err
			}
			pages, err := v.Pages()
			if err != nil {
				return err
			}
			out = append(out, PushTarget{
				Key:  fmt.Sprintf("phone:%d", tc.Serial),
				Addr: protocol.PeerAddr{Relay: tc.Relay, Mailbox: row.Mailbox}, NoiseKey: tc.NoiseKey, Tech: &tc, Versions: v.Versions,
				Pages: pages,
			})
		}
		return nil
	})
	return out, err
}
