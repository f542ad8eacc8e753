package server

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/quic-go/quic-go"
)

// statelessResetLabel is the HKDF info of the QUIC stateless reset key.
const statelessResetLabel = "jitkey/v1/relay/stateless-reset"

// statelessResetKey derives the QUIC stateless reset key from the relay's
// TLS private key:
//
//	HKDF-SHA256(IKM = PKCS#8 DER of the key, salt = empty,
//	            info = "jitkey/v1/relay/stateless-reset"), 32 bytes
//
// A relay restarted with the same key (the same pin) therefore answers
// packets of connections it lost with a stateless reset (RFC 9000 10.3)
// that their peers accept, and they reconnect at once instead of waiting
// for the idle timeout. The derivation is one-way: the reset key reveals
// nothing of the TLS key.
func statelessResetKey(priv any) (*quic.StatelessResetKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("stateless reset key: %w", err)
	}
	b, err := hkdf.Key(sha256.New, der, nil, statelessResetLabel, len(quic.StatelessResetKey{}))
	if err != nil {
		return nil, fmt.Errorf("stateless reset key: %w", err)
	}
	var k quic.StatelessResetKey
	copy(k[:], b)
	return &k, nil
}
