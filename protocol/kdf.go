package protocol

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// Label names one use of HKDF-SHA256. Every derived value in jitkey has its
// own label, so no key is ever used for two purposes. The full table is
// Labels; SPEC.md reproduces it.
type Label string

// The key derivation labels. Derive(secret, label, context) computes
//
//	HKDF-SHA256(IKM = secret, salt = empty, info = label || 0x00 || context)
const (
	// LabelQRPSK turns a login QR's session secret into the Noise PSK.
	LabelQRPSK Label = "jitkey/v1/qr/psk"
	// LabelQRSession turns a login QR's session secret into its session id.
	LabelQRSession Label = "jitkey/v1/qr/session-id"
	// LabelPairPSK turns a pairing code's secret into the Noise PSK.
	LabelPairPSK Label = "jitkey/v1/pair/psk"
	// LabelPairSession turns a pairing code's secret into its session id.
	LabelPairSession Label = "jitkey/v1/pair/session-id"
	// LabelEnrollPSK turns an enrollment token's secret into the Noise PSK.
	LabelEnrollPSK Label = "jitkey/v1/enroll/psk"
	// LabelEnrollSession turns an enrollment token's secret into its session id.
	LabelEnrollSession Label = "jitkey/v1/enroll/session-id"
	// LabelEnrollTokenID turns an enrollment token's secret into the id under
	// which the console stores it (the console keeps only this id, never the
	// secret).
	LabelEnrollTokenID Label = "jitkey/v1/enroll/token-id"
	// LabelPairCodeID is the pairing counterpart of LabelEnrollTokenID.
	LabelPairCodeID Label = "jitkey/v1/pair/code-id"
	// LabelOTPSharedTech derives, from a tenant's shared offline secret,
	// one technician's offline key; context is the technician id. A phone
	// receives only its own technician key, never the tenant secret.
	LabelOTPSharedTech Label = "jitkey/v1/otp/shared-tech-key"
	// LabelOTPSharedCode derives, from a technician's offline key
	// (LabelOTPSharedTech), the TOTP key of one device; context is the
	// device id (16 bytes).
	LabelOTPSharedCode Label = "jitkey/v1/otp/shared-code-key"
	// LabelPushNumber derives the number-matching value of a push login from
	// the Noise handshake hash.
	LabelPushNumber Label = "jitkey/v1/push/number"
	// LabelConsolePSK turns a console sign-in QR's secret into the Noise
	// PSK (SPEC.md 11.12).
	LabelConsolePSK Label = "jitkey/v1/console/psk"
	// LabelConsoleSession turns a console sign-in QR's secret into its
	// session id.
	LabelConsoleSession Label = "jitkey/v1/console/session-id"
	// LabelRecoveryCheck derives the check characters of a break-glass
	// recovery code from its 16 random bytes (SPEC.md 11.15).
	LabelRecoveryCheck Label = "jitkey/v1/breakglass/check"
	// LabelRecoveryVerifier derives the verifier an agent keeps of a
	// recovery code, in place of the code; context is the code's random
	// 16-byte salt.
	LabelRecoveryVerifier Label = "jitkey/v1/breakglass/verifier"
	// LabelRecoveryEscrowKey derives, from the console's identity key
	// seed, the key that seals escrowed recovery codes in its database.
	LabelRecoveryEscrowKey Label = "jitkey/v1/breakglass/escrow-key"
)

// Labels lists every label with its output length and purpose, in the order
// SPEC.md shows them. A test checks the list is complete and duplicate-free.
var Labels = []struct {
	Label   Label
	Length  int
	Purpose string
}{
	{LabelQRPSK, 32, "Noise PSK of a QR login handshake, from the QR session secret"},
	{LabelQRSession, 16, "session id of a QR login, from the QR session secret"},
	{LabelPairPSK, 32, "Noise PSK of phone pairing, from the pairing secret"},
	{LabelPairSession, 16, "session id of phone pairing, from the pairing secret"},
	{LabelEnrollPSK, 32, "Noise PSK of agent enrollment, from the token secret"},
	{LabelEnrollSession, 16, "session id of agent enrollment, from the token secret"},
	{LabelEnrollTokenID, 16, "console-side id of an enrollment token"},
	{LabelPairCodeID, 16, "console-side id of a pairing code"},
	{LabelOTPSharedTech, 32, "a technician's offline key, from a tenant's shared offline secret"},
	{LabelOTPSharedCode, 20, "TOTP key of one device, from a technician's offline key"},
	{LabelPushNumber, 4, "number-matching value of a push login, from the handshake hash"},
	{LabelConsolePSK, 32, "Noise PSK of a web console sign-in, from the sign-in QR secret"},
	{LabelConsoleSession, 16, "session id of a web console sign-in, from the sign-in QR secret"},
	{LabelRecoveryCheck, 4, "check characters of a break-glass recovery code, from its 16 bytes (the first 12 bits used)"},
	{LabelRecoveryVerifier, 32, "an agent's verifier of a recovery code, from the code, context the salt"},
	{LabelRecoveryEscrowKey, 32, "key sealing escrowed recovery codes at the console, from its identity key seed"},
}

// Derive computes HKDF-SHA256 with the label and context as info.
func Derive(secret []byte, label Label, context []byte, length int) ([]byte, error) {
	info := make([]byte, 0, len(label)+1+len(context))
	info = append(info, label...)
	info = append(info, 0)
	info = append(info, context...)
	out, err := hkdf.Key(sha256.New, secret, nil, string(info), length)
	if err != nil {
		return nil, fmt.Errorf("protocol: derive %s: %w", label, err)
	}
	return out, nil
}

// DeriveSessionID derives a 16-byte session id for the given label.
func DeriveSessionID(secret []byte, label Label) (SessionID, error) {
	var id SessionID
	b, err := Derive(secret, label, nil, len(id))
	if err != nil {
		return id, err
	}
	copy(id[:], b)
	return id, nil
}
