// Package wallet is the simulated phone's storage: its keys, its relay
// settings and the organisations it is paired with.
//
// Layout of the state directory (created 0700; every file 0600, written
// atomically: temporary file, fsync, rename, fsync of the directory):
//
//	phone.json        relay address and pins, Noise static key, Ed25519
//	                  identity seed, current organisation
//	approval.p8       the P-256 approval key, PKCS#8 DER, in plaintext
//	orgs/ID.json      one paired organisation (Org)
//
// Files are JSON so that a tester can read them; byte fields are base64.
// A real phone keeps the approval key in secure hardware where it cannot be
// read; the simulator keeps it in a 0600 file and only hands it out wrapped
// behind a biometric gate (package biometric). Two commands running at once
// on one state directory do not corrupt files, but the later write of an
// organisation wins.
package wallet

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/protocol"
)

// File names inside the state directory.
const (
	phoneFile    = "phone.json"
	approvalFile = "approval.p8"
	orgsDir      = "orgs"
)

// Errors callers branch on.
var (
	ErrNotInitialised = errors.New("wallet: phone not initialised (run init)")
	ErrExists         = errors.New("wallet: phone already initialised")
	ErrUnknownOrg     = errors.New("wallet: unknown organisation")
	ErrNoOrg          = errors.New("wallet: not paired with any organisation")
)

// Phone is the phone's own configuration and keys.
type Phone struct {
	Relay     string   `json:"relay"`      // home relay "host:port"
	RelayPins [][]byte `json:"relay_pins"` // SHA-256 of accepted relay SPKIs
	NoisePriv []byte   `json:"noise_private"`
	NoisePub  []byte   `json:"noise_public"`
	IDSeed    []byte   `json:"identity_seed"` // Ed25519 seed
	Current   string   `json:"current,omitempty"`
}

// Noise returns the Noise static key pair.
func (p *Phone) Noise() noise.DHKey { return noise.DHKey{Private: p.NoisePriv, Public: p.NoisePub} }

// NoiseKey returns the Noise static public key.
func (p *Phone) NoiseKey() (k protocol.NoiseKey) { copy(k[:], p.NoisePub); return k }

// Identity returns the Ed25519 identity key.
func (p *Phone) Identity() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(p.IDSeed) }

// IdentityKey returns the identity public key.
func (p *Phone) IdentityKey() protocol.IdentityKey {
	k, _ := protocol.IdentityKeyOf(p.Identity().Public().(ed25519.PublicKey))
	return k
}

// Addr returns the phone's relay address.
func (p *Phone) Addr() protocol.PeerAddr {
	return protocol.PeerAddr{Relay: p.Relay, Mailbox: protocol.MailboxFor(p.Identity().Public().(ed25519.PublicKey))}
}

// Pins returns the relay pins as fixed arrays.
func (p *Phone) Pins() [][32]byte {
	out := make([][32]byte, 0, len(p.RelayPins))
	for _, b := range p.RelayPins {
		var a [32]byte
		copy(a[:], b)
		out = append(out, a)
	}
	return out
}

// TenantSecret is the technician's offline key of a shared-mode tenant
// (the tech key of SPEC.md 9, never the tenant secret), from which the
// phone derives each device's code key.
type TenantSecret struct {
	Tenant string `json:"tenant"`
	Secret []byte `json:"secret"`
	// Generation is the generation of the tenant secret the key derives
	// from (0: from a console before offline login).
	Generation uint64 `json:"generation,omitempty"`
}

// LogValue implements slog.LogValuer; the key logs as REDACTED.
func (s TenantSecret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant", s.Tenant), slog.Uint64("generation", s.Generation),
		slog.String("secret", protocol.Redacted))
}

// DeviceSecret is a named-mode offline key for one device, delivered by
// the device's agent in an online login (SPEC.md 11.6).
type DeviceSecret struct {
	Tenant   string `json:"tenant,omitempty"` // empty: stored before the tenant was kept
	DeviceID []byte `json:"device_id"`
	Secret   []byte `json:"secret"`
}

// LogValue implements slog.LogValuer; the key logs as REDACTED.
func (s DeviceSecret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant", s.Tenant), slog.String("device_id", fmt.Sprintf("%x", s.DeviceID)),
		slog.String("secret", protocol.Redacted))
}

// TechKey returns the technician's offline key of a shared-mode tenant.
func (o *Org) TechKey(tenant string) (TenantSecret, bool) {
	for _, s := range o.OfflineSecrets {
		if s.Tenant == tenant {
			return s, true
		}
	}
	return TenantSecret{}, false
}

