// Package authority holds the MSP authority key and the console's own peer
// keys, and signs what agents and phones trust: technician certificates,
// device certificates and tenant policies.
//
// Key files live in the console's state directory (0700), each 0600:
//
//	msp.key       MSP authority Ed25519 seed, plain or passphrase-sealed
//	identity.key  console relay identity, Ed25519 seed (32 bytes)
//	noise.key     console Noise static private key, X25519 (32 bytes)
//
// msp.key layout:
//
//	"JKMSPK1" || 0x00 || seed (32)                              plain
//	"JKMSPK1" || 0x01 || salt (16) || logN u8 || r u8 || p u8 ||
//	   nonce (12) || ChaCha20-Poly1305(scrypt(passphrase), seed) sealed
//
// The header up to the nonce is the AEAD's additional data, so the scrypt
// parameters cannot be swapped. The MSP key leaves the directory only in
// memory.
package authority

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/scrypt"

	"github.com/jitkey/jitkey/protocol"
)

// File names inside the state directory.
const (
	MSPKeyFile   = "msp.key"
	IdentityFile = "identity.key"
	NoiseFile    = "noise.key"
)

// DefaultScryptLogN is the scrypt cost (N = 2^15, r = 8, p = 1).
const DefaultScryptLogN = 15

const magic = "JKMSPK1"

// Errors callers branch on.
var (
	ErrPassphrase = errors.New("authority: wrong passphrase or damaged key file")
	ErrNeedPass   = errors.New("authority: the MSP key is passphrase-protected; give --passphrase-file")
	ErrExists     = errors.New("authority: keys already exist")
)

// Peer holds the console's relay identity and Noise static key.
type Peer struct {
	Identity ed25519.PrivateKey
	Noise    noise.DHKey
}

// LogValue keeps private keys out of logs.
func (p *Peer) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// NoisePublic returns the console's Noise static public key.
func (p *Peer) NoisePublic() protocol.NoiseKey {
	var k protocol.NoiseKey
	copy(k[:], p.Noise.Public)
	return k
}

// Mailbox returns the console's relay mailbox.
func (p *Peer) Mailbox() protocol.MailboxID {
	return protocol.MailboxFor(p.Identity.Public().(ed25519.PublicKey))
}

// Authority is the MSP signing key, unlocked in memory.
type Authority struct {
	key ed25519.PrivateKey
}

// LogValue keeps the key out of logs.
func (a *Authority) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Public returns the MSP public key, which agents and phones pin.
func (a *Authority) Public() protocol.IdentityKey {
	var k protocol.IdentityKey
	copy(k[:], a.key.Public().(ed25519.PublicKey))
	return k
}

// SignTechCert signs a technician certificate.
func (a *Authority) SignTechCert(c *protocol.TechCert) (protocol.Signed, error) {
	return protocol.SignEd25519(protocol.DocTechCert, c, a.key)
}

// SignDeviceCert signs a device certificate.
func (a *Authority) SignDeviceCert(c *protocol.DeviceCert) (protocol.Signed, error) {
	return protocol.SignEd25519(protocol.DocDeviceCert, c, a.key)
}

// ErrPolicyTooLarge is returned by SignPolicy for a policy whose signed
// encoding exceeds protocol.PageBudget: no message could carry it to the
// tenant's agents, nor a page of a transfer to phones (SPEC.md 6.3).
var ErrPolicyTooLarge = errors.New("authority: policy too large to send")

// SignPolicy checks and signs a tenant policy. It refuses a policy whose
// signed encoding exceeds protocol.PageBudget (ErrPolicyTooLarge): about
// 1 600 devices with a custom share list of two usernames fit, fewer with
// longer lists or a larger roster (SPEC.md 6.3).
func (a *Authority) SignPolicy(p *protocol.Policy) (protocol.Signed, error) {
	if err := p.Check(); err != nil {
		return protocol.Signed{}, fmt.Errorf("authority: %w", err)
	}
	s, err := protocol.SignEd25519(protocol.DocPolicy, p, a.key)
	size := 0
	if err == nil {
		var b []byte
		b, err = s.Encode()
		size = len(b)
	}
	switch {
	case errors.Is(err, protocol.ErrFrameTooLarge) || size > protocol.PageBudget:
		return protocol.Signed{}, policyTooLarge(p, size)
	case err != nil:
		return protocol.Signed{}, err
	}
	return s, nil
}

// policyTooLarge explains ErrPolicyTooLarge to the MSP admin: what fills
// the policy and what to change. size is 0 when the policy did not even
// encode within protocol.MaxMessageSize.
func policyTooLarge(p *protocol.Policy, size int) error {
	got := fmt.Sprintf("%d bytes", size)
	if size == 0 {
		got = fmt.Sprintf("over %d bytes", protocol.MaxMessageSize)
	}
	custom := 0
	for _, s := range p.Shares {
		custom += len(s.Entries)
	}
	return fmt.Errorf("%w: tenant %s: the signed policy would be %s, at most %d fit in one message to agents and phones; "+
		"it lists %d devices with a custom share list (%d entries in all), %d technicians in its roster and %d revoked serials. "+
		"A custom share list of two usernames takes about 35 bytes, so about 1600 such devices fit; "+
		"return some devices to the default share list (all-admins, all-users), which takes no room",
		ErrPolicyTooLarge, p.Tenant, got, protocol.PageBudget, len(p.Shares), custom, len(p.Roster), len(p.Revoked))
}

// Options tune Create.
type Options struct {
	Passphrase []byte // empty: the MSP key is stored unsealed
	ScryptLogN int    // default DefaultScryptLogN
	Rand       io.Reader
}

