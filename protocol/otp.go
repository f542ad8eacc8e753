package protocol

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the shared-mode offline keys (SPEC.md 11.6).
const (
	// TenantSecretLen is the size of a tenant's shared offline secret.
	TenantSecretLen = 32
	// SharedTechKeyLen is the size of a technician's offline key.
	SharedTechKeyLen = 32
	// CodeKeyLen is the size of a TOTP key: the RFC 4226 recommendation
	// for HMAC-SHA1, and the size of a named-mode LoginResult.OfflineSecret.
	CodeKeyLen = 20
)

// ErrOTPParams is returned for offline-code inputs outside their bounds.
var ErrOTPParams = errors.New("protocol: invalid offline code parameters")

// SharedTechKey derives a technician's offline key from a tenant's shared
// offline secret (SPEC.md 11.6):
//
//	tech key = Derive(tenant secret, LabelOTPSharedTech, TechID, 32)
//
// The context is the TechID's UTF-8 bytes, without terminator. The
// console hands a phone only the tech keys of its own technician.
func SharedTechKey(tenantSecret []byte, techID string) ([]byte, error) {
	if len(tenantSecret) != TenantSecretLen || techID == "" {
		return nil, fmt.Errorf("%w: tenant secret of %d bytes, tech id %q", ErrOTPParams, len(tenantSecret), techID)
	}
	return Derive(tenantSecret, LabelOTPSharedTech, []byte(techID), SharedTechKeyLen)
}

// SharedCodeKey derives the TOTP key of one device from a technician's
// offline key (SPEC.md 11.6):
//
//	code key = Derive(tech key, LabelOTPSharedCode, DeviceID (16 bytes), 20)
//
// The context is the DeviceID alone: the tech key is already bound to the
// TechID.
func SharedCodeKey(techKey []byte, device DeviceID) ([]byte, error) {
	if len(techKey) != SharedTechKeyLen {
		return nil, fmt.Errorf("%w: tech key of %d bytes", ErrOTPParams, len(techKey))
	}
	return Derive(techKey, LabelOTPSharedCode, device[:], CodeKeyLen)
}

// TOTP computes the RFC 6238 code of key at Unix time t: HMAC-SHA1,
// T0 = 0, time step period seconds, dynamic truncation of RFC 4226, and
// digits decimal digits with leading zeros. digits is 6 or 8 and period
// 30 or 60 (the bounds of Policy.Offline); t must not be negative.
func TOTP(key []byte, t int64, period, digits int) (string, error) {
	if (digits != 6 && digits != 8) || (period != 30 && period != 60) || t < 0 || len(key) == 0 {
		return "", fmt.Errorf("%w: digits %d, period %d, time %d", ErrOTPParams, digits, period, t)
	}
	return hotp(key, uint64(t)/uint64(period), digits), nil
}

// hotp is RFC 4226 HOTP with HMAC-SHA1 over the 8-byte big-endian counter.
func hotp(key []byte, counter uint64, digits int) string {
	m := hmac.New(sha1.New, key)
	m.Write(binary.BigEndian.AppendUint64(nil, counter))
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:]) & 0x7fffffff
	mod := uint32(1_000_000)
	if digits == 8 {
		mod = 100_000_000
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}
