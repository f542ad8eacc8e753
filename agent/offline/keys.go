package offline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

// NamedKey runs inside the transaction of an approved online login (the
// QR login's Record): in a named-mode tenant it returns the technician's
// offline key on this device for LoginResult.OfflineSecret, creating and
// sealing a new one if there is none (the first login here, or the last
// one was retired after an offline use). The key goes with every online
// login, so a LoginResult lost on the way costs nothing; only that
// technician's phone, authenticated by the session, receives it.
//
// In a shared-mode tenant the technician's key derived from the tenant
// secret serves until it is used offline here; once it was, the derived
// key is retired for good on this device and NamedKey gives a per-device
// key as in named mode (the phone prefers it). Before that, it returns
// nil. The caller wipes the result after sending it.
func (v *Verifier) NamedKey(tx *store.Tx, techID string, p *protocol.Policy) ([]byte, error) {
	if p.LoginMode != protocol.ModeNamed {
		st, err := tx.OfflineState(techID)
		if err != nil {
			return nil, err
		}
		if st.SpentGeneration == 0 && st.UsedGeneration == 0 {
			return nil, nil // the derived key is still the technician's
		}
		if st.SpentGeneration != derivedRetired {
			// Spent (or about to be, at the next contact): from now on
			// a per-device key, as in named mode.
			st.SpentGeneration = derivedRetired
			if err := tx.PutOfflineState(st); err != nil {
				return nil, err
			}
		}
	}
	if k, err := tx.OfflineKey(techID); err == nil {
		key, err := v.cfg.Vault.Open(k.Sealed, namedContext(techID))
		if err == nil {
			return key, nil
		}
		// The sealing key changed (vault key file lost or replaced):
		// the stored key is unusable. An online login must not fail for
		// it; a new key replaces it, and the phone gets that one now.
		v.log.Warn("offline key does not open; replacing it", "tech_id", techID, "err", err)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	key := make([]byte, otpcode.KeySize)
	if _, err := io.ReadFull(v.cfg.Rand, key); err != nil {
		return nil, fmt.Errorf("offline: new key: %w", err)
	}
	sealed, err := v.cfg.Vault.Seal(key, namedContext(techID))
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("offline: seal key: %w", err)
	}
	if err := tx.PutOfflineKey(store.OfflineKey{TechID: techID, Sealed: sealed, Created: v.cfg.Now()}); err != nil {
		clear(key)
		return nil, err
	}
	return key, nil
}

// SetTenantSecret stores the shared-mode tenant secret the console sent
// (enrollment, policy push or audit acknowledgement), sealed, if its
// generation is newer than the one held. It reports whether it did.
func (v *Verifier) SetTenantSecret(ctx context.Context, tenant string, secrets []protocol.TenantSecret) (bool, error) {
	stored, err := StoreTenantSecret(ctx, v.cfg.Store, v.cfg.Vault, tenant, secrets)
	if stored {
		v.log.Info("shared offline secret updated", "generation", v.Generation(ctx))
	}
	return stored, err
}

// StoreTenantSecret is SetTenantSecret for a caller without a Verifier
// (enrollment).
func StoreTenantSecret(ctx context.Context, st *store.Store, sealer vault.Sealer, tenant string, secrets []protocol.TenantSecret) (bool, error) {
	for _, s := range secrets {
		if s.Tenant != tenant || len(s.Secret) != 32 || s.Generation == 0 {
			continue
		}
		sealed, err := sealer.Seal(s.Secret, sharedContext(tenant))
		if err != nil {
			return false, fmt.Errorf("offline: seal tenant secret: %w", err)
		}
		stored := false
		err = st.Update(ctx, func(tx *store.Tx) error {
			cur, err := tx.OfflineSecret()
			if err == nil && cur.Generation >= s.Generation {
				return nil
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			stored = true
			return tx.SetOfflineSecret(store.OfflineSecret{Sealed: sealed, Generation: s.Generation})
		})
		if err != nil {
			return false, fmt.Errorf("offline: store tenant secret: %w", err)
		}
		return stored, nil
	}
	return false, nil
}

// Generation returns the generation of the tenant secret held (0: none),
// for AuditBatch.OfflineGeneration.
func (v *Verifier) Generation(ctx context.Context) uint64 {
	var g uint64
	_ = v.cfg.Store.View(ctx, func(tx *store.Tx) error {
		s, err := tx.OfflineSecret()
		g = s.Generation
		return err
	})
	return g
}

// Contact records that the agent heard from the console just now (an
// audit acknowledgement or a policy push): the offline allowance starts
// again, and every key used for an offline login since the last contact
// is retired, recorded as offline.key.replaced. The journal of those
// logins is the audit trail, which the shipper has just delivered.
// The key is deleted (named mode, or a shared-mode per-device key); the
// technician's next online login here gives the phone a new one. A
// shared-mode derived key that was used is refused from then on for the
// technician on this device, and the next online login here gives a
// per-device key instead (NamedKey). The console need not rotate the
// tenant secret, so no other computer's codes change.
func (v *Verifier) Contact(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.update(ctx, func(tx *store.Tx) error {
		if err := tx.SetContact(store.Contact{Last: v.cfg.Now().UnixMilli()}); err != nil {
			return err
		}
		used, err := tx.UsedOffline()
		if err != nil {
			return err
		}
		for _, st := range used {
			if err := tx.DeleteOfflineKey(st.TechID); err != nil {
				return err
			}
			st.UsedOffline = false
			if st.SpentGeneration != derivedRetired {
				st.SpentGeneration = max(st.SpentGeneration, st.UsedGeneration)
			}
			st.UsedGeneration = 0
			if err := tx.PutOfflineState(st); err != nil {
				return err
			}
			rec := protocol.AuditRecord{Event: audit.OfflineKeyReplaced, TechID: st.TechID, Method: protocol.MethodOTP,
				Detail: "the offline key used while offline was retired on contact with the console"}
			if err := v.cfg.Audit.Append(tx, rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("offline: record contact: %w", err)
	}
	return nil
}
