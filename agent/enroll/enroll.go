// Package enroll enrols an agent with the console (FlowEnroll, Noise
// IKpsk1 with the PSK from the enrollment token): it creates the agent's
// keys, proves possession of the identity key over the handshake hash,
// receives the device certificate and the tenant policy, verifies both
// against the MSP key in the token — which is pinned from then on — and
// stores them, with policy.applied audited, in one transaction.
package enroll

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// DBFile is the database's name inside the state directory.
const DBFile = "agent.db"

// ErrEnrolled is returned when the state directory is already enrolled.
var ErrEnrolled = errors.New("enroll: agent already enrolled")

// Relay is what enrollment needs of a relay connection.
type Relay interface {
	channel.Relay
	Recv(ctx context.Context) (protocol.PeerAddr, []byte, error)
	Run(ctx context.Context) error
}

// Config configures Enroll.
type Config struct {
	StateDir string
	Token    string
	Name     string // device name shown on phones
	OS       string // "linux", "windows", "darwin"
	// DomainJoined and DC are declared to the console (EnrollRequest 3,
	// 4; SPEC.md 8.2, 11.7): a domain-joined workstation, a domain
	// controller.
	DomainJoined, DC bool
	// Relay overrides the home relay (default: the console's relay).
	Relay string
	// Dial builds the relay connection.
	Dial func(identity ed25519.PrivateKey, home string, pins [][32]byte) (Relay, error)
	// Timeout bounds the exchange with the console (default 30 s).
	Timeout time.Duration
	Now     func() time.Time
	Rand    io.Reader
	Logger  *slog.Logger
	// Vault seals the shared-mode offline secret (default: the key file
	// in StateDir, vault.OpenFileKey).
	Vault vault.Sealer
}

