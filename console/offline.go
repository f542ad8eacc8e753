package console

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Offline login (SPEC.md 11.6), the console's part:
//
//   - a shared-mode tenant's offline secret goes to the agents of that
//     tenant only (EnrollResponse, PolicyPush and, when the agent reports an
//     older generation, AuditAck), never to a phone; phones get their
//     technician's tech key derived from it;
//   - the secret is rotated (new random 32 bytes, generation + 1) whenever
//     a key derived from it may be in the wrong hands or was used: a
//     technician delegated to the tenant revoked, removed or re-paired, a
//     device of the tenant removed (it held the secret), the tenant
//     switched to shared mode. An offline login does not rotate it: the
//     agent that accepted it retires the technician's derived key on that
//     computer and gives a per-device key at the next online login there
//     (SPEC.md 11.6), so no other computer's codes change. Every rotation
//     publishes a new
//     policy version, so the push machinery delivers the new secret to the
//     agents and the new tech keys to the phones.

// Rotation reasons, as the console log names them.
const (
	RotateTechRevoked   = "technician revoked"
	RotateTechRemoved   = "technician removed"
	RotateTechRepaired  = "technician paired a new phone; the previous one is revoked"
	RotateDeviceRemoved = "device removed"
	RotateModeShared    = "tenant switched to shared mode"
)

// Algorithm names accepted by TenantChange.Algorithm.
const (
	AlgorithmSHA1   = "sha1"
	AlgorithmSHA256 = "sha256"
)

// AlgorithmName returns how the console shows an OfflineParams.Algorithm.
func AlgorithmName(alg string) string {
	if alg == protocol.OTPSHA256 {
		return AlgorithmSHA256
	}
	return AlgorithmSHA1
}

// rotation is one rotated tenant secret, for the log.
type rotation struct {
	tenant     string
	generation uint64
	reason     string
}

// applyOffline applies the offline-login settings of ch.
func (ch *TenantChange) applyOffline(tn *store.Tenant) error {
	if ch.Algorithm != nil {
		switch strings.ToLower(*ch.Algorithm) {
		case AlgorithmSHA1:
			tn.Offline.Algorithm = ""
		case AlgorithmSHA256:
			tn.Offline.Algorithm = protocol.OTPSHA256
		default:
			return refuse("offline code algorithm must be %s or %s, not %q", AlgorithmSHA1, AlgorithmSHA256, *ch.Algorithm)
		}
	}
	if ch.MaxLogins != nil {
		if *ch.MaxLogins < 1 || *ch.MaxLogins > 1000 {
			return refuse("offline logins must be 1..1000, not %d", *ch.MaxLogins)
		}
		tn.Offline.MaxLogins = *ch.MaxLogins
	}
	if ch.MaxDays != nil {
		if *ch.MaxDays < 1 || *ch.MaxDays > 365 {
			return refuse("offline days must be 1..365, not %d", *ch.MaxDays)
		}
		tn.Offline.MaxDays = *ch.MaxDays
	}
	return nil
}

// rotateOffline gives each shared-mode tenant among tenants a new random
// offline secret, one generation up. Named-mode tenants are left alone:
// their keys are the agents' own.
func (c *Console) rotateOffline(tx *store.Tx, tenants []string, reason string) ([]rotation, error) {
	var out []rotation
	for _, name := range tenants {
		tn, err := tx.Tenant(name)
		if err != nil {
			return nil, err
		}
		if tn.LoginMode != protocol.ModeShared {
			continue
		}
		r, err := c.rotate(tx, name, reason)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// rotate replaces one tenant's offline secret.
func (c *Console) rotate(tx *store.Tx, tenant, reason string) (rotation, error) {
	secret := make([]byte, 32)
	if _, err := io.ReadFull(c.rand, secret); err != nil {
		return rotation{}, fmt.Errorf("console: random: %w", err)
	}
	gen, err := tx.RotateOfflineSecret(tenant, secret)
	clear(secret)
	if err != nil {
		return rotation{}, err
	}
	return rotation{tenant: tenant, generation: gen, reason: reason}, nil
}

// logRotations records committed rotations in the console log (never the
// secret).
func (c *Console) logRotations(rs []rotation) {
	for _, r := range rs {
		c.log.Warn("offline secret rotated", "tenant", r.tenant, "generation", r.generation, "reason", r.reason)
	}
}

func rotatedTenants(rs []rotation) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.tenant)
	}
	return out
}

// agentSecrets returns what an agent of tenant tn gets: the tenant's
// offline secret in shared mode, nothing in named mode, and nothing ever
// for a removed device (SPEC.md 11.10: it learns nothing after its
// removal).
func agentSecrets(tn *store.Tenant, d *store.Device) []protocol.TenantSecret {
	if d.Removed != 0 || tn.LoginMode != protocol.ModeShared {
		return nil
	}
	return []protocol.TenantSecret{{Tenant: tn.Name, Secret: slices.Clone(tn.OfflineSecret), Generation: tn.OfflineGeneration}}
}

// tenantAgentSecrets is agentSecrets for d's tenant read from tx.
func tenantAgentSecrets(tx *store.Tx, d *store.Device) ([]protocol.TenantSecret, error) {
	tn, err := tx.Tenant(d.Tenant)
	if err != nil {
		return nil, err
	}
	return agentSecrets(tn, d), nil
}

// techKey returns a technician's shared-mode offline key of tenant tn (the
// tech key of SPEC.md 9), which is all a phone gets.
func techKey(tn *store.Tenant, techID string) (protocol.TenantSecret, error) {
	key, err := protocol.SharedTechKey(tn.OfflineSecret, techID)
	if err != nil {
		return protocol.TenantSecret{}, err
	}
	return protocol.TenantSecret{Tenant: tn.Name, Secret: key, Generation: tn.OfflineGeneration}, nil
}
