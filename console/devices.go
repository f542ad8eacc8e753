package console

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Devices lists the enrolled devices of a tenant ("" for all); removed
// devices are left out (see AllDevices).
func (c *Console) Devices(ctx context.Context, tenant string) ([]*store.Device, error) {
	return c.devices(ctx, tenant, false)
}

// AllDevices lists the devices of a tenant ("" for all), removed ones
// included.
func (c *Console) AllDevices(ctx context.Context, tenant string) ([]*store.Device, error) {
	return c.devices(ctx, tenant, true)
}

func (c *Console) devices(ctx context.Context, tenant string, removed bool) ([]*store.Device, error) {
	var out []*store.Device
	err := c.db.View(ctx, func(tx *store.Tx) error {
		if tenant != "" {
			if _, err := tx.Tenant(tenant); err != nil {
				return refuse("no tenant %q", tenant)
			}
		}
		var err error
		if removed {
			out, err = tx.AllDevices(tenant)
		} else {
			out, err = tx.Devices(tenant)
		}
		return err
	})
	return out, err
}

// deviceRef says which devices a reference may name.
type deviceRef struct {
	ref     string // name, TENANT/NAME, or at least 8 hex digits of the id
	tenant  string // if set, only this tenant's devices
	removed bool   // removed devices may be named too (audit)
}

// findDevice resolves a device reference: its id in hex (at least 8 digits
// of it), or its name, optionally "tenant/name". Ambiguity is refused,
// naming the candidates; so is a removed device unless r.removed.
func findDevice(tx *store.Tx, r deviceRef) (*store.Device, error) {
	if r.tenant != "" {
		if _, err := tx.Tenant(r.tenant); err != nil {
			return nil, refuse("no tenant %q", r.tenant)
		}
	}
	all, err := tx.AllDevices(r.tenant)
	if err != nil {
		return nil, err
	}
	ref := r.ref
	tenant, name, scoped := strings.Cut(ref, "/")
	if !scoped {
		name = ref
	}
	var hits, gone []*store.Device
	for _, d := range all {
		id := hex.EncodeToString(d.ID[:])
		switch {
		case scoped && d.Tenant == tenant && d.Name == name,
			!scoped && d.Name == ref,
			!scoped && len(ref) >= 8 && strings.HasPrefix(id, strings.ToLower(ref)):
			if d.Removed != 0 && !r.removed {
				gone = append(gone, d)
				continue
			}
			hits = append(hits, d)
		}
	}
	switch {
	case len(hits) == 1:
		return hits[0], nil
	case len(hits) == 0 && len(gone) > 0:
		d := gone[len(gone)-1]
		return nil, refuse("device %s/%s (id %x) was removed on %s; see: devices --all", d.Tenant, d.Name, d.ID[:4],
			time.Unix(d.Removed, 0).UTC().Format(time.DateTime))
	case len(hits) == 0:
		in := ""
		if r.tenant != "" {
			in = " in tenant " + r.tenant
		}
		return nil, refuse("no device %q%s (see: devices)", ref, in)
	}
	var names []string
	for _, d := range hits {
		state := ""
		if d.Removed != 0 {
			state = ", removed"
		}
		names = append(names, fmt.Sprintf("%s/%s (id %x%s)", d.Tenant, d.Name, d.ID[:4], state))
	}
	return nil, refuse("%q names %d devices: %s; name one as TENANT/NAME or by its id", ref, len(hits), strings.Join(names, ", "))
}

// FindDevice resolves a reference to an enrolled device (see findDevice).
func (c *Console) FindDevice(ctx context.Context, ref string) (*store.Device, error) {
	var d *store.Device
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		d, err = findDevice(tx, deviceRef{ref: ref})
		return err
	})
	return d, err
}