// Enroll runs enrollment and returns what was stored.
func Enroll(ctx context.Context, cfg Config) (store.Enrollment, error) {
	var e store.Enrollment
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tok, err := protocol.DecodeEnrollToken(cfg.Token, cfg.Now())
	if err != nil {
		return e, fmt.Errorf("enroll: token: %w", err)
	}
	console, _ := protocol.ParsePeerAddr(tok.Console) // checked by DecodeEnrollToken
	home := cfg.Relay
	if home == "" {
		home = console.Relay
	}
	if err := protocol.CheckRelayAddr(home); err != nil {
		return e, fmt.Errorf("enroll: relay: %w", err)
	}

	st, err := store.Open(ctx, filepath.Join(cfg.StateDir, DBFile), store.Config{})
	if err != nil {
		// The directory may not exist yet: keys.Generate creates it 0700.
		if _, kerr := keys.Generate(cfg.StateDir, cfg.Rand); kerr != nil && !errors.Is(kerr, keys.ErrExist) {
			return e, fmt.Errorf("enroll: %w", kerr)
		}
		if st, err = store.Open(ctx, filepath.Join(cfg.StateDir, DBFile), store.Config{}); err != nil {
			return e, fmt.Errorf("enroll: %w", err)
		}
	}
	defer st.Close()
	if err := st.View(ctx, func(tx *store.Tx) error { _, err := tx.Enrollment(); return err }); err == nil {
		return e, ErrEnrolled
	}
	k, err := keys.Load(cfg.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		k, err = keys.Generate(cfg.StateDir, cfg.Rand)
	}
	if err != nil { // keys.ErrUnsafeMode among others: not replaced
		return e, fmt.Errorf("enroll: %w", err)
	}

	rl, err := cfg.Dial(k.Identity, home, tok.RelayPins)
	if err != nil {
		return e, fmt.Errorf("enroll: relay: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = rl.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	mux := channel.New(channel.Config{Relay: rl, Static: k.Noise, Logger: log, Rand: cfg.Rand})
	pumpDone := make(chan struct{})
	go func() { defer close(pumpDone); _ = mux.Pump(ctx, rl.Recv) }()
	defer func() { cancel(); <-pumpDone }()

	psk, err := protocol.Derive(tok.Secret[:], protocol.LabelEnrollPSK, nil, 32)
	if err != nil {
		return e, err
	}
	defer clear(psk)
	sid, err := protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession)
	if err != nil {
		return e, err
	}
	var conn *channel.Conn
	for {
		// The relay connection may still be coming up: retry the dial
		// until the timeout.
		conn, err = mux.Dial(ctx, channel.DialConfig{To: console, Flow: protocol.FlowEnroll, PeerStatic: tok.ConsoleNoise, PSK: psk, Session: sid})
		if err == nil {
			break
		}
		log.Info("enroll: console not reached yet", "err", err)
		select {
		case <-ctx.Done():
			return e, fmt.Errorf("enroll: console unreachable: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	defer conn.Close()
	req := protocol.EnrollRequest{
		Name: cfg.Name, OS: cfg.OS, DomainJoined: cfg.DomainJoined, DC: cfg.DC, IdentityKey: k.IdentityPublic(), Relay: home,
		IdentitySig: ed25519.Sign(k.Identity, protocol.ProofInput("identity", conn.Session.HandshakeHash())),
	}
	if err := conn.Send(ctx, protocol.MsgEnrollRequest, &req); err != nil {
		return e, fmt.Errorf("enroll: send: %w", err)
	}
	var resp protocol.EnrollResponse
	if err := conn.Recv(ctx, protocol.MsgEnrollResponse, &resp); err != nil {
		return e, fmt.Errorf("enroll: %w", err)
	}
	var dc protocol.DeviceCert
	if err := resp.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, tok.MSPKey, &dc); err != nil {
		return e, fmt.Errorf("enroll: device certificate: %w", err)
	}
	switch {
	case dc.Tenant != tok.Tenant:
		return e, fmt.Errorf("enroll: device certificate: %w", protocol.ErrWrongTenant)
	case dc.NoiseKey != k.NoisePublic() || dc.IdentityKey != k.IdentityPublic():
		return e, fmt.Errorf("enroll: device certificate: %w: not for this agent's keys", protocol.ErrInvalidDoc)
	}
	if err := dc.Valid(cfg.Now()); err != nil {
		return e, fmt.Errorf("enroll: device certificate: %w", err)
	}
	pol, err := policy.Verify(resp.Policy, tok.MSPKey, tok.Tenant)
	if err != nil {
		return e, fmt.Errorf("enroll: policy: %w", err)
	}
	e = store.Enrollment{
		DeviceCert: resp.DeviceCert, MSPKey: tok.MSPKey, Tenant: tok.Tenant, DeviceID: dc.DeviceID,
		Console: tok.Console, ConsoleNoise: tok.ConsoleNoise, RelayPins: tok.RelayPins, Relay: home, Name: dc.Name, OS: dc.OS,
	}
	rec := audit.NewRecorder(k.Identity, dc.DeviceID, cfg.Now)
	body, err := resp.Policy.Encode()
	if err != nil {
		return e, err
	}
	err = st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.SetEnrollment(e); err != nil {
			return err
		}
		if err := tx.PutPolicy(store.PolicyRow{Tenant: pol.Tenant, Version: pol.Version, Signed: body, Applied: cfg.Now()}); err != nil {
			return err
		}
		// Enrollment is the first contact with the console: offline
		// codes count their limits from here (SPEC.md 11.6).
		if err := tx.SetContact(store.Contact{Last: cfg.Now().UnixMilli()}); err != nil {
			return err
		}
		return rec.Append(tx, protocol.AuditRecord{Event: audit.PolicyApplied, Detail: fmt.Sprintf("version %d, at enrollment", pol.Version)})
	})
	if err != nil {
		return e, fmt.Errorf("enroll: store: %w", err)
	}
	if len(resp.OfflineSecrets) > 0 {
		sealer := cfg.Vault
		if sealer == nil {
			if sealer, err = vault.OpenFileKey(cfg.StateDir, cfg.Rand); err != nil {
				return e, fmt.Errorf("enroll: %w", err)
			}
		}
		if _, err := offline.StoreTenantSecret(ctx, st, sealer, tok.Tenant, resp.OfflineSecrets); err != nil {
			return e, fmt.Errorf("enroll: %w", err)
		}
	}
	log.Info("enrolled", "device", dc.Name, "tenant", dc.Tenant, "policy", pol.Version)
	return e, nil
}
