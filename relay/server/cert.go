package server

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// loadCertificate loads the configured certificate or generates a
// self-signed one, and returns it with its pin.
func loadCertificate(c Config) (tls.Certificate, [32]byte, error) {
	var cert tls.Certificate
	var err error
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err = tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return cert, [32]byte{}, fmt.Errorf("load certificate: %w", err)
		}
	case c.CertFile != "" || c.KeyFile != "":
		return cert, [32]byte{}, fmt.Errorf("certificate and key files must be given together")
	default:
		cert, err = selfSigned(c.Rand, c.Now())
		if err != nil {
			return cert, [32]byte{}, fmt.Errorf("generate certificate: %w", err)
		}
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return cert, [32]byte{}, fmt.Errorf("parse certificate: %w", err)
		}
	}
	return cert, protocol.RelayPin(cert.Leaf.RawSubjectPublicKeyInfo), nil
}

// selfSigned makes an Ed25519 certificate for a relay that peers pin.
func selfSigned(rnd io.Reader, now time.Time) (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jitkey relay"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}
