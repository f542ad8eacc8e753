package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// View is an organisation's stored documents, verified against its MSP
// key.
type View struct {
	Org      *wallet.Org
	MSP      protocol.IdentityKey
	Tech     protocol.TechCert
	Policies map[string]*protocol.Policy // by tenant
	Devices  []protocol.DeviceCert       // sorted by tenant, then name
	// Removed are the devices the MSP removed: certificates the policy
	// of their tenant revokes (SPEC.md 11.10). They are never in Devices.
	Removed []protocol.DeviceCert
}

// Load verifies an organisation's stored documents.
func Load(o *wallet.Org) (*View, error) {
	v := &View{Org: o, MSP: o.MSP(), Policies: map[string]*protocol.Policy{}}
	if err := o.TechCert.VerifyEd25519(protocol.DocTechCert, v.MSP, &v.Tech); err != nil {
		return nil, fmt.Errorf("organisation %s: technician certificate: %w", o.ID, err)
	}
	for _, s := range o.Policies {
		var p protocol.Policy
		if err := s.VerifyEd25519(protocol.DocPolicy, v.MSP, &p); err != nil {
			return nil, fmt.Errorf("organisation %s: policy: %w", o.ID, err)
		}
		v.Policies[p.Tenant] = &p
	}
	for _, s := range o.Directory {
		var d protocol.DeviceCert
		if err := s.VerifyEd25519(protocol.DocDeviceCert, v.MSP, &d); err != nil {
			return nil, fmt.Errorf("organisation %s: device certificate: %w", o.ID, err)
		}
		if v.revoked(&d) {
			// The console leaves removed devices out; should one come
			// anyway, its tenant's policy decides.
			v.Removed = append(v.Removed, d)
			continue
		}
		v.Devices = append(v.Devices, d)
	}
	for _, s := range o.Removed {
		var d protocol.DeviceCert
		if err := s.VerifyEd25519(protocol.DocDeviceCert, v.MSP, &d); err != nil {
			return nil, fmt.Errorf("organisation %s: removed device certificate: %w", o.ID, err)
		}
		if v.revoked(&d) {
			v.Removed = append(v.Removed, d)
		}
	}
	sortDevices(v.Devices)
	sortDevices(v.Removed)
	return v, nil
}

// revoked reports whether the policy held for d's tenant revokes d.
func (v *View) revoked(d *protocol.DeviceCert) bool {
	p, ok := v.Policies[d.Tenant]
	return ok && p.IsDeviceRevoked(d.Serial)
}

// RemovedDevice returns the certificate of id if the MSP removed it.
func (v *View) RemovedDevice(id protocol.DeviceID) (protocol.DeviceCert, bool) {
	for _, d := range v.Removed {
		if d.DeviceID == id {
			return d, true
		}
	}
	return protocol.DeviceCert{}, false
}

func sortDevices(ds []protocol.DeviceCert) {
	slices.SortFunc(ds, func(a, b protocol.DeviceCert) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// Device returns the directory entry of id.
func (v *View) Device(id protocol.DeviceID) (protocol.DeviceCert, bool) {
	for _, d := range v.Devices {
		if d.DeviceID == id {
			return d, true
		}
	}
	return protocol.DeviceCert{}, false
}

// Tenants returns the tenants the phone holds policies of, sorted.
func (v *View) Tenants() []string {
	var ts []string
	for t := range v.Policies {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// Search returns the devices whose name, tenant, OS or id contains s
// (case-insensitive); all devices for an empty s.
func (v *View) Search(s string) []protocol.DeviceCert {
	s = strings.ToLower(strings.TrimSpace(s))
	var out []protocol.DeviceCert
	for _, d := range v.Devices {
		hay := strings.ToLower(d.Name + "\x00" + d.Tenant + "\x00" + d.OS + "\x00" + fmt.Sprintf("%x", d.DeviceID[:]))
		if strings.Contains(hay, s) {
			out = append(out, d)
		}
	}
	return out
}

// MaySee reports whether the technician is delegated to tenant.
func (v *View) MaySee(tenant string) bool { return v.Tech.RoleIn(tenant) != "" }

// Versions returns the (tenant, version) pairs held.
func (v *View) Versions() []protocol.TenantVersion {
	var out []protocol.TenantVersion
	for _, t := range v.Tenants() {
		out = append(out, protocol.TenantVersion{Tenant: t, Version: v.Policies[t].Version})
	}
	return out
}
