package console

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// AlarmBreakGlassUsed: an agent reports that its break-glass recovery
// code was used (audit event breakglass.used, SPEC.md 11.15).
const AlarmBreakGlassUsed = "breakglass-used"

// escrowAEAD returns the AEAD that seals escrowed recovery codes at rest:
// XChaCha20-Poly1305 under Derive(console identity seed,
// LabelRecoveryEscrowKey, "", 32). The key lives with the console's peer
// keys, not in the database, so a copy of the database alone reveals no
// code.
func (c *Console) escrowAEAD() (cipher.AEAD, error) {
	if c.peer == nil {
		return nil, errors.New("console: no peer key to seal recovery codes")
	}
	k, err := protocol.Derive(c.peer.Identity.Seed(), protocol.LabelRecoveryEscrowKey, nil, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return chacha20poly1305.NewX(k)
}

// escrowAD binds a sealed code to its device and generation.
func escrowAD(id protocol.DeviceID, generation uint64) []byte {
	ad := append([]byte("jitkey/v1/breakglass/escrow\x00"), id[:]...)
	return binary.BigEndian.AppendUint64(ad, generation)
}

// EscrowRecovery stores the recovery code a device's agent sends in its
// FlowAudit session (SPEC.md 11.15, R-68), sealed, and returns the
// acknowledgement. The sender is the device whose mailbox the session
// authenticated; a removed device's code is refused. A generation at or
// below one stored is acknowledged without change.
func (c *Console) EscrowRecovery(ctx context.Context, from protocol.MailboxID, e *protocol.RecoveryEscrow) (*protocol.RecoveryAck, *store.Device, error) {
	if err := e.Check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	aead, err := c.escrowAEAD()
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(c.rand, nonce); err != nil {
		return nil, nil, fmt.Errorf("console: escrow nonce: %w", err)
	}
	var dev *store.Device
	err = c.db.Update(ctx, func(tx *store.Tx) error {
		d, err := tx.DeviceByMailbox(from)
		if err != nil {
			return fmt.Errorf("%w: unknown device", ErrRefused)
		}
		if d.Removed != 0 {
			return fmt.Errorf("%w: device removed", ErrRefused)
		}
		dev = d
		if cur, err := tx.LatestRecoveryCode(d.ID); err == nil && cur.Generation >= e.Generation {
			return nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		sealed := aead.Seal(append([]byte(nil), nonce...), nonce, e.Code[:], escrowAD(d.ID, e.Generation))
		return tx.PutRecoveryCode(&store.RecoveryCode{DeviceID: d.ID, Generation: e.Generation, Sealed: sealed, Received: c.now().Unix()})
	})
	if err != nil {
		return nil, dev, err
	}
	c.log.Info("break-glass recovery code escrowed", "device", dev.Name, "tenant", dev.Tenant, "generation", e.Generation)
	return &protocol.RecoveryAck{Generation: e.Generation}, dev, nil
}

// Recovery is a revealed recovery code.
type Recovery struct {
	Device     *store.Device
	Generation uint64
	Code       protocol.RecoveryCode
	Received   int64 // Unix seconds
	// Used: the agent reported this generation used (Unix seconds the
	// report arrived); the next code arrives when the agent is back in
	// contact.
	Used    int64
	Reveals []store.RecoveryReveal // earlier reveals, then this one
}

// RevealRecovery returns the current recovery code of the device ref
// names, for the administrator admin to read to the person at the
// computer, and records the reveal (who, when) in the same transaction:
// no code is shown that is not recorded (SPEC.md 11.15).
func (c *Console) RevealRecovery(ctx context.Context, ref, admin string) (*Recovery, error) {
	if admin == "" || len(admin) > protocol.MaxNameLen || !printable(admin) {
		return nil, refuse("administrator name must be 1..%d printable characters", protocol.MaxNameLen)
	}
	aead, err := c.escrowAEAD()
	if err != nil {
		return nil, err
	}
	var out Recovery
	err = c.db.Update(ctx, func(tx *store.Tx) error {
		d, err := findDevice(tx, deviceRef{ref: ref})
		if err != nil {
			return err
		}
		out.Device = d
		rc, err := tx.LatestRecoveryCode(d.ID)
		if errors.Is(err, store.ErrNotFound) {
			return refuse("device %s/%s has not escrowed a recovery code yet (its agent sends one at its first contact)", d.Tenant, d.Name)
		}
		if err != nil {
			return err
		}
		ns := aead.NonceSize()
		if len(rc.Sealed) < ns {
			return errors.New("console: sealed recovery code damaged")
		}
		pt, err := aead.Open(nil, rc.Sealed[:ns], rc.Sealed[ns:], escrowAD(d.ID, rc.Generation))
		if err != nil || len(pt) != len(out.Code) {
			return errors.New("console: sealed recovery code does not open (damaged, or sealed by another console key)")
		}
		copy(out.Code[:], pt)
		clear(pt)
		out.Generation, out.Received, out.Used = rc.Generation, rc.Received, rc.Used
		if err := tx.InsertRecoveryReveal(&store.RecoveryReveal{DeviceID: d.ID, Generation: rc.Generation, Admin: admin, Time: c.now().Unix()}); err != nil {
			return err
		}
		out.Reveals, err = tx.RecoveryReveals(d.ID)
		return err
	})
	if err != nil {
		clear(out.Code[:]) // opened, but the reveal is not recorded
		return nil, err
	}
	c.log.Warn("BREAK-GLASS recovery code revealed", "device", out.Device.Name, "tenant", out.Device.Tenant,
		"generation", out.Generation, "admin", admin)
	return &out, nil
}

// breakGlassUsed raises AlarmBreakGlassUsed for a stored breakglass.used
// record and marks the generation it names used.
func (c *Console) breakGlassUsed(tx *store.Tx, d *store.Device, r *protocol.AuditRecord, now int64) error {
	a := &store.Alarm{DeviceID: d.ID, Seq: r.Seq, Kind: AlarmBreakGlassUsed, Time: now, Tenant: d.Tenant, DeviceName: d.Name,
		Detail: fmt.Sprintf("the break-glass recovery code of %s was used for account %s (%s)", d.Name, r.Account, r.Detail)}
	if err := tx.InsertAlarm(a); err != nil {
		return err
	}
	if gen, ok := protocol.ParseBreakGlassUsedDetail(r.Detail); ok {
		if err := tx.MarkRecoveryCodeUsed(d.ID, gen, now); err != nil {
			return err
		}
	} else {
		// The alarm stands; only the escrowed copy cannot be marked.
		c.log.Warn("breakglass.used names no generation; escrowed code not marked used", "device", d.Name, "seq", r.Seq)
	}
	c.log.Error("BREAK-GLASS RECOVERY CODE USED", "tenant", d.Tenant, "device", d.Name, "account", r.Account, "seq", r.Seq)
	return nil
}
