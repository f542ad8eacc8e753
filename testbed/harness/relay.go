//go:build linux

package harness

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Relay is a jitkey-relay process. It runs with a certificate and key
// made by the harness, so that after a restart it has the same pin and
// the peers that pinned it reconnect.
type Relay struct {
	*Proc
	// Listen is the address asked for; Addr the one bound; Pin the hex
	// SHA-256 of the certificate's key, as the relay prints it.
	Listen, Addr, Pin string
}

var (
	relayPin  = regexp.MustCompile(`pin=([0-9a-f]{64})`)
	relayAddr = regexp.MustCompile(`(?:addr|address|listen|listening)[= :]+(?:on )?((?:\d{1,3}\.){3}\d{1,3}:\d+)`)
)

// StartRelay starts a relay named name on listen (host:port; port 0 picks
// one, which the relay keeps across restarts) and waits until it prints
// its pin and bound address.
func (b *Bed) StartRelay(ctx context.Context, name, listen string, extra ...string) (*Relay, error) {
	dir := b.StateDir(name)
	cert, key := filepath.Join(dir, "relay.crt"), filepath.Join(dir, "relay.key")
	if err := writeRelayCert(cert, key); err != nil {
		return nil, err
	}
	r := &Relay{Listen: listen}
	args := append([]string{"--listen", listen, "--cert", cert, "--key", key, "--metrics-listen", "127.0.0.1:0"}, extra...)
	r.Proc = b.Proc(name, RelayBin, args...)
	if err := r.Restart(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Restart starts the relay again (after Kill or Stop) on the address it
// had, and checks that its pin did not change.
func (r *Relay) Restart(ctx context.Context) error {
	if r.Addr != "" {
		r.Argv[2] = r.Addr
	}
	mark := r.Mark()
	if err := r.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pm, err := r.WaitFor(ctx, mark, relayPin)
	if err != nil {
		return err
	}
	am, err := r.WaitFor(ctx, mark, relayAddr)
	if err != nil {
		return err
	}
	if r.Pin != "" && pm[1] != r.Pin {
		return fmt.Errorf("harness: relay %s restarted with pin %s, had %s", r.Name, pm[1], r.Pin)
	}
	r.Pin, r.Addr = pm[1], am[1]
	return nil
}

// writeRelayCert writes a self-signed Ed25519 certificate and its PKCS#8
// key (PEM), like the relay makes for itself when given none.
func writeRelayCert(certPath, keyPath string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jitkey testbed relay"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return fmt.Errorf("harness: relay certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("harness: relay key: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
}
