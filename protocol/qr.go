package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// QRVersion is the version byte of QR payloads this package produces.
const QRVersion = 1

// QR payload kinds.
const (
	QRLogin uint8 = 1 // shown by an agent on a login screen or elevation prompt
	QRPair  uint8 = 2 // shown by the console to pair a technician's phone
)

// Bounds on QR payloads.
const (
	QRSecretLen = 16
	// MaxQRText bounds the text form; anything longer is rejected before
	// decoding: "JK:" (3) + base45 of the largest binary, 104 fixed bytes +
	// a MaxRelayAddrLen (96) relay address = 200 bytes -> 300 characters.
	MaxQRText = 303
	// QRLoginMaxAge is how long a login QR is accepted after its time; an
	// agent rotates it at least every 60 s.
	QRLoginMaxAge = 90 * time.Second
	// QRPairMaxAge is how long a pairing QR is accepted.
	QRPairMaxAge = 10 * time.Minute
	// QRMaxFuture tolerates clocks slightly ahead of the verifier's.
	QRMaxFuture = 30 * time.Second
)

// qrPrefix starts every QR text, so a scanner recognises jitkey codes.
const qrPrefix = "JK:"

// ErrQRStale is returned for a QR payload outside its validity window.
var ErrQRStale = errors.New("protocol: QR code expired")

// QRPayload is what a jitkey QR code carries. Text form:
//
//	"JK:" || base45(binary)
//
// binary (104 bytes + relay address):
//
//	0        version       u8 (QRVersion)
//	1        kind          u8 (QRLogin, QRPair)
//	2        action        u8 (ActionLogon..ActionSudo, or ActionConsole
//	                         with a zero device id; 0 for QRPair)
//	3..6     time          u32 big-endian, Unix seconds
//	7..22    device id     16 bytes (zero for QRPair and ActionConsole)
//	23..54   static key    32 bytes, the shower's Noise static key (X25519)
//	55..86   mailbox       32 bytes, the shower's relay mailbox
//	87..102  secret        16 bytes, one-time session secret
//	103      relay length  u8, 1..MaxRelayAddrLen
//	104..    relay address "host:port", ASCII
type QRPayload struct {
	Kind     uint8
	Action   uint8
	Time     time.Time // second precision
	DeviceID DeviceID
	Static   NoiseKey
	Mailbox  MailboxID
	Secret   [QRSecretLen]byte
	Relay    string
}

const qrFixedLen = 104

// Encode returns the text form of the payload.
func (q *QRPayload) Encode() (string, error) {
	b, err := q.appendBinary(nil)
	if err != nil {
		return "", err
	}
	return qrPrefix + base45Encode(b), nil
}

func (q *QRPayload) appendBinary(b []byte) ([]byte, error) {
	if err := CheckRelayAddr(q.Relay); err != nil {
		return nil, err
	}
	if err := q.checkKind(); err != nil {
		return nil, err
	}
	t := q.Time.Unix()
	if t < 0 || t > 0xffffffff {
		return nil, fmt.Errorf("%w: QR time out of range", ErrMalformed)
	}
	b = append(b, QRVersion, q.Kind, q.Action)
	b = binary.BigEndian.AppendUint32(b, uint32(t))
	b = append(b, q.DeviceID[:]...)
	b = append(b, q.Static[:]...)
	b = append(b, q.Mailbox[:]...)
	b = append(b, q.Secret[:]...)
	b = append(b, byte(len(q.Relay)))
	return append(b, q.Relay...), nil
}

func (q *QRPayload) checkKind() error {
	switch {
	case q.Kind == QRLogin && ActionName(q.Action) != "":
	case q.Kind == QRLogin && q.Action == ActionConsole && q.DeviceID == (DeviceID{}):
	case q.Kind == QRPair && q.Action == 0 && q.DeviceID == (DeviceID{}):
	default:
		return fmt.Errorf("%w: QR kind %d action %d", ErrMalformed, q.Kind, q.Action)
	}
	return nil
}

// Addr is the shower's relay address.
func (q *QRPayload) Addr() PeerAddr { return PeerAddr{Relay: q.Relay, Mailbox: q.Mailbox} }

// ParseQR decodes the text form without checking freshness.
func ParseQR(text string) (QRPayload, error) {
	var q QRPayload
	if len(text) > MaxQRText {
		return q, fmt.Errorf("%w: QR text of %d characters", ErrMalformed, len(text))
	}
	if len(text) < len(qrPrefix) || text[:len(qrPrefix)] != qrPrefix {
		return q, fmt.Errorf("%w: not a jitkey QR code", ErrMalformed)
	}
	b, err := base45Decode(text[len(qrPrefix):])
	if err != nil {
		return q, fmt.Errorf("%w: QR: %v", ErrMalformed, err)
	}
	// The version byte is checked before the length, so that a code of a
	// later version, whatever its layout, is reported as such (SPEC.md
	// 5.2): the phone can then ask the user to update.
	if len(b) == 0 {
		return q, fmt.Errorf("%w: empty QR payload", ErrMalformed)
	}
	if b[0] != QRVersion {
		return q, fmt.Errorf("%w: QR version %d", ErrUnsupportedVersion, b[0])
	}
	if len(b) < qrFixedLen+1 {
		return q, fmt.Errorf("%w: QR payload truncated", ErrMalformed)
	}
	q.Kind, q.Action = b[1], b[2]
	q.Time = time.Unix(int64(binary.BigEndian.Uint32(b[3:7])), 0)
	copy(q.DeviceID[:], b[7:23])
	copy(q.Static[:], b[23:55])
	copy(q.Mailbox[:], b[55:87])
	copy(q.Secret[:], b[87:103])
	n := int(b[103])
	if len(b) != qrFixedLen+n {
		return q, fmt.Errorf("%w: QR relay length", ErrMalformed)
	}
	q.Relay = string(b[104:])
	if err := CheckRelayAddr(q.Relay); err != nil {
		return q, fmt.Errorf("%w: QR: %v", ErrMalformed, err)
	}
	if err := q.checkKind(); err != nil {
		return q, err
	}
	if err := q.Static.Check(); err != nil {
		return q, fmt.Errorf("%w: QR: %v", ErrMalformed, err)
	}
	return q, nil
}

// DecodeQR decodes the text form and checks that the code is fresh at now:
// not older than its kind's maximum age, not more than QRMaxFuture ahead.
func DecodeQR(text string, now time.Time) (QRPayload, error) {
	q, err := ParseQR(text)
	if err != nil {
		return q, err
	}
	maxAge := QRLoginMaxAge
	if q.Kind == QRPair {
		maxAge = QRPairMaxAge
	}
	age := now.Sub(q.Time)
	if age > maxAge || age < -QRMaxFuture {
		return q, ErrQRStale
	}
	return q, nil
}

// QRVersionOf returns the version byte of text, a QR payload with the
// prefix and valid base45, so that a reader can tell a code of a later
// version (ask the user to update) from a damaged one (version 0).
func QRVersionOf(text string) (uint8, bool) {
	if len(text) > MaxQRText || !strings.HasPrefix(text, qrPrefix) {
		return 0, false
	}
	b, err := base45Decode(text[len(qrPrefix):])
	if err != nil || len(b) == 0 {
		return 0, false
	}
	return b[0], true
}

// ErrUnsupportedVersion is returned for a version this implementation does
// not speak.
var ErrUnsupportedVersion = errors.New("protocol: unsupported version")
