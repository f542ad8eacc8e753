package store

import (
	"fmt"

	"github.com/jitkey/jitkey/protocol"
)

// Enrollment is what the agent learned when it enrolled. It is stored as
// canonical CBOR under the meta key "enrollment".
type Enrollment struct {
	DeviceCert   protocol.Signed      `cbor:"1,keyasint"` // verified against MSPKey at enrollment
	MSPKey       protocol.IdentityKey `cbor:"2,keyasint"` // pinned: everything trusted chains to it
	Tenant       string               `cbor:"3,keyasint"`
	DeviceID     protocol.DeviceID    `cbor:"4,keyasint"`
	Console      string               `cbor:"5,keyasint"` // console PeerAddr text
	ConsoleNoise protocol.NoiseKey    `cbor:"6,keyasint"`
	RelayPins    [][32]byte           `cbor:"7,keyasint"`
	Relay        string               `cbor:"8,keyasint"` // home relay
	Name         string               `cbor:"9,keyasint"`
	OS           string               `cbor:"10,keyasint"`
}

const enrollmentKey = "enrollment"

// Enrollment returns the stored enrollment, or ErrNotFound before the
// agent has enrolled.
func (t *Tx) Enrollment() (Enrollment, error) {
	var e Enrollment
	return e, t.metaCBOR(enrollmentKey, &e)
}

// SetEnrollment stores the enrollment.
func (t *Tx) SetEnrollment(e Enrollment) error {
	return t.setMetaCBOR(enrollmentKey, &e)
}

// Removal records that the MSP removed this device (SPEC.md 11.10): a
// policy the agent applied revokes its device certificate. It is stored
// as canonical CBOR under the meta key "removal", in the transaction that
// applies that policy, and never cleared: the agent refuses logins from
// then on, across restarts.
type Removal struct {
	Serial  uint64 `cbor:"1,keyasint"` // the device certificate's serial
	Version uint64 `cbor:"2,keyasint"` // the policy version that revoked it
	At      int64  `cbor:"3,keyasint"` // when the agent applied it, Unix milliseconds
}

const removalKey = "removal"

// Removal returns the stored removal, or ErrNotFound while the device is
// not removed.
func (t *Tx) Removal() (Removal, error) {
	var r Removal
	return r, t.metaCBOR(removalKey, &r)
}

// SetRemoval stores the removal.
func (t *Tx) SetRemoval(r Removal) error {
	return t.setMetaCBOR(removalKey, &r)
}

// metaCBOR decodes the canonical CBOR stored under meta key into v; it
// returns ErrNotFound for a missing key.
func (t *Tx) metaCBOR(key string, v any) error {
	b, err := t.Meta(key)
	if err != nil {
		return err
	}
	if err := protocol.Unmarshal(b, v); err != nil {
		return fmt.Errorf("store: %s: %w", key, err)
	}
	return nil
}

// setMetaCBOR stores v as canonical CBOR under meta key.
func (t *Tx) setMetaCBOR(key string, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %s: %w", key, err)
	}
	return t.SetMeta(key, b)
}
