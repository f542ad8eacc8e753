// Package console is the MSP authority's core: customer tenants,
// technicians, enrollment tokens, pairing codes, devices and share lists,
// signed tenant policies and the audit trail. Every operation runs in one
// store transaction and every change that agents or phones must learn about
// publishes a new signed tenant policy with a higher version.
//
// The online part (package console/server) calls Enroll, Pair, IngestAudit
// and the sync helpers; the command-line tool (console/cmd/jitkey-console)
// calls the rest. Both open the same state directory:
//
//	state/            0700
//	  console.db      SQLite (WAL), see package console/store
//	  msp.key         MSP authority key, see package console/authority
//	  identity.key    console relay identity
//	  noise.key       console Noise static key
package console

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jitkey/jitkey/console/authority"
	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// DBFile is the database's name inside the state directory.
const DBFile = "console.db"

// Validity of the certificates the console signs.
const (
	TechCertValidity   = 365 * 24 * time.Hour     // one year; re-pair to renew
	DeviceCertValidity = 5 * 365 * 24 * time.Hour // five years
)

// Errors callers branch on. A *RefusalError explains a refused command.
var (
	// ErrLocked: the operation signs, but the MSP key was not unlocked.
	ErrLocked = errors.New("console: this change must be signed; the MSP key is not unlocked")
	// ErrExpired: an enrollment token or pairing code is expired or used up.
	ErrExpired = errors.New("console: token or code expired or used up")
	// ErrRefused: a peer's request failed verification.
	ErrRefused = errors.New("console: request refused")
)

// Refusal is a command refused for a reason the user can fix.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, args ...any) error { return &Refusal{Reason: fmt.Sprintf(format, args...)} }

// Settings are the console's configuration, stored at init.
type Settings struct {
	Org       string
	Relay     string     // home relay "host:port"
	RelayPins [][32]byte // SHA-256 of accepted relay SPKIs
	MSPKey    protocol.IdentityKey
}

// Config configures a Console.
type Config struct {
	DB        *store.DB
	Peer      *authority.Peer
	Authority *authority.Authority // nil: operations that sign fail with ErrLocked
	Now       func() time.Time
	Rand      io.Reader
	Logger    *slog.Logger
}

// Console is the MSP authority over one state directory.
type Console struct {
	db   *store.DB
	peer *authority.Peer
	auth *authority.Authority
	now  func() time.Time
	rand io.Reader
	log  *slog.Logger
	set  Settings

	// dirMu guards dirSent: per DC agent, the digest of the domain-joined
	// directory it last acknowledged in this process (SPEC.md 8.2
	// PolicyPush). Empty at start, so every DC agent is sent its
	// directory once after the console starts.
	dirMu   sync.Mutex
	dirSent map[protocol.DeviceID][32]byte
}

