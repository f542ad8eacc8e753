package console

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Bounds of enrollment tokens.
const (
	MaxTokenTTL  = 30 * 24 * time.Hour
	MaxTokenUses = 1000
)

// NewToken creates an enrollment token for a tenant, valid for ttl and
// uses enrollments, and returns its text form. The console keeps only
// values derived from the token's secret.
func (c *Console) NewToken(ctx context.Context, tenant string, ttl time.Duration, uses int) (string, *store.Token, error) {
	if ttl < time.Minute || ttl > MaxTokenTTL {
		return "", nil, refuse("token lifetime must be between 1m and %v, not %v", MaxTokenTTL, ttl)
	}
	if uses < 1 || uses > MaxTokenUses {
		return "", nil, refuse("token uses must be 1..%d, not %d", MaxTokenUses, uses)
	}
	tok := protocol.EnrollToken{
		Tenant: tenant, MSPKey: c.set.MSPKey, Console: c.Addr().String(),
		ConsoleNoise: c.peer.NoisePublic(), RelayPins: c.set.RelayPins,
		Expires: c.now().Add(ttl).Unix(),
	}
	if _, err := io.ReadFull(c.rand, tok.Secret[:]); err != nil {
		return "", nil, fmt.Errorf("console: random: %w", err)
	}
	row := &store.Token{Tenant: tenant, Expires: tok.Expires, Uses: uses, UsesLeft: uses, Created: c.unix()}
	var err error
	if row.ID, err = protocol.Derive(tok.Secret[:], protocol.LabelEnrollTokenID, nil, 16); err != nil {
		return "", nil, err
	}
	if row.Session, err = protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession); err != nil {
		return "", nil, err
	}
	if row.PSK, err = protocol.Derive(tok.Secret[:], protocol.LabelEnrollPSK, nil, 32); err != nil {
		return "", nil, err
	}
	text, err := tok.Encode()
	if err != nil {
		return "", nil, err
	}
	err = c.db.Update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Tenant(tenant); err != nil {
			return refuse("no tenant %q", tenant)
		}
		return tx.InsertToken(row)
	})
	if err != nil {
		return "", nil, err
	}
	c.log.Info("enrollment token created", "tenant", tenant, "expires", time.Unix(tok.Expires, 0).UTC(), "uses", uses)
	return text, row, nil
}

// Tokens lists enrollment tokens (derived ids only), newest first.
func (c *Console) Tokens(ctx context.Context) ([]*store.Token, error) {
	var out []*store.Token
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.Tokens()
		return err
	})
	return out, err
}

// PairingTTL is how long a pairing code is valid.
const PairingTTL = protocol.QRPairMaxAge

// NewPairing creates a single-use pairing code for a technician and returns
// the QR payload the phone scans. `serve` completes the pairing.
func (c *Console) NewPairing(ctx context.Context, username string) (protocol.QRPayload, error) {
	now := c.now()
	q := protocol.QRPayload{
		Kind: protocol.QRPair, Time: now, Static: c.peer.NoisePublic(),
		Mailbox: c.peer.Mailbox(), Relay: c.set.Relay,
	}
	if _, err := io.ReadFull(c.rand, q.Secret[:]); err != nil {
		return q, fmt.Errorf("console: random: %w", err)
	}
	p := &store.Pairing{Expires: now.Add(PairingTTL).Unix(), Created: now.Unix()}
	var err error
	if p.CodeID, err = protocol.Derive(q.Secret[:], protocol.LabelPairCodeID, nil, 16); err != nil {
		return q, err
	}
	if p.Session, err = protocol.DeriveSessionID(q.Secret[:], protocol.LabelPairSession); err != nil {
		return q, err
	}
	if p.PSK, err = protocol.Derive(q.Secret[:], protocol.LabelPairPSK, nil, 32); err != nil {
		return q, err
	}
	err = c.db.Update(ctx, func(tx *store.Tx) error {
		t, err := tx.TechByUsername(username)
		if err != nil || t.Removed {
			return refuse("no technician %q (add it with: tech add)", username)
		}
		p.TechID = t.ID
		return tx.InsertPairing(p)
	})
	if err != nil {
		return q, err
	}
	c.log.Info("pairing code created", "username", username, "expires", time.Unix(p.Expires, 0).UTC())
	return q, nil
}