// DeviceKey returns the named-mode offline key of a device of tenant.
func (o *Org) DeviceKey(tenant string, id protocol.DeviceID) (DeviceSecret, bool) {
	for _, s := range o.DeviceSecrets {
		if string(s.DeviceID) == string(id[:]) && (s.Tenant == tenant || s.Tenant == "") {
			return s, true
		}
	}
	return DeviceSecret{}, false
}

// SetDeviceKey stores the named-mode offline key of a device of tenant,
// replacing the one held.
func (o *Org) SetDeviceKey(tenant string, id protocol.DeviceID, secret []byte) {
	o.DeviceSecrets = slices.DeleteFunc(o.DeviceSecrets, func(s DeviceSecret) bool { return string(s.DeviceID) == string(id[:]) })
	o.DeviceSecrets = append(o.DeviceSecrets, DeviceSecret{Tenant: tenant, DeviceID: slices.Clone(id[:]), Secret: slices.Clone(secret)})
}

// Org is one paired organisation (an MSP console). Documents are kept as
// received, signed, and verified again when used.
type Org struct {
	ID             string            `json:"id"`   // local name, from Name
	Name           string            `json:"name"` // MSP display name
	MSPKey         []byte            `json:"msp_key"`
	Console        string            `json:"console"` // console PeerAddr text
	ConsoleNoise   []byte            `json:"console_noise"`
	TechCert       protocol.Signed   `json:"tech_cert"`
	Policies       []protocol.Signed `json:"policies"`
	Directory      []protocol.Signed `json:"directory"`
	Removed        []protocol.Signed `json:"removed,omitempty"` // certificates of devices the MSP removed (SPEC.md 11.10), to name them and refuse their codes
	OfflineSecrets []TenantSecret    `json:"offline_secrets,omitempty"`
	DeviceSecrets  []DeviceSecret    `json:"device_secrets,omitempty"`
	PairedAt       int64             `json:"paired_at"`
	UpdatedAt      int64             `json:"updated_at"`
}

// MSP returns the pinned MSP authority key.
func (o *Org) MSP() (k protocol.IdentityKey) { copy(k[:], o.MSPKey); return k }

// ConsoleKey returns the console's Noise static key.
func (o *Org) ConsoleKey() (k protocol.NoiseKey) { copy(k[:], o.ConsoleNoise); return k }

// ConsoleAddr parses the console's address.
func (o *Org) ConsoleAddr() (protocol.PeerAddr, error) { return protocol.ParsePeerAddr(o.Console) }

// Wallet is an opened state directory.
type Wallet struct {
	dir   string
	phone Phone
}

