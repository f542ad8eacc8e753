package console

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// AddTech adds a technician: a global admin, or per-tenant grants
// (admin / read-only). Roles are written into the certificate at pairing;
// to change them, remove the technician and add it again.
func (c *Console) AddTech(ctx context.Context, username, email string, globalAdmin bool, grants []protocol.Grant) (*store.Tech, error) {
	if err := CheckUsername(username); err != nil {
		return nil, err
	}
	if err := CheckEmail(email); err != nil {
		return nil, err
	}
	if globalAdmin && len(grants) > 0 {
		return nil, refuse("a global admin has every tenant; give either --global-admin or --role, not both")
	}
	if !globalAdmin && len(grants) == 0 {
		return nil, refuse("give --global-admin or at least one --role TENANT=admin|read-only")
	}
	seen := map[string]bool{}
	for _, g := range grants {
		if g.Role != protocol.RoleAdmin && g.Role != protocol.RoleReadOnly {
			return nil, refuse("role %q in tenant %s must be admin or read-only", g.Role, g.Tenant)
		}
		if seen[g.Tenant] {
			return nil, refuse("tenant %s is given twice", g.Tenant)
		}
		seen[g.Tenant] = true
	}
	grants = slices.Clone(grants)
	slices.SortFunc(grants, func(a, b protocol.Grant) int { return strings.Compare(a.Tenant, b.Tenant) })
	var idb [8]byte
	if _, err := io.ReadFull(c.rand, idb[:]); err != nil {
		return nil, fmt.Errorf("console: random: %w", err)
	}
	t := &store.Tech{
		ID: "t-" + hex.EncodeToString(idb[:]), Username: username, Email: email,
		GlobalAdmin: globalAdmin, Grants: grants, Created: c.unix(),
	}
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		if old, err := tx.TechByUsername(username); err == nil {
			if old.Removed {
				return refuse("username %s belonged to a removed technician; usernames are never reused (audit names them)", username)
			}
			return refuse("technician %s already exists", username)
		}
		for _, g := range grants {
			if _, err := tx.Tenant(g.Tenant); err != nil {
				return refuse("no tenant %q", g.Tenant)
			}
		}
		return tx.InsertTech(t)
	})
	if err != nil {
		return nil, err
	}
	c.log.Info("technician added", "username", username, "tech_id", t.ID, "global_admin", globalAdmin)
	return t, nil
}

// TechInfo is a technician with its certificates.
type TechInfo struct {
	*store.Tech
	Certs []*store.TechCert
}

// Phone describes the technician's newest phone certificate at Unix
// seconds now: "not paired", "serial N revoked", "serial N expired", or
// "[LABEL, ]serial N until YYYY-MM-DD".
func (t TechInfo) Phone(now int64) string {
	if len(t.Certs) == 0 {
		return "not paired"
	}
	c := t.Certs[len(t.Certs)-1]
	switch {
	case c.Revoked:
		return fmt.Sprintf("serial %d revoked", c.Serial)
	case c.NotAfter < now:
		return fmt.Sprintf("serial %d expired", c.Serial)
	}
	label := ""
	if c.Label != "" {
		label = c.Label + ", "
	}
	return fmt.Sprintf("%sserial %d until %s", label, c.Serial, time.Unix(c.NotAfter, 0).UTC().Format("2006-01-02"))
}

// Techs lists the technicians with their certificates.
func (c *Console) Techs(ctx context.Context) ([]TechInfo, error) {
	var out []TechInfo
	err := c.db.View(ctx, func(tx *store.Tx) error {
		ts, err := tx.Techs()
		if err != nil {
			return err
		}
		for _, t := range ts {
			cs, err := tx.TechCerts(t.ID)
			if err != nil {
				return err
			}
			out = append(out, TechInfo{Tech: t, Certs: cs})
		}
		return nil
	})
	return out, err
}

// affectedTenants are the tenants whose policies name a technician.
func affectedTenants(tx *store.Tx, t *store.Tech) ([]string, error) {
	if !t.GlobalAdmin {
		var out []string
		for _, g := range t.Grants {
			out = append(out, g.Tenant)
		}
		return out, nil
	}
	tns, err := tx.Tenants()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, tn := range tns {
		out = append(out, tn.Name)
	}
	return out, nil
}

// revokeCerts revokes a technician's unrevoked certificates inside tx; the
// caller publishes the affected tenants' policies.
func revokeCerts(tx *store.Tx, t *store.Tech) ([]uint64, error) {
	cs, err := tx.TechCerts(t.ID)
	if err != nil {
		return nil, err
	}
	var serials []uint64
	for _, cert := range cs {
		if !cert.Revoked {
			if err := tx.RevokeTechCert(cert.Serial); err != nil {
				return nil, err
			}
			serials = append(serials, cert.Serial)
		}
	}
	return serials, nil
}

func (c *Console) publishAll(tx *store.Tx, tenants []string) ([]*protocol.Policy, error) {
	var out []*protocol.Policy
	for _, tn := range tenants {
		p, err := c.publish(tx, tn)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// RevokeTech revokes a technician's phone certificates: their serials go
// into every affected tenant policy (new versions). The technician stays
// and can pair a new phone.
func (c *Console) RevokeTech(ctx context.Context, username string) ([]uint64, []*protocol.Policy, error) {
	return c.dropTech(ctx, username, false)
}

// RemoveTech revokes a technician's certificates and marks it removed. The
// username is never reused, so old audit records stay unambiguous.
func (c *Console) RemoveTech(ctx context.Context, username string) ([]uint64, []*protocol.Policy, error) {
	return c.dropTech(ctx, username, true)
}

// dropTech revokes a technician's certificates, publishing new policies
// for the tenants they appear in, and with remove marks it removed. A
// revocation with no phone to revoke is refused.
func (c *Console) dropTech(ctx context.Context, username string, remove bool) ([]uint64, []*protocol.Policy, error) {
	if c.auth == nil {
		return nil, nil, ErrLocked
	}
	var serials []uint64
	var pols []*protocol.Policy
	var rots []rotation
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		t, err := tx.TechByUsername(username)
		if err != nil || t.Removed {
			return refuse("no technician %q", username)
		}
		if serials, err = revokeCerts(tx, t); err != nil {
			return err
		}
		reason := RotateTechRevoked
		if remove {
			reason = RotateTechRemoved
			if err := tx.MarkTechRemoved(t.ID); err != nil {
				return err
			}
		} else if len(serials) == 0 {
			return refuse("technician %s has no paired phone to revoke", username)
		}
		tenants, err := affectedTenants(tx, t)
		if err != nil {
			return err
		}
		// The technician's offline keys of shared-mode tenants die with
		// the delegation (SPEC.md 11.6).
		if rots, err = c.rotateOffline(tx, tenants, reason); err != nil {
			return err
		}
		if len(serials) == 0 {
			// No roster changed; the rotated tenants still need a new
			// version to carry the new secret to their agents.
			tenants = rotatedTenants(rots)
		}
		pols, err = c.publishAll(tx, tenants)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.logRotations(rots)
	msg := "technician revoked"
	if remove {
		msg = "technician removed"
	}
	c.log.Warn(msg, "username", username, "serials", serials)
	return serials, pols, nil
}