// Create makes the state directory (0700) if needed and writes new keys.
// It refuses to overwrite existing keys.
func Create(dir string, o Options) (*Authority, *Peer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("authority: state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("authority: state directory: %w", err)
	}
	for _, f := range []string{MSPKeyFile, IdentityFile, NoiseFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrExists, filepath.Join(dir, f))
		}
	}
	seeds := make([]byte, 3*32)
	if _, err := io.ReadFull(o.Rand, seeds); err != nil {
		return nil, nil, fmt.Errorf("authority: random: %w", err)
	}
	mspSeed, idSeed, noiseSeed := seeds[:32], seeds[32:64], seeds[64:]
	sealed, err := seal(mspSeed, o)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{MSPKeyFile, sealed}, {IdentityFile, idSeed}, {NoiseFile, noiseSeed}} {
		if err := writeKey(filepath.Join(dir, f.name), f.data); err != nil {
			return nil, nil, err
		}
	}
	peer, err := peerFrom(idSeed, noiseSeed)
	if err != nil {
		return nil, nil, err
	}
	return &Authority{key: ed25519.NewKeyFromSeed(mspSeed)}, peer, nil
}

func writeKey(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("authority: write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("authority: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("authority: write key: %w", err)
	}
	return f.Close()
}

func seal(seed []byte, o Options) ([]byte, error) {
	if len(o.Passphrase) == 0 {
		return append([]byte(magic+"\x00"), seed...), nil
	}
	logN := o.ScryptLogN
	if logN == 0 {
		logN = DefaultScryptLogN
	}
	hdr := []byte(magic + "\x01")
	salt := make([]byte, 16+chacha20poly1305.NonceSize)
	if _, err := io.ReadFull(o.Rand, salt); err != nil {
		return nil, fmt.Errorf("authority: random: %w", err)
	}
	hdr = append(hdr, salt[:16]...)
	hdr = append(hdr, byte(logN), 8, 1)
	hdr = append(hdr, salt[16:]...)
	aead, err := kek(o.Passphrase, salt[:16], logN, 8, 1)
	if err != nil {
		return nil, err
	}
	return aead.Seal(hdr, salt[16:], seed, hdr), nil
}

func kek(pass, salt []byte, logN, r, p int) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	if logN < 10 || logN > 22 || r != 8 || p != 1 {
		return nil, ErrPassphrase
	}
	k, err := scrypt.Key(pass, salt, 1<<logN, r, p, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("authority: scrypt: %w", err)
	}
	return chacha20poly1305.New(k)
}

func readKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("authority: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("authority: %s is accessible to others (mode %v); expected 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authority: %w", err)
	}
	return b, nil
}

// IsSealed reports whether the MSP key in dir is passphrase-protected.
func IsSealed(dir string) (bool, error) {
	b, err := readKey(filepath.Join(dir, MSPKeyFile))
	if err != nil {
		return false, err
	}
	return len(b) > len(magic) && b[len(magic)] == 1, nil
}

// LoadAuthority unlocks the MSP key in dir.
func LoadAuthority(dir string, passphrase []byte) (*Authority, error) {
	b, err := readKey(filepath.Join(dir, MSPKeyFile))
	if err != nil {
		return nil, err
	}
	if len(b) < len(magic)+1 || !bytes.Equal(b[:len(magic)], []byte(magic)) {
		return nil, fmt.Errorf("authority: %s is not an MSP key file", MSPKeyFile)
	}
	var seed []byte
	switch b[len(magic)] {
	case 0:
		if len(b) != len(magic)+1+32 {
			return nil, fmt.Errorf("authority: %s has the wrong length", MSPKeyFile)
		}
		seed = b[len(magic)+1:]
	case 1:
		if len(passphrase) == 0 {
			return nil, ErrNeedPass
		}
		const hl = len(magic) + 1 + 16 + 3 + chacha20poly1305.NonceSize
		if len(b) != hl+32+chacha20poly1305.Overhead {
			return nil, ErrPassphrase
		}
		hdr := b[:hl]
		salt := hdr[len(magic)+1 : len(magic)+17]
		params := hdr[len(magic)+17 : len(magic)+20]
		nonce := hdr[len(magic)+20:]
		aead, err := kek(passphrase, salt, int(params[0]), int(params[1]), int(params[2]))
		if err != nil {
			return nil, err
		}
		seed, err = aead.Open(nil, nonce, b[hl:], hdr)
		if err != nil {
			return nil, ErrPassphrase
		}
	default:
		return nil, fmt.Errorf("authority: %s has an unknown format", MSPKeyFile)
	}
	return &Authority{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// LoadPeer reads the console's relay identity and Noise key from dir.
func LoadPeer(dir string) (*Peer, error) {
	id, err := readKey(filepath.Join(dir, IdentityFile))
	if err != nil {
		return nil, err
	}
	nk, err := readKey(filepath.Join(dir, NoiseFile))
	if err != nil {
		return nil, err
	}
	if len(id) != 32 || len(nk) != 32 {
		return nil, errors.New("authority: peer key files have the wrong length")
	}
	return peerFrom(id, nk)
}

func peerFrom(idSeed, noisePriv []byte) (*Peer, error) {
	pub, err := curve25519.X25519(noisePriv, curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("authority: noise key: %w", err)
	}
	return &Peer{
		Identity: ed25519.NewKeyFromSeed(idSeed),
		Noise:    noise.DHKey{Private: append([]byte(nil), noisePriv...), Public: pub},
	}, nil
}
