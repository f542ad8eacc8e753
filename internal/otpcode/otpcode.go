// Package otpcode computes and checks the offline login codes of SPEC.md
// 11.6: RFC 6238 TOTP (T0 = 0, HMAC-SHA1 or HMAC-SHA256, 6 or 8 digits,
// period and skew from the tenant's OfflineParams), on top of the HOTP of
// github.com/pquerna/otp. It also derives the shared-mode code key of one
// technician on one device. It holds no state: which steps were used and
// how many attempts failed is the agent's, persisted in its store.
package otpcode

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/jitkey/jitkey/protocol"
)

// KeySize is the size of a named-mode offline key and of a shared-mode
// code key (SPEC.md 9: otp/shared-code-key, 20 bytes).
const KeySize = protocol.CodeKeyLen

// ErrFormat: the code is not Digits decimal digits.
var ErrFormat = errors.New("otpcode: a code is 6 or 8 digits as the policy says")

// Step returns the RFC 6238 time step of t for period seconds.
func Step(t time.Time, period int) uint64 {
	s := t.Unix()
	if s < 0 || period <= 0 {
		return 0
	}
	return uint64(s) / uint64(period)
}

// StepEnd returns when step ends.
func StepEnd(step uint64, period int) time.Time {
	return time.Unix(int64((step+1)*uint64(period)), 0)
}

func opts(p protocol.OfflineParams) hotp.ValidateOpts {
	o := hotp.ValidateOpts{Digits: otp.Digits(p.Digits), Algorithm: otp.AlgorithmSHA1}
	if p.Algorithm == protocol.OTPSHA256 {
		o.Algorithm = otp.AlgorithmSHA256
	}
	return o
}

// Code returns the code of key for step.
func Code(key []byte, step uint64, p protocol.OfflineParams) (string, error) {
	if len(key) == 0 {
		return "", errors.New("otpcode: empty key")
	}
	if p.Digits != 6 && p.Digits != 8 {
		return "", fmt.Errorf("otpcode: %d digits", p.Digits)
	}
	c, err := hotp.GenerateCodeCustom(base32.StdEncoding.EncodeToString(key), step, opts(p))
	if err != nil {
		return "", fmt.Errorf("otpcode: %w", err)
	}
	return c, nil
}

// Match checks code against key for the steps now−Skew..now+Skew that are
// above after (steps at or below it were used already, R-41). It returns
// the matching step. Every candidate is computed and compared in constant
// time, so the time taken does not tell which step (if any) matched.
func Match(key []byte, code string, now time.Time, p protocol.OfflineParams, after uint64) (uint64, bool, error) {
	if !wellFormed(code, p.Digits) {
		return 0, false, ErrFormat
	}
	t := Step(now, p.Period)
	var found uint64
	ok := 0
	for d := -p.Skew; d <= p.Skew; d++ {
		if d < 0 && t < uint64(-d) {
			continue
		}
		step := uint64(int64(t) + int64(d))
		want, err := Code(key, step, p)
		if err != nil {
			return 0, false, err
		}
		fresh := 0 // whether a step is used is not secret; the code is
		if step > after {
			fresh = 1
		}
		hit := subtle.ConstantTimeCompare([]byte(want), []byte(code)) & fresh
		if hit == 1 {
			found = step
		}
		ok |= hit
	}
	return found, ok == 1, nil
}

func wellFormed(code string, digits int) bool {
	if len(code) != digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// SharedCodeKey derives the shared-mode code key of technician techID on
// device dev from the tenant's shared offline secret (SPEC.md 9, 11.6):
// tech key = Derive(secret, otp/shared-tech-key, TechID, 32), code key =
// Derive(tech key, otp/shared-code-key, DeviceID, 20). A phone holds only
// its technician's tech key and calls CodeKey.
func SharedCodeKey(tenantSecret []byte, techID string, dev protocol.DeviceID) ([]byte, error) {
	tk, err := protocol.SharedTechKey(tenantSecret, techID)
	if err != nil {
		return nil, fmt.Errorf("otpcode: tech key: %w", err)
	}
	defer clear(tk)
	return CodeKey(tk, dev)
}

// CodeKey derives the code key of device dev from a technician's shared
// offline key (the tech key).
func CodeKey(techKey []byte, dev protocol.DeviceID) ([]byte, error) {
	k, err := protocol.SharedCodeKey(techKey, dev)
	if err != nil {
		return nil, fmt.Errorf("otpcode: code key: %w", err)
	}
	return k, nil
}
