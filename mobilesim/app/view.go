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
		v.Devices = append(v.Devices, d)
	}
	sortDevices(v.Devices)
	return v, nil
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