// New returns a Console over an opened database; it reads the settings
// written by Init.
func New(ctx context.Context, cfg Config) (*Console, error) {
	c := &Console{db: cfg.DB, peer: cfg.Peer, auth: cfg.Authority, now: cfg.Now, rand: cfg.Rand, log: cfg.Logger,
		dirSent: map[protocol.DeviceID][32]byte{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	err := c.db.View(ctx, func(tx *store.Tx) error {
		var err error
		c.set, err = readSettings(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("console: read settings (was init run?): %w", err)
	}
	if c.auth != nil && c.auth.Public() != c.set.MSPKey {
		return nil, errors.New("console: msp.key does not match the database")
	}
	return c, nil
}

// Settings returns the console's configuration.
func (c *Console) Settings() Settings { return c.set }

// Addr is the console's relay address, which tokens and policies carry.
func (c *Console) Addr() protocol.PeerAddr {
	return protocol.PeerAddr{Relay: c.set.Relay, Mailbox: c.peer.Mailbox()}
}

// DB returns the console's database.
func (c *Console) DB() *store.DB { return c.db }

// Peer returns the console's relay identity and Noise key.
func (c *Console) Peer() *authority.Peer { return c.peer }

func (c *Console) unix() int64 { return c.now().Unix() }

func readSettings(tx *store.Tx) (Settings, error) {
	var s Settings
	org, err := tx.Meta("org")
	if err != nil {
		return s, err
	}
	relay, err := tx.Meta("relay")
	if err != nil {
		return s, err
	}
	pins, err := tx.Meta("relay_pins")
	if err != nil {
		return s, err
	}
	msp, err := tx.Meta("msp_key")
	if err != nil {
		return s, err
	}
	if len(pins)%32 != 0 || len(msp) != 32 {
		return s, errors.New("console: damaged settings")
	}
	s.Org, s.Relay = string(org), string(relay)
	for i := 0; i < len(pins); i += 32 {
		s.RelayPins = append(s.RelayPins, [32]byte(pins[i:i+32]))
	}
	copy(s.MSPKey[:], msp)
	return s, nil
}

// InitOptions configure Init.
type InitOptions struct {
	Org        string
	Relay      string
	RelayPins  [][32]byte
	Passphrase []byte // empty: msp.key is not sealed
	ScryptLogN int    // 0: authority.DefaultScryptLogN
	Rand       io.Reader
}

// Init creates a state directory: keys, database and settings. It refuses
// a directory that already holds a console.
func Init(ctx context.Context, dir string, o InitOptions) (protocol.PeerAddr, protocol.IdentityKey, error) {
	var none protocol.PeerAddr
	if err := protocol.CheckRelayAddr(o.Relay); err != nil {
		return none, protocol.IdentityKey{}, refuse("relay address %q must be host:port", o.Relay)
	}
	if len(o.RelayPins) == 0 {
		return none, protocol.IdentityKey{}, refuse("at least one relay pin is needed (jitkey-relay prints pin=<hex> at start)")
	}
	if o.Org == "" || len(o.Org) > protocol.MaxNameLen || !printable(o.Org) {
		return none, protocol.IdentityKey{}, refuse("organisation name must be 1..%d printable characters", protocol.MaxNameLen)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err == nil {
		return none, protocol.IdentityKey{}, refuse("%s already holds a console; refusing to overwrite it", dir)
	}
	auth, peer, err := authority.Create(dir, authority.Options{Passphrase: o.Passphrase, ScryptLogN: o.ScryptLogN, Rand: o.Rand})
	if errors.Is(err, authority.ErrExists) {
		return none, protocol.IdentityKey{}, refuse("%v; refusing to overwrite", err)
	}
	if err != nil {
		return none, protocol.IdentityKey{}, err
	}
	db, err := store.Open(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		return none, protocol.IdentityKey{}, err
	}
	defer db.Close()
	msp := auth.Public()
	var pins []byte
	for _, p := range o.RelayPins {
		pins = append(pins, p[:]...)
	}
	err = db.Update(ctx, func(tx *store.Tx) error {
		for k, v := range map[string][]byte{
			"org": []byte(o.Org), "relay": []byte(o.Relay), "relay_pins": pins, "msp_key": msp[:],
		} {
			if err := tx.SetMeta(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return none, msp, err
	}
	return protocol.PeerAddr{Relay: o.Relay, Mailbox: protocol.MailboxFor(peer.Identity.Public().(ed25519.PublicKey))}, msp, nil
}

// Open opens the state directory's database and peer keys. The caller
// closes the returned database.
func Open(ctx context.Context, dir string) (*store.DB, *authority.Peer, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, refuse("state directory %s: %v (run jitkey-console init first)", dir, errors.Unwrap(err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, refuse("state directory %s is accessible to others (mode %v); expected 0700", dir, fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		return nil, nil, refuse("%s holds no console database (run jitkey-console init first)", dir)
	}
	peer, err := authority.LoadPeer(dir)
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		return nil, nil, err
	}
	return db, peer, nil
}
