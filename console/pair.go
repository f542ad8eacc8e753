package console

import (
	"context"
	"fmt"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// PairPSK returns the PSK of the pairing code with that session id (also
// when used or expired, so the phone gets a clear answer).
func (c *Console) PairPSK(ctx context.Context, session protocol.SessionID) ([]byte, error) {
	var psk []byte
	err := c.db.View(ctx, func(tx *store.Tx) error {
		p, err := tx.PairingBySession(session)
		if err != nil {
			return err
		}
		psk = p.PSK
		return nil
	})
	return psk, err
}

// Pair completes a phone pairing: it checks both possession proofs and the
// code (unused, fresh), and in one transaction uses the code, revokes the
// technician's previous phone, signs the new technician certificate and
// publishes new policies (roster) for the tenants the technician is in.
// The phone's view comes as the pages of one transfer (SPEC.md 8.3): resp
// carries no documents of its own; protocol.SendTransfer(ctx, conn, resp,
// pages) sends page 0 inside it and the others after it.
func (c *Console) Pair(ctx context.Context, pi PeerInfo, req *protocol.PairRequest) (resp *protocol.PairResponse, pages []protocol.PolicyPush, tc *protocol.TechCert, err error) {
	if c.auth == nil {
		return nil, nil, nil, ErrLocked
	}
	switch {
	case !req.IdentityKey.Verify(protocol.ProofInput("identity", pi.HandshakeHash), req.IdentitySig):
		return nil, nil, nil, fmt.Errorf("%w: identity proof does not verify", ErrRefused)
	case !req.ApprovalKey.Verify(protocol.ProofInput("approval", pi.HandshakeHash), req.ApprovalSig):
		return nil, nil, nil, fmt.Errorf("%w: approval key proof does not verify", ErrRefused)
	case protocol.MailboxFor(req.IdentityKey.Public()) != pi.From.Mailbox:
		return nil, nil, nil, fmt.Errorf("%w: identity key does not own the sending mailbox", ErrRefused)
	case protocol.CheckRelayAddr(req.Relay) != nil:
		return nil, nil, nil, fmt.Errorf("%w: relay %q", ErrRefused, req.Relay)
	case len(req.Label) > protocol.MaxNameLen || !printable(req.Label):
		return nil, nil, nil, fmt.Errorf("%w: phone label", ErrRefused)
	case pi.NoiseKey.Check() != nil:
		return nil, nil, nil, fmt.Errorf("%w: noise key", ErrRefused)
	}
	now := c.now()
	tc = new(protocol.TechCert)
	var revoked []uint64
	var rots []rotation
	err = c.db.Update(ctx, func(tx *store.Tx) error {
		p, err := tx.PairingBySession(pi.Session)
		if err != nil {
			return fmt.Errorf("%w: unknown pairing code", ErrRefused)
		}
		if p.Used || now.Unix() > p.Expires {
			return fmt.Errorf("%w: pairing code used or expired", ErrExpired)
		}
		if err := tx.UsePairing(p.CodeID); err != nil {
			return fmt.Errorf("%w: %v", ErrExpired, err)
		}
		t, err := tx.TechByID(p.TechID)
		if err != nil || t.Removed {
			return fmt.Errorf("%w: technician removed", ErrRefused)
		}
		serial, err := tx.NewSerial("tech", now.Unix())
		if err != nil {
			return err
		}
		*tc = protocol.TechCert{
			Serial: serial, TechID: t.ID, Username: t.Username, Email: t.Email,
			NoiseKey: pi.NoiseKey, IdentityKey: req.IdentityKey, ApprovalKey: req.ApprovalKey,
			Relay: req.Relay, NotBefore: now.Unix(), NotAfter: now.Add(TechCertValidity).Unix(),
		}
		if t.GlobalAdmin {
			tc.Grants = []protocol.Grant{{Role: protocol.RoleGlobalAdmin}}
		} else {
			tc.Grants = t.Grants
		}
		signed, err := c.auth.SignTechCert(tc)
		if err != nil {
			return err
		}
		// One phone per technician: pairing a new one revokes the old.
		if revoked, err = revokeCerts(tx, t); err != nil {
			return err
		}
		tenants, err := affectedTenants(tx, t)
		if err != nil {
			return err
		}
		if len(revoked) > 0 {
			// The previous phone holds the technician's offline keys:
			// rotate, so that only the new one computes codes.
			if rots, err = c.rotateOffline(tx, tenants, RotateTechRepaired); err != nil {
				return err
			}
		}
		err = tx.InsertTechCert(&store.TechCert{
			Serial: serial, TechID: t.ID, Cert: signed, Mailbox: pi.From.Mailbox, NoiseKey: pi.NoiseKey,
			Label: req.Label, NotAfter: tc.NotAfter, Created: now.Unix(),
		})
		if err != nil {
			return err
		}
		if _, err := c.publishAll(tx, tenants); err != nil {
			return err
		}
		view, err := c.phoneView(tx, tc, true)
		if err != nil {
			return err
		}
		if pages, err = view.Pages(); err != nil {
			return err
		}
		for _, tv := range view.Versions {
			if err := tx.SetPhoneAck(serial, tv.Tenant, tv.Version); err != nil {
				return err
			}
		}
		resp = &protocol.PairResponse{
			TechCert: signed, MSPKey: c.set.MSPKey, Org: c.set.Org, ConsoleNoise: c.peer.NoisePublic(),
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	c.logRotations(rots)
	c.log.Info("phone paired", "username", tc.Username, "serial", tc.Serial, "revoked_previous", revoked, "pages", len(pages))
	return resp, pages, tc, nil
}

// PhoneView is what a technician's phone holds: the policies of the tenants
// it may see, their device certificates, and, for shared-mode tenants, the
// technician's own offline key (never the tenant secret).
type PhoneView struct {
	Policies  []protocol.Signed
	Versions  []protocol.TenantVersion
	Directory []protocol.Signed
	Secrets   []protocol.TenantSecret
}

// Pages cuts the view into the pages of one transfer (SPEC.md 8.3).
func (v *PhoneView) Pages() ([]protocol.PolicyPush, error) {
	pages, err := protocol.Paginate(v.Policies, v.Directory, v.Secrets, 0)
	if err != nil {
		return nil, fmt.Errorf("console: phone view: %w", err)
	}
	return pages, nil
}

// phoneView returns the technician's view; with docs false only Versions,
// which is cheap enough to compute for every phone at every push round.
func (c *Console) phoneView(tx *store.Tx, tc *protocol.TechCert, docs bool) (*PhoneView, error) {
	tns, err := tx.Tenants()
	if err != nil {
		return nil, err
	}
	v := &PhoneView{Policies: []protocol.Signed{}, Directory: []protocol.Signed{}, Secrets: []protocol.TenantSecret{}}
	for _, tn := range tns {
		if tc.RoleIn(tn.Name) == "" {
			continue
		}
		if !docs {
			version, err := tx.PolicyVersion(tn.Name)
			if err != nil {
				return nil, err
			}
			v.Versions = append(v.Versions, protocol.TenantVersion{Tenant: tn.Name, Version: version})
			continue
		}
		pol, err := tx.LatestPolicy(tn.Name)
		if err != nil {
			return nil, err
		}
		v.Policies = append(v.Policies, pol.Signed)
		v.Versions = append(v.Versions, protocol.TenantVersion{Tenant: tn.Name, Version: pol.Version})
		devs, err := tx.Devices(tn.Name)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			v.Directory = append(v.Directory, d.Cert)
		}
		if tn.LoginMode == protocol.ModeShared {
			// The phone gets its technician's key only, never the tenant
			// secret: no phone can compute another technician's codes
			// (SPEC.md 11.6).
			key, err := techKey(tn, tc.TechID)
			if err != nil {
				return nil, err
			}
			v.Secrets = append(v.Secrets, key)
		}
	}
	return v, nil
}