// RemoveDevice removes a stolen, decommissioned or re-imaged device
// (SPEC.md 11.10), named by ref (name, TENANT/NAME or id prefix; tenant,
// if not empty, narrows the search). In one transaction the device is
// marked removed (its row stays for the audit trail), and a new tenant
// policy is signed whose RevokedDevices holds the device's certificate
// serial. The push machinery delivers that policy to phones (which drop
// the device from their directory and refuse it) and, as the last policy
// it will ever get, to the device's agent (which ends its sessions,
// disables its accounts and refuses logins). It returns the device as
// removed and the new policy.
func (c *Console) RemoveDevice(ctx context.Context, ref, tenant string) (*store.Device, *protocol.Policy, error) {
	if c.auth == nil {
		return nil, nil, ErrLocked
	}
	var d *store.Device
	var pol *protocol.Policy
	var rots []rotation
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = findDevice(tx, deviceRef{ref: ref, tenant: tenant}); err != nil {
			return err
		}
		now := c.unix()
		next, err := tx.PolicyVersion(d.Tenant)
		if err != nil {
			return err
		}
		// Marked first, so that the policy built below revokes it.
		if err := tx.MarkDeviceRemoved(d.ID, now, next+1); err != nil {
			return err
		}
		// The removed agent holds the tenant's offline secret.
		if rots, err = c.rotateOffline(tx, []string{d.Tenant}, RotateDeviceRemoved); err != nil {
			return err
		}
		if pol, err = c.publish(tx, d.Tenant); err != nil {
			return err
		}
		if pol.Version != next+1 || !pol.IsDeviceRevoked(d.Serial) {
			return fmt.Errorf("console: removal policy version %d does not revoke serial %d", pol.Version, d.Serial)
		}
		d, err = tx.Device(d.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.logRotations(rots)
	c.log.Warn("device removed", "device", d.Name, "tenant", d.Tenant, "device_id", fmt.Sprintf("%x", d.ID),
		"serial", d.Serial, "policy_version", pol.Version)
	return d, pol, nil
}

// ShareChange edits a device's share list.
type ShareChange struct {
	Add    []string // all-admins, all-users or usernames
	Remove []string
	Reset  bool // back to the default [all-admins, all-users]
}

// SetShare edits a device's share list ("Share device") and publishes a new
// tenant policy. A global admin always has access whatever the list says.
func (c *Console) SetShare(ctx context.Context, ref string, ch ShareChange) (*store.Device, *protocol.Policy, error) {
	if !ch.Reset && len(ch.Add) == 0 && len(ch.Remove) == 0 {
		return nil, nil, refuse("nothing to change: give --add, --remove or --reset")
	}
	if ch.Reset && (len(ch.Add) > 0 || len(ch.Remove) > 0) {
		return nil, nil, refuse("--reset cannot be combined with --add or --remove")
	}
	if c.auth == nil {
		return nil, nil, ErrLocked
	}
	var d *store.Device
	var pol *protocol.Policy
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = findDevice(tx, deviceRef{ref: ref}); err != nil {
			return err
		}
		list := slices.Clone(d.Shares)
		if ch.Reset {
			list = nil
		}
		for _, e := range ch.Remove {
			i := slices.Index(list, e)
			if i < 0 {
				return refuse("%q is not on the share list of %s (%s)", e, d.Name, strings.Join(d.Shares, ", "))
			}
			list = slices.Delete(list, i, i+1)
		}
		for _, e := range ch.Add {
			if slices.Contains(list, e) {
				return refuse("%q is already on the share list of %s", e, d.Name)
			}
			if e != protocol.ShareAllAdmins && e != protocol.ShareAllUsers {
				if err := CheckUsername(e); err != nil {
					return err
				}
				t, err := tx.TechByUsername(e)
				if err != nil || t.Removed {
					return refuse("no technician %q", e)
				}
				if t.RoleIn(d.Tenant) == "" {
					return refuse("technician %s is not delegated to tenant %s; a share list cannot grant access beyond delegation", e, d.Tenant)
				}
			}
			list = append(list, e)
		}
		if list != nil {
			slices.Sort(list)
			if slices.Equal(list, []string{protocol.ShareAllAdmins, protocol.ShareAllUsers}) {
				list = nil // the default needs no entry in the policy
			} else if len(list) == 0 {
				list = []string{} // nobody but global admins
			}
		}
		if err := tx.SetShares(d.ID, list); err != nil {
			return err
		}
		if pol, err = c.publish(tx, d.Tenant); err != nil {
			return err
		}
		d, err = tx.Device(d.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.log.Info("share list changed", "device", d.Name, "tenant", d.Tenant, "entries", d.Shares, "policy_version", pol.Version)
	return d, pol, nil
}
