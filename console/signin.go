package console

import (
	"context"
	"fmt"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Web console roles (SPEC.md 11.12), from a technician's delegation.
const (
	// WebGlobal: a global admin; sees and changes everything.
	WebGlobal = "global-admin"
	// WebTenantAdmin: admin in at least one tenant; sees its tenants and
	// changes those it is admin of.
	WebTenantAdmin = "tenant-admin"
	// WebReadOnly: only read-only grants; sees its tenants, changes
	// nothing.
	WebReadOnly = "read-only"
)

// Admin is a technician signed in to the web console, as the store holds
// it now: its record and the serial of the phone certificate it signed in
// with.
type Admin struct {
	Tech   *store.Tech
	Serial uint64
	Cert   protocol.TechCert // the verified certificate
}

// Role returns the technician's web console role.
func (a *Admin) Role() string {
	if a.Tech.GlobalAdmin {
		return WebGlobal
	}
	for _, g := range a.Tech.Grants {
		if g.Role == protocol.RoleAdmin {
			return WebTenantAdmin
		}
	}
	return WebReadOnly
}

// MaySee reports whether the technician may see a tenant.
func (a *Admin) MaySee(tenant string) bool { return a.Tech.RoleIn(tenant) != "" }

// MayChange reports whether the technician may change a tenant (its
// settings, devices, share lists, tokens).
func (a *Admin) MayChange(tenant string) bool {
	r := a.Tech.RoleIn(tenant)
	return r == protocol.RoleGlobalAdmin || r == protocol.RoleAdmin
}

// SignInCert checks the technician certificate a phone presents to sign
// in to the web console (SPEC.md 11.12 step 3): signed by the MSP key,
// valid now, its NoiseKey the session's peer static key, the technician's
// current unrevoked certificate, the technician not removed. Every
// failure is ErrRefused; the detail is for the local log.
func (c *Console) SignInCert(ctx context.Context, cert protocol.Signed, peer protocol.NoiseKey) (*Admin, error) {
	var tc protocol.TechCert
	if err := cert.VerifyEd25519(protocol.DocTechCert, c.set.MSPKey, &tc); err != nil {
		return nil, fmt.Errorf("%w: technician certificate: %v", ErrRefused, err)
	}
	if err := tc.Valid(c.now()); err != nil {
		return nil, fmt.Errorf("%w: technician certificate: %v", ErrRefused, err)
	}
	if tc.NoiseKey != peer {
		return nil, fmt.Errorf("%w: certificate names another Noise key than the session's", ErrRefused)
	}
	a, err := c.SignedIn(ctx, tc.TechID, tc.Serial)
	if err != nil {
		return nil, err
	}
	a.Cert = tc
	return a, nil
}

// SignedIn re-reads a signed-in technician: it fails (ErrRefused) once
// the certificate it signed in with is revoked or expired, or the
// technician is removed. The web console calls it on every request.
func (c *Console) SignedIn(ctx context.Context, techID string, serial uint64) (*Admin, error) {
	var a Admin
	err := c.db.View(ctx, func(tx *store.Tx) error {
		t, err := tx.TechByID(techID)
		if err != nil || t.Removed {
			return fmt.Errorf("%w: technician %s unknown or removed", ErrRefused, techID)
		}
		certs, err := tx.TechCerts(techID)
		if err != nil {
			return err
		}
		for _, cert := range certs {
			if cert.Serial == serial && !cert.Revoked && cert.NotAfter >= c.unix() {
				a.Tech, a.Serial = t, serial
				return nil
			}
		}
		return fmt.Errorf("%w: certificate %d of %s revoked, expired or not its own", ErrRefused, serial, t.Username)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}
