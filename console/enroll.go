package console

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// EnrollPSK returns the PSK of the enrollment token with that session id,
// also when the token is expired or used up, so that the agent gets a clear
// answer rather than silence.
func (c *Console) EnrollPSK(ctx context.Context, session protocol.SessionID) ([]byte, error) {
	var psk []byte
	err := c.db.View(ctx, func(tx *store.Tx) error {
		k, err := tx.TokenBySession(session)
		if err != nil {
			return err
		}
		psk = k.PSK
		return nil
	})
	return psk, err
}

// PeerInfo is what the channel established about a peer.
type PeerInfo struct {
	Session       protocol.SessionID
	From          protocol.PeerAddr // relay-authenticated sender
	NoiseKey      protocol.NoiseKey // the handshake's peer static key
	HandshakeHash []byte
}

// Enroll completes an agent enrollment: it checks the request's proofs and
// the token (expiry, uses), and in one transaction consumes a use, records
// the device and signs its certificate. It returns ErrExpired or ErrRefused
// (wrapped with the local reason) on failure.
func (c *Console) Enroll(ctx context.Context, pi PeerInfo, req *protocol.EnrollRequest) (*protocol.EnrollResponse, *store.Device, error) {
	if c.auth == nil {
		return nil, nil, ErrLocked
	}
	switch {
	case !req.IdentityKey.Verify(protocol.ProofInput("identity", pi.HandshakeHash), req.IdentitySig):
		return nil, nil, fmt.Errorf("%w: identity proof does not verify", ErrRefused)
	case protocol.MailboxFor(req.IdentityKey.Public()) != pi.From.Mailbox:
		return nil, nil, fmt.Errorf("%w: identity key does not own the sending mailbox", ErrRefused)
	case !checkDeviceName(req.Name):
		return nil, nil, fmt.Errorf("%w: device name %q", ErrRefused, req.Name)
	case !checkOS(req.OS):
		return nil, nil, fmt.Errorf("%w: os %q", ErrRefused, req.OS)
	case protocol.CheckRelayAddr(req.Relay) != nil:
		return nil, nil, fmt.Errorf("%w: relay %q", ErrRefused, req.Relay)
	case pi.NoiseKey.Check() != nil:
		return nil, nil, fmt.Errorf("%w: noise key", ErrRefused)
	}
	now := c.now()
	var resp protocol.EnrollResponse
	var dev *store.Device
	err := c.db.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.TokenBySession(pi.Session)
		if err != nil {
			return fmt.Errorf("%w: unknown token", ErrRefused)
		}
		if now.Unix() > k.Expires {
			return fmt.Errorf("%w: token expired at %s", ErrExpired, time.Unix(k.Expires, 0).UTC().Format(time.RFC3339))
		}
		if k.UsesLeft <= 0 {
			return fmt.Errorf("%w: token used %d of %d times", ErrExpired, k.Uses, k.Uses)
		}
		if err := tx.UseToken(k.ID); err != nil {
			return fmt.Errorf("%w: %v", ErrExpired, err)
		}
		if d, err := tx.DeviceByMailbox(pi.From.Mailbox); err == nil {
			if d.Removed != 0 {
				// SPEC.md 11.10: a removed device enrolls again only as
				// a new one, with new keys.
				return fmt.Errorf("%w: identity key of removed device %s/%s (enroll with a fresh agent state)", ErrRefused, d.Tenant, d.Name)
			}
			return fmt.Errorf("%w: identity key already enrolled", ErrRefused)
		}
		serial, err := tx.NewSerial("device", now.Unix())
		if err != nil {
			return err
		}
		dc := protocol.DeviceCert{
			Serial: serial, Name: req.Name, Tenant: k.Tenant, OS: req.OS,
			DomainJoined: req.DomainJoined, DC: req.DC, NoiseKey: pi.NoiseKey,
			IdentityKey: req.IdentityKey, Relay: req.Relay,
			NotBefore: now.Unix(), NotAfter: now.Add(DeviceCertValidity).Unix(),
		}
		if _, err := io.ReadFull(c.rand, dc.DeviceID[:]); err != nil {
			return fmt.Errorf("console: random: %w", err)
		}
		signed, err := c.auth.SignDeviceCert(&dc)
		if err != nil {
			return err
		}
		dev = &store.Device{
			ID: dc.DeviceID, Tenant: dc.Tenant, Name: dc.Name, OS: dc.OS, DomainJoined: dc.DomainJoined,
			DC: dc.DC, Serial: serial, Cert: signed, NoiseKey: dc.NoiseKey, IdentityKey: dc.IdentityKey,
			Mailbox: pi.From.Mailbox, Relay: dc.Relay, Enrolled: now.Unix(), LastSeen: now.Unix(),
		}
		if err := tx.InsertDevice(dev); err != nil {
			return err
		}
		pol, err := tx.LatestPolicy(k.Tenant)
		if err != nil {
			return err
		}
		if err := tx.SetDeviceAck(dev.ID, pol.Version, now.Unix()); err != nil {
			return err
		}
		dev.AckedVersion = pol.Version
		resp = protocol.EnrollResponse{DeviceCert: signed, Policy: pol.Signed}
		resp.OfflineSecrets, err = tenantAgentSecrets(tx, dev)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.log.Info("device enrolled", "device", dev.Name, "tenant", dev.Tenant, "device_id", fmt.Sprintf("%x", dev.ID), "os", dev.OS)
	return &resp, dev, nil
}
