// Package policy verifies and applies the tenant policy the agent decides
// with: signed by the MSP key pinned at enrollment, of the device's tenant,
// internally consistent, and of a version strictly higher than the one
// held ("a policy version that goes backwards is refused"). Applying a
// policy and recording policy.applied (or policy.rejected and why) happen
// in one store transaction.
package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// Errors of Apply. Each is wrapped in ErrRejected.
var (
	ErrRejected = errors.New("policy: rejected")
	ErrNotNewer = errors.New("policy: version not higher than the one held")
	ErrNoPolicy = errors.New("policy: no policy held")
)

// Verify checks the signature by msp, the tenant and the policy's
// consistency, and returns the decoded policy.
func Verify(s protocol.Signed, msp protocol.IdentityKey, tenant string) (protocol.Policy, error) {
	var p protocol.Policy
	if err := s.VerifyEd25519(protocol.DocPolicy, msp, &p); err != nil {
		return p, err
	}
	if p.Tenant != tenant {
		return p, protocol.ErrWrongTenant
	}
	if err := p.Check(); err != nil {
		return p, err
	}
	return p, nil
}

// Current returns the policy held for the enrolled tenant.
func Current(tx *store.Tx) (protocol.Policy, protocol.Signed, error) {
	e, err := tx.Enrollment()
	if err != nil {
		return protocol.Policy{}, protocol.Signed{}, err
	}
	row, err := tx.Policy(e.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.Policy{}, protocol.Signed{}, ErrNoPolicy
	}
	if err != nil {
		return protocol.Policy{}, protocol.Signed{}, err
	}
	s, err := protocol.DecodeSigned(row.Signed)
	if err != nil {
		return protocol.Policy{}, s, err
	}
	// Re-verify: the store is trusted for integrity, but the check is cheap
	// and catches a pinned-key mix-up.
	p, err := Verify(s, e.MSPKey, e.Tenant)
	return p, s, err
}

// Apply verifies s and, if it is newer than the policy held, stores it.
// Acceptance and rejection are both audited in the same transaction.
// Rejections return an error wrapping ErrRejected. A policy that revokes
// the agent's own device certificate is applied, and the removal is
// recorded with it (store.Removal, audit device.removed); the caller then
// locks the device down (lifecycle.Manager.Retire).
func Apply(ctx context.Context, st *store.Store, rec *audit.Recorder, s protocol.Signed, now time.Time) (protocol.Policy, error) {
	var p protocol.Policy
	var rejected error
	err := st.Update(ctx, func(tx *store.Tx) error {
		rejected = nil
		e, err := tx.Enrollment()
		if err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		reason := ""
		p, err = Verify(s, e.MSPKey, e.Tenant)
		if err != nil {
			reason = err.Error()
		} else if held, herr := tx.Policy(e.Tenant); herr == nil && p.Version <= held.Version {
			err = fmt.Errorf("%w: %d <= %d", ErrNotNewer, p.Version, held.Version)
			reason = err.Error()
		} else if herr != nil && !errors.Is(herr, store.ErrNotFound) {
			return herr
		}
		if reason != "" {
			rejected = fmt.Errorf("%w: %w", ErrRejected, err)
			return rec.Append(tx, protocol.AuditRecord{Event: audit.PolicyRejected, Reason: reason, Detail: fmt.Sprintf("version %d", p.Version)})
		}
		body, err := s.Encode()
		if err != nil {
			return err
		}
		if err := tx.PutPolicy(store.PolicyRow{Tenant: p.Tenant, Version: p.Version, Signed: body, Applied: now}); err != nil {
			return err
		}
		if err := rec.Append(tx, protocol.AuditRecord{Event: audit.PolicyApplied, Detail: fmt.Sprintf("version %d", p.Version)}); err != nil {
			return err
		}
		return recordRemoval(tx, rec, e, &p, now)
	})
	if err != nil {
		return p, fmt.Errorf("policy: apply: %w", err)
	}
	return p, rejected
}

// recordRemoval records, inside the transaction applying p, that p
// revokes the agent's own device certificate (SPEC.md 11.10), unless a
// removal is already recorded. A removal is never undone.
func recordRemoval(tx *store.Tx, rec *audit.Recorder, e store.Enrollment, p *protocol.Policy, now time.Time) error {
	if len(p.RevokedDevices) == 0 {
		return nil
	}
	var dc protocol.DeviceCert
	if err := e.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, e.MSPKey, &dc); err != nil {
		return fmt.Errorf("policy: own device certificate: %w", err)
	}
	if !p.IsDeviceRevoked(dc.Serial) {
		return nil
	}
	if _, err := tx.Removal(); !errors.Is(err, store.ErrNotFound) {
		return err // nil: recorded before
	}
	if err := tx.SetRemoval(store.Removal{Serial: dc.Serial, Version: p.Version, At: now.UnixMilli()}); err != nil {
		return err
	}
	return rec.Append(tx, protocol.AuditRecord{Event: audit.DeviceRemoved,
		Detail: fmt.Sprintf("policy version %d revokes this device's certificate, serial %d", p.Version, dc.Serial)})
}

// Cache keeps the last policy Current verified, by the digest of its
// signed bytes and the pinned key, so that a caller reading the policy at
// every attempt (offline codes) decodes and verifies it once per version.
// The zero Cache is ready. The Policy it returns is shared: callers must
// not modify it.
type Cache struct {
	mu  sync.Mutex
	sum [32]byte
	msp protocol.IdentityKey
	pol protocol.Policy
	ok  bool
}

// Current is policy.Current through the cache.
func (c *Cache) Current(tx *store.Tx) (protocol.Policy, error) {
	e, err := tx.Enrollment()
	if err != nil {
		return protocol.Policy{}, err
	}
	row, err := tx.Policy(e.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.Policy{}, ErrNoPolicy
	}
	if err != nil {
		return protocol.Policy{}, err
	}
	sum := sha256.Sum256(row.Signed)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && c.sum == sum && c.msp == e.MSPKey {
		return c.pol, nil
	}
	s, err := protocol.DecodeSigned(row.Signed)
	if err != nil {
		return protocol.Policy{}, err
	}
	p, err := Verify(s, e.MSPKey, e.Tenant)
	if err != nil {
		return protocol.Policy{}, err
	}
	c.sum, c.msp, c.pol, c.ok = sum, e.MSPKey, p, true
	return p, nil
}