// Create initialises dir with fresh keys. It fails with ErrExists when dir
// already holds a phone.
func Create(dir, relay string, pins [][32]byte, approval *biometric.Key, rand io.Reader) (*Wallet, error) {
	if err := protocol.CheckRelayAddr(relay); err != nil {
		return nil, fmt.Errorf("wallet: relay: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, phoneFile)); err == nil {
		return nil, ErrExists
	}
	if err := os.MkdirAll(filepath.Join(dir, orgsDir), 0o700); err != nil {
		return nil, fmt.Errorf("wallet: create state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wallet: state directory mode: %w", err)
	}
	kp, err := protocol.CipherSuite.GenerateKeypair(rand)
	if err != nil {
		return nil, fmt.Errorf("wallet: noise key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("wallet: identity key: %w", err)
	}
	w := &Wallet{dir: dir, phone: Phone{Relay: relay, NoisePriv: kp.Private, NoisePub: kp.Public, IDSeed: seed}}
	for _, p := range pins {
		w.phone.RelayPins = append(w.phone.RelayPins, p[:])
	}
	der, err := approval.Marshal()
	if err != nil {
		return nil, fmt.Errorf("wallet: approval key: %w", err)
	}
	if err := writeFile(dir, approvalFile, der); err != nil {
		return nil, err
	}
	if err := w.savePhone(); err != nil {
		return nil, err
	}
	return w, nil
}

// Open opens an initialised state directory.
func Open(dir string) (*Wallet, error) {
	b, err := os.ReadFile(filepath.Join(dir, phoneFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNotInitialised, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	w := &Wallet{dir: dir}
	if err := json.Unmarshal(b, &w.phone); err != nil {
		return nil, fmt.Errorf("wallet: read %s: %w", phoneFile, err)
	}
	if len(w.phone.NoisePriv) != 32 || len(w.phone.NoisePub) != 32 || len(w.phone.IDSeed) != ed25519.SeedSize {
		return nil, fmt.Errorf("wallet: %s holds malformed keys", phoneFile)
	}
	return w, nil
}

// Dir returns the state directory.
func (w *Wallet) Dir() string { return w.dir }

// Phone returns the phone's configuration and keys.
func (w *Wallet) Phone() *Phone { return &w.phone }

// ApprovalKey loads the approval key behind gate.
func (w *Wallet) ApprovalKey(gate biometric.Gate) (*biometric.Key, error) {
	der, err := os.ReadFile(filepath.Join(w.dir, approvalFile))
	if err != nil {
		return nil, fmt.Errorf("wallet: approval key: %w", err)
	}
	return biometric.Parse(der, gate)
}

func (w *Wallet) savePhone() error {
	b, err := json.MarshalIndent(&w.phone, "", "  ")
	if err != nil {
		return fmt.Errorf("wallet: encode phone: %w", err)
	}
	return writeFile(w.dir, phoneFile, b)
}

var orgIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// OrgID turns a display name into an organisation id: lowercase letters,
// digits and dashes.
func OrgID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	id := strings.TrimRight(b.String(), "-")
	if len(id) > 48 {
		id = strings.TrimRight(id[:48], "-")
	}
	if id == "" {
		id = "org"
	}
	return id
}

// Orgs returns every paired organisation, sorted by id.
func (w *Wallet) Orgs() ([]*Org, error) {
	ents, err := os.ReadDir(filepath.Join(w.dir, orgsDir))
	if err != nil {
		return nil, fmt.Errorf("wallet: list organisations: %w", err)
	}
	var out []*Org
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !orgIDRe.MatchString(id) {
			continue
		}
		o, err := w.Org(id)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b *Org) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Org loads one organisation by id.
func (w *Wallet) Org(id string) (*Org, error) {
	if !orgIDRe.MatchString(id) {
		return nil, fmt.Errorf("%w %q", ErrUnknownOrg, id)
	}
	b, err := os.ReadFile(filepath.Join(w.dir, orgsDir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w %q", ErrUnknownOrg, id)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	var o Org
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("wallet: read organisation %s: %w", id, err)
	}
	if o.ID != id {
		return nil, fmt.Errorf("wallet: organisation file %s names %q", id, o.ID)
	}
	return &o, nil
}

// FindOrg resolves what a technician typed: an id, or a display name
// (case-insensitive).
func (w *Wallet) FindOrg(name string) (*Org, error) {
	if o, err := w.Org(name); err == nil {
		return o, nil
	}
	orgs, err := w.Orgs()
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		if strings.EqualFold(o.Name, name) {
			return o, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownOrg, name)
}

// AssignID gives a newly paired organisation its id: the id of an
// organisation with the same MSP key (re-pairing replaces it), or a fresh
// id derived from its name.
func (w *Wallet) AssignID(o *Org) error {
	orgs, err := w.Orgs()
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	for _, h := range orgs {
		if string(h.MSPKey) == string(o.MSPKey) {
			o.ID = h.ID
			return nil
		}
		taken[h.ID] = true
	}
	base := OrgID(o.Name)
	o.ID = base
	for i := 2; taken[o.ID]; i++ {
		o.ID = fmt.Sprintf("%s-%d", base, i)
	}
	return nil
}

// SaveOrg writes an organisation. The first organisation saved becomes the
// current one.
func (w *Wallet) SaveOrg(o *Org) error {
	if !orgIDRe.MatchString(o.ID) {
		return fmt.Errorf("wallet: bad organisation id %q", o.ID)
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("wallet: encode organisation: %w", err)
	}
	if err := writeFile(filepath.Join(w.dir, orgsDir), o.ID+".json", b); err != nil {
		return err
	}
	if w.phone.Current == "" {
		return w.SetCurrent(o.ID)
	}
	return nil
}

// SetCurrent selects the organisation commands act on.
func (w *Wallet) SetCurrent(id string) error {
	if _, err := w.Org(id); err != nil {
		return err
	}
	w.phone.Current = id
	return w.savePhone()
}

// Current returns the current organisation, or ErrNoOrg.
func (w *Wallet) Current() (*Org, error) {
	if w.phone.Current == "" {
		return nil, ErrNoOrg
	}
	return w.Org(w.phone.Current)
}

// writeFile replaces dir/name atomically with mode 0600.
func writeFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("wallet: write %s: %w", name, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("wallet: write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("wallet: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wallet: sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wallet: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("wallet: replace %s: %w", name, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}
