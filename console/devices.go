package console

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Devices lists enrolled devices of a tenant ("" for all).
func (c *Console) Devices(ctx context.Context, tenant string) ([]*store.Device, error) {
	var out []*store.Device
	err := c.db.View(ctx, func(tx *store.Tx) error {
		if tenant != "" {
			if _, err := tx.Tenant(tenant); err != nil {
				return refuse("no tenant %q", tenant)
			}
		}
		var err error
		out, err = tx.Devices(tenant)
		return err
	})
	return out, err
}

// findDevice resolves a device reference: its id in hex (at least 8 digits
// of it), or its name, optionally "tenant/name". Ambiguity is refused.
func findDevice(tx *store.Tx, ref string) (*store.Device, error) {
	all, err := tx.Devices("")
	if err != nil {
		return nil, err
	}
	tenant, name, scoped := strings.Cut(ref, "/")
	if !scoped {
		name = ref
	}
	var hits []*store.Device
	for _, d := range all {
		id := hex.EncodeToString(d.ID[:])
		switch {
		case scoped && d.Tenant == tenant && d.Name == name,
			!scoped && d.Name == ref,
			!scoped && len(ref) >= 8 && strings.HasPrefix(id, strings.ToLower(ref)):
			hits = append(hits, d)
		}
	}
	switch len(hits) {
	case 0:
		return nil, refuse("no device %q (see: devices)", ref)
	case 1:
		return hits[0], nil
	}
	return nil, refuse("%q names %d devices; use TENANT/NAME or the device id", ref, len(hits))
}

// FindDevice resolves a device reference (see findDevice).
func (c *Console) FindDevice(ctx context.Context, ref string) (*store.Device, error) {
	var d *store.Device
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		d, err = findDevice(tx, ref)
		return err
	})
	return d, err
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
		if d, err = findDevice(tx, ref); err != nil {
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
				if roleIn(t, d.Tenant) == "" {
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
