package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

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

	// directory is, for a DC agent, the digest of the domain-joined
	// directory Pages carries (see DirectoryPushed).
	directory [32]byte
}

// domainDirectory is a list of device certificates of one tenant for
// FlowDomain (SPEC.md 8.2 PolicyPush, 11.7), sorted by device id, and a
// digest of their serials that changes whenever the list does.
type domainDirectory struct {
	certs  []protocol.Signed
	digest [32]byte
}

// domainDirectories returns, per tenant, the directory of its DC agents
// (its enrolled, not removed, DomainJoined devices) and the directory of
// its domain-joined workstations (its enrolled DC devices).
func domainDirectories(devs []*store.Device) (forDC, forWorkstation map[string]*domainDirectory) {
	joined, dcs := map[string][]*store.Device{}, map[string][]*store.Device{}
	for _, d := range devs {
		if d.DomainJoined && d.Removed == 0 {
			joined[d.Tenant] = append(joined[d.Tenant], d)
		}
		if d.DC && d.Removed == 0 {
			dcs[d.Tenant] = append(dcs[d.Tenant], d)
		}
	}
	return directoriesOf(joined), directoriesOf(dcs)
}

func directoriesOf(byTenant map[string][]*store.Device) map[string]*domainDirectory {
	out := map[string]*domainDirectory{}
	for tenant, ds := range byTenant {
		slices.SortFunc(ds, func(a, b *store.Device) int { return bytes.Compare(a.ID[:], b.ID[:]) })
		h := sha256.New()
		dir := &domainDirectory{}
		for _, d := range ds {
			dir.certs = append(dir.certs, d.Cert)
			h.Write(binary.BigEndian.AppendUint64(nil, d.Serial))
		}
		h.Sum(dir.digest[:0])
		out[tenant] = dir
	}
	return out
}

// DirectoryPushed records that the agent of t (a DC or a domain-joined
// workstation) acknowledged the directory t carried, so that it is a push
// target again only when that directory changes (a domain-joined device
// or a DC enrolled or removed) or its policy is behind. No-op for other
// targets.
func (c *Console) DirectoryPushed(t *PushTarget) {
	if t.Device == nil || !(t.Device.DC || t.Device.DomainJoined) {
		return
	}
	c.dirMu.Lock()
	defer c.dirMu.Unlock()
	c.dirSent[t.Device.ID] = t.directory
}

func (c *Console) directoryBehind(d *store.Device, dir *domainDirectory) bool {
	c.dirMu.Lock()
	defer c.dirMu.Unlock()
	sent, ok := c.dirSent[d.ID]
	return !ok || sent != dir.digest
}

// PushTargets lists the devices and phones whose acknowledged version of
// some tenant policy is lower than the latest, with what to send them:
// agents get their tenant's policy on one page; phones every policy they
// may see, the directory and their offline keys, as a paged transfer. A
// removed device is a target only until it acknowledged the policy that
// revoked it, and is sent that one (SPEC.md 11.10). A DC agent (DeviceCert
// DC) gets its tenant's domain-joined device certificates as its
// Directory, a domain-joined workstation its tenant's DC certificates;
// either is also a target when that list changed since it last
// acknowledged it (SPEC.md 8.2).
func (c *Console) PushTargets(ctx context.Context) ([]PushTarget, error) {
	var out []PushTarget
	err := c.db.View(ctx, func(tx *store.Tx) error {
		devs, err := tx.AllDevices("")
		if err != nil {
			return err
		}
		latest := map[string]*store.PolicyRow{}
		tenants := map[string]*store.Tenant{}
		dcDirs, wsDirs := domainDirectories(devs)
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
			// A DC agent answers FlowDomain (KK) only for the
			// workstations listed here; a domain-joined workstation
			// dials the DC agents listed here (SPEC.md 8.2, 11.7).
			var dir *domainDirectory
			if d.Removed == 0 && (d.DC || d.DomainJoined) {
				dirs := wsDirs
				if d.DC {
					dirs = dcDirs
				}
				if dir = dirs[d.Tenant]; dir == nil {
					dir = &domainDirectory{}
				}
			}
			if d.AckedVersion < pol.Version || (dir != nil && c.directoryBehind(d, dir)) {
				// A shared-mode tenant's agents get its offline secret
				// with every policy (nothing for a removed device).
				secrets := agentSecrets(tenants[d.Tenant], d)
				t := PushTarget{
					Key: fmt.Sprintf("device:%x", d.ID), Addr: d.Addr(), NoiseKey: d.NoiseKey, Device: d,
					Versions: []protocol.TenantVersion{{Tenant: d.Tenant, Version: pol.Version}},
					Pages: []protocol.PolicyPush{{Policies: []protocol.Signed{pol.Signed}, Directory: []protocol.Signed{},
						OfflineSecrets: secrets}},
				}
				if dir != nil && len(dir.certs) > 0 {
					t.Pages[0].Directory = dir.certs
				}
				if dir != nil {
					t.directory = dir.digest
				}
				out = append(out, t)
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
