// Package daemon is the running agent (`jitkey-agent run`): it opens the
// state directory (keys, SQLite store with its integrity check), returns
// every account to a safe state (crash recovery) before anything else,
// connects to the home relay (reconnecting; a relay socket that cannot
// open leaves it serving offline codes while it retries), answers QR logins and policy
// pushes, ships audit records to the console, ends sessions at their
// deadline, and serves login surfaces on the local socket.
//
// Every access decision is taken from the local store: the relay and the
// console may be down; only the phone must reach the agent for a QR login.
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/breakglass"
	"github.com/jitkey/jitkey/agent/dcagent"
	"github.com/jitkey/jitkey/agent/dcclient"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/keys"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/login"
	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/agent/vault"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// Config configures Run.
type Config struct {
	StateDir   string
	Backend    accounts.Backend
	MaxNameLen int
	// IPCPath is the login surfaces' socket. Its directory is created mode
	// 0700 if missing, and must otherwise be the agent's with mode 0700
	// (see ipc.Listen).
	IPCPath string
	// IPCListen, if set, opens the login surfaces' endpoint in place of
	// the Unix socket at IPCPath (Windows: winhelper/pipe's named pipe;
	// IPCPath then only names it in logs and Info).
	IPCListen func(ctx context.Context) (ipcserver.Listener, error)
	Relay     RelayFactory
	// RelayRetry is the first delay before Relay is called again after
	// it failed with a socket error (no UDP): the agent then serves
	// offline, and retries with the delay doubling up to 64 times this
	// (default DefaultRelayRetry).
	RelayRetry time.Duration
	// Rotation of login QR codes (default login.DefaultRotation).
	Rotation time.Duration
	// ShipInterval of audit records (default audit.ShipInterval).
	ShipInterval time.Duration
	// Ready, if set, is called once the agent serves.
	Ready  func(Info)
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// StoreConfig is passed to store.Open (fault injection in tests).
	StoreConfig store.Config
	// PushTimeout bounds each wait of a policy push session for the
	// console's next message and for sending the ack (default
	// DefaultPushTimeout), so a push that stops halfway returns its
	// session slot.
	PushTimeout time.Duration
	// MaxSessions bounds the end-to-end sessions served at once (default
	// channel's, 1024).
	MaxSessions int
	// Vault seals the offline-code secrets at rest (default: the key file
	// in StateDir, vault.OpenFileKey).
	Vault vault.Sealer
	// Heartbeat is how often an idle agent contacts the console (default
	// DefaultHeartbeat); offline codes count their day limit from it.
	Heartbeat time.Duration
	// Push configures push logins (SPEC.md 11.5); zero fields take the
	// package push defaults. Store, Audit, Lifecycle, Dial, Now, Rand,
	// Logger, Recorded and OfflineKey are set by Run.
	Push push.Config
	// ProvisionAccounts creates, disabled, the accounts of the
	// technicians the policy admits on this computer before their first
	// login, for login surfaces that look an account up before
	// authenticating (sshd). Off by default: on a workstation the
	// accounts are created at the first login.
	ProvisionAccounts bool
	// DC, if set, runs the domain controller role (SPEC.md 11.7): JIT
	// domain accounts in this directory, FlowDomain answered for the
	// domain-joined workstations of the tenant.
	DC dcagent.Directory
	// Domain is the NetBIOS name of the domain of a domain-joined
	// workstation: the login surface gets DOMAIN\account for a domain
	// account (SPEC.md 5.7.3, 11.7); "" gives the account name alone.
	Domain string
}

// domainJoined reports whether the agent's own certificate says
// DomainJoined.
func domainJoined(enr *store.Enrollment) bool {
	var d protocol.DeviceCert
	return enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, enr.MSPKey, &d) == nil && d.DomainJoined && !d.DC
}

// DefaultHeartbeat is the default Config.Heartbeat.
const DefaultHeartbeat = time.Hour

// DefaultPushTimeout is the default Config.PushTimeout, the console's
// own session timeout.
const DefaultPushTimeout = 30 * time.Second

// Info describes a running agent.
type Info struct {
	IPC      string
	Addr     protocol.PeerAddr
	DeviceID protocol.DeviceID
	Name     string
	Tenant   string
}

// ErrNotEnrolled is returned by Run for a state directory without an
// enrollment.
var ErrNotEnrolled = errors.New("daemon: not enrolled (run jitkey-agent enroll first)")

// Run runs the agent until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = DefaultPushTimeout
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.RelayRetry <= 0 {
		cfg.RelayRetry = DefaultRelayRetry
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, err := keys.Load(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	dbPath := filepath.Join(cfg.StateDir, enroll.DBFile)
	st, err := store.Open(ctx, dbPath, cfg.StoreConfig)
	if errors.Is(err, store.ErrCorrupt) {
		// Recover cannot run without the store: disable every account
		// jitkey marked as its own before stopping, so none stays enabled.
		names, lerr := lifecycle.Lockdown(ctx, cfg.Backend, cfg.Rand)
		log.Error("agent database corrupt; jitkey accounts disabled, agent stopped", "db", dbPath, "disabled", names, "lockdown_err", lerr)
		return errors.Join(fmt.Errorf("daemon: %w; %d jitkey account(s) disabled; restore or move away %s to start", err, len(names), dbPath), lerr)
	}
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer st.Close()
	var enr store.Enrollment
	if err := st.View(ctx, func(tx *store.Tx) error { enr, err = tx.Enrollment(); return err }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotEnrolled
		}
		return fmt.Errorf("daemon: %w", err)
	}
	rec := audit.NewRecorder(k.Identity, enr.DeviceID, cfg.Now)

	var shipper *audit.Shipper
	mgr := lifecycle.New(lifecycle.Config{
		Backend: cfg.Backend, Store: st, Audit: rec, Rand: cfg.Rand, Now: cfg.Now, MaxNameLen: cfg.MaxNameLen, Logger: log,
		Recorded: func() {
			if shipper != nil {
				shipper.Poke()
			}
		},
	})
	// Crash recovery comes first: no login is served while an account may
	// be enabled without a session.
	if err := mgr.Recover(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	sealer := cfg.Vault
	if sealer == nil {
		if sealer, err = vault.OpenFileKey(cfg.StateDir, cfg.Rand); err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
	}
	// The device's break-glass recovery code (SPEC.md 11.15): the first
	// is created at the first start after enrollment and escrowed with
	// the next audit shipment.
	glass := breakglass.New(breakglass.Config{Store: st, Vault: sealer, Rand: cfg.Rand, Now: cfg.Now, Logger: log})
	if err := glass.Ensure(ctx); err != nil {
		log.Error("cannot create the break-glass recovery code", "err", err)
	}
	codes := offline.New(offline.Config{
		Store: st, Audit: rec, Lifecycle: mgr, Vault: sealer, Now: cfg.Now, Rand: cfg.Rand, Logger: log, BreakGlass: glass,
		Recorded: func() {
			if shipper != nil {
				shipper.Poke()
			}
		},
	})
	// contact runs whenever the console was reached: the offline
	// allowance starts again, keys used offline are retired, and a newer
	// shared-mode secret is kept (SPEC.md 11.6).
	contact := func(ctx context.Context, secrets []protocol.TenantSecret) {
		if err := codes.Contact(ctx); err != nil {
			log.Error("cannot record the contact with the console", "err", err)
		}
		if _, err := codes.SetTenantSecret(ctx, enr.Tenant, secrets); err != nil {
			log.Error("cannot store the shared offline secret", "err", err)
		}
	}

	build := func() (Relay, error) { return cfg.Relay(k.Identity, enr.Relay, enr.RelayPins, log) }
	rl, err := build()
	if err != nil && socketError(err) {
		// No socket for the relay (UDP blocked, or an emulator without
		// it): serve the login surfaces and offline codes, offline, and
		// keep trying in the background.
		log.Error("relay transport cannot start; offline codes only; retrying", "err", err)
		rl = newLateRelay(build, protocol.PeerAddr{Relay: enr.Relay, Mailbox: k.Mailbox()}, err, cfg.RelayRetry, log)
	} else if err != nil {
		return fmt.Errorf("daemon: relay: %w", err)
	}
	console, err := protocol.ParsePeerAddr(enr.Console)
	if err != nil {
		return fmt.Errorf("daemon: console address: %w", err)
	}
	addr := rl.Addr()
	online := func() (bool, <-chan struct{}) {
		if o, ok := rl.(interface {
			Online() (bool, <-chan struct{})
		}); ok {
			return o.Online()
		}
		return true, nil
	}
	// A domain-joined workstation asks its tenant's DC agent for domain
	// accounts (selective login, SPEC.md 11.7); the console lists the DC
	// agents in its policy push.
	var mux *channel.Mux
	var domainLogins *dcclient.Client
	var loginDomain login.Domain
	if cfg.DC == nil && domainJoined(&enr) {
		domainLogins = dcclient.New(dcclient.Config{
			Store: st, MSPKey: enr.MSPKey, Tenant: enr.Tenant, Domain: cfg.Domain,
			Dial: func(ctx context.Context, dc channel.DialConfig) (*channel.Conn, error) { return mux.Dial(ctx, dc) },
		})
		loginDomain = domainLogins
	}
	// pushes (below) also asks the second approvers of QR logins (SPEC.md
	// 11.14).
	var pushes *push.Server
	ls := login.New(login.Config{
		Store: st, Audit: rec, Lifecycle: mgr, Static: k.NoisePublic(), Addr: rl.Addr,
		Rotation: cfg.Rotation, Now: cfg.Now, Rand: cfg.Rand, Logger: log,
		Recorded: func() { shipper.Poke() }, OfflineKey: codes.NamedKey, Domain: loginDomain,
		CoApprover: login.CoApproverFunc(func(ctx context.Context, q *push.CoRequest) (*push.CoApproved, error) {
			return pushes.CoApprove(ctx, q)
		}),
	})
	// retire locks the computer down once the store records that the MSP
	// removed it (SPEC.md 11.10): open login requests end, every session
	// ends, every jitkey account stays disabled, logins are refused.
	retire := func(ctx context.Context) {
		var r store.Removal
		err := st.View(ctx, func(tx *store.Tx) error {
			var err error
			r, err = tx.Removal()
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			log.Error("cannot read the removal state", "err", err)
			return
		}
		ls.EndAll(login.ErrRemoved)
		if err := mgr.Retire(ctx, "device removed by the MSP"); err != nil {
			log.Error("device removed: not every session ended yet; retried", "err", err)
		}
		log.Warn("this computer was removed from jitkey by the MSP: sessions ended, jitkey accounts disabled, logins refused",
			"policy_version", r.Version, "serial", r.Serial)
		shipper.Poke()
	}
	// current reads the policy held and the agent's own device certificate.
	current := func(ctx context.Context) (protocol.Policy, protocol.DeviceCert, error) {
		var pol protocol.Policy
		var dev protocol.DeviceCert
		err := st.View(ctx, func(tx *store.Tx) error {
			var err error
			pol, _, err = policy.Current(tx)
			return err
		})
		if err != nil {
			return pol, dev, fmt.Errorf("read the policy: %w", err)
		}
		if err := enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, enr.MSPKey, &dev); err != nil {
			return pol, dev, fmt.Errorf("own device certificate: %w", err)
		}
		return pol, dev, nil
	}
	reauthorize := func(ctx context.Context) {
		pol, dev, err := current(ctx)
		if err != nil {
			log.Error("cannot decide sessions again", "err", err)
			return
		}
		n, err := mgr.Reauthorize(ctx, &pol, &dev)
		if err != nil {
			log.Error("access withdrawn: not every session ended yet; retried", "err", err)
		}
		if n > 0 {
			log.Warn("access withdrawn by the new policy: sessions ended", "sessions", n)
		}
	}
	// provision creates, disabled, the account of every technician the
	// policy admits here (named mode) or the shared account, for login
	// surfaces that look an account up before authenticating (sshd).
	provision := func(ctx context.Context) {
		if !cfg.ProvisionAccounts {
			return
		}
		pol, dev, err := current(ctx)
		if err != nil || pol.IsDeviceRevoked(dev.Serial) {
			return
		}
		// The break-glass account (SPEC.md 11.15), one per device in
		// both modes, so that sshd offers it too.
		bg := pol
		bg.LoginMode, bg.SharedAccount = protocol.ModeNamed, ""
		if name, err := mgr.Provision(ctx, protocol.BreakGlassUsername, protocol.BreakGlassUsername, &bg); err != nil {
			log.Warn("break-glass account not provisioned", "account", name, "err", err)
		}
		for _, e := range pol.Roster {
			c := e.Cert(pol.Tenant)
			if pol.Authorize(&c, &dev) != nil {
				continue
			}
			name, err := mgr.Provision(ctx, e.TechID, e.Username, &pol)
			if err != nil {
				log.Warn("account not provisioned", "technician", e.Username, "account", name, "err", err)
				continue
			}
			if pol.LoginMode == protocol.ModeShared {
				return // one account for everyone
			}
		}
	}
	applyPolicy := func(ctx context.Context, s protocol.Signed) {
		p, err := policy.Apply(ctx, st, rec, s, cfg.Now())
		if err != nil {
			log.Warn("policy not applied", "err", err)
		} else {
			log.Info("policy applied", "version", p.Version)
			if len(p.RevokedDevices) > 0 {
				retire(ctx)
			}
		}
		// Sessions are decided again under the policy now held (whether
		// this one applied or an older one stays): a revoked technician,
		// a withdrawn delegation or share-list entry ends the session at
		// once (SPEC.md 4, R-47).
		reauthorize(ctx)
		provision(ctx)
		shipper.Poke()
	}
	var dc *dcagent.Service
	if cfg.DC != nil {
		dc = dcagent.New(dcagent.Config{Store: st, Dir: cfg.DC, Audit: rec, MSPKey: enr.MSPKey, Tenant: enr.Tenant, Now: cfg.Now, Log: log})
		// Repair before serving: nothing enabled or in the admin group
		// without a live session. A DC that cannot be reached now is
		// repaired by the periodic expiry and sweep.
		if err := dc.Start(ctx); err != nil {
			log.Error("domain repair at start", "err", err)
		}
	}
	mux = channel.New(channel.Config{
		Relay: rl, Static: k.Noise, Logger: log, Rand: cfg.Rand, MaxSessions: cfg.MaxSessions,
		Accept: func(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
			switch h.Flow {
			case protocol.FlowQRLogin:
				return ls.Accept(ctx, h)
			case protocol.FlowPolicy:
				if h.From.Mailbox == console.Mailbox {
					return nil, enr.ConsoleNoise, nil
				}
			case protocol.FlowDomain:
				if dc != nil {
					return dc.Accept(ctx, h)
				}
			}
			return nil, protocol.NoiseKey{}, fmt.Errorf("daemon: flow %s not accepted from %s", h.Flow.Name(), h.From.Mailbox)
		},
		Handle: func(ctx context.Context, c *channel.Conn) {
			switch c.Flow {
			case protocol.FlowQRLogin:
				ls.Handle(ctx, c) // every wait bounded by login.Config.StepTimeout
			case protocol.FlowPolicy:
				handlePolicyPush(ctx, c, cfg.PushTimeout, st, applyPolicy, contact, log, dc, domainLogins)
			case protocol.FlowDomain:
				if dc != nil {
					dc.Serve(ctx, c)
				}
			}
		},
	})
	pcfg := cfg.Push
	pcfg.Store, pcfg.Audit, pcfg.Lifecycle, pcfg.Now, pcfg.Rand, pcfg.Logger = st, rec, mgr, cfg.Now, cfg.Rand, log
	pcfg.Recorded, pcfg.OfflineKey = func() { shipper.Poke() }, codes.NamedKey
	pcfg.Dial = func(ctx context.Context, d channel.DialConfig) (*channel.Conn, error) { return mux.Dial(ctx, d) }
	pushes = push.New(pcfg)
	if err := pushes.Start(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer pushes.Wait() // before the store closes
	shipper = audit.NewShipper(audit.ShipperConfig{
		Store: st, Logger: log, Interval: cfg.ShipInterval,
		Dial: func(ctx context.Context) (*channel.Conn, error) {
			return mux.Dial(ctx, channel.DialConfig{To: console, Flow: protocol.FlowAudit, PeerStatic: enr.ConsoleNoise})
		},
		Status: func() (uint64, string, string) {
			var v uint64
			_ = st.View(context.Background(), func(tx *store.Tx) error {
				p, _, err := policy.Current(tx)
				v = p.Version
				return err
			})
			return v, enr.Name, enr.OS
		},
		OnPolicy:   applyPolicy,
		OnAck:      func(ctx context.Context, ack *protocol.AuditAck) { contact(ctx, ack.OfflineSecrets) },
		Generation: func() uint64 { return codes.Generation(context.Background()) },
		Heartbeat:  cfg.Heartbeat,
		Now:        cfg.Now,
		Escrow: func(ctx context.Context, conn func(context.Context) (*channel.Conn, error)) error {
			// A removed device escrows nothing: the console would refuse
			// it, and the device's logins are disabled (11.10). A removal
			// state that cannot be read sends no code either; the
			// shipper tries again.
			err := st.View(ctx, func(tx *store.Tx) error { _, err := tx.Removal(); return err })
			if err == nil {
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("daemon: escrow: read the removal state: %w", err)
			}
			return glass.Escrow(ctx, conn)
		},
	})

	// A removed agent stays locked down across restarts.
	retire(ctx)
	provision(ctx)

	var ln ipcserver.Listener
	if cfg.IPCListen != nil {
		ln, err = cfg.IPCListen(ctx)
	} else {
		ln, err = ipc.Listen(ctx, ipc.Config{Path: cfg.IPCPath, Logger: log})
	}
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	status := func() (ipcserver.Status, <-chan struct{}) {
		on, changed := online()
		var otpOnline bool
		_ = st.View(ctx, func(tx *store.Tx) error {
			p, _, err := policy.Current(tx)
			otpOnline = p.OTPWhileOnline
			return err
		})
		return ipcserver.Status{Online: on, OTP: !on || otpOnline}, changed
	}
	surfaces := ipcserver.New(ipcserver.Config{Login: ls, Lifecycle: mgr, Offline: codes, Push: pushes, Status: status, Logger: log})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				log.Error("component stopped", "component", name, "err", err)
				select {
				case errc <- fmt.Errorf("daemon: %s: %w", name, err):
				default:
				}
				cancel()
			}
		}()
	}
	goRun("relay", rl.Run)
	goRun("channel", func(ctx context.Context) error { return mux.Pump(ctx, rl.Recv) })
	goRun("ipc", func(ctx context.Context) error { return surfaces.Serve(ctx, ln) })
	goRun("lifecycle", func(ctx context.Context) error { mgr.Run(ctx, time.Second); return nil })
	goRun("audit", func(ctx context.Context) error { shipper.Run(ctx); return nil })
	goRun("reconnect", func(ctx context.Context) error { shipOnReconnect(ctx, online, shipper.Poke); return nil })
	if dc != nil {
		goRun("domain", func(ctx context.Context) error {
			expire := time.NewTicker(10 * time.Second)
			defer expire.Stop()
			sweep := time.NewTicker(time.Hour)
			defer sweep.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-expire.C:
					if err := dc.Expire(ctx); err != nil {
						log.Warn("domain session expiry; retried", "err", err)
					}
				case <-sweep.C:
					if deleted, err := dc.Sweep(ctx); err != nil || len(deleted) > 0 {
						log.Info("domain inactivity sweep", "deleted", deleted, "err", err)
					}
					shipper.Poke()
				}
			}
		})
	}
	goRun("cleanup", func(ctx context.Context) error {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			var days int
			_ = st.View(ctx, func(tx *store.Tx) error {
				p, _, err := policy.Current(tx)
				days = p.InactivityDays
				return err
			})
			if err := mgr.DeleteInactive(ctx, days); err != nil {
				log.Warn("inactive account cleanup", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	log.Info("agent running", "device", enr.Name, "tenant", enr.Tenant, "mailbox", addr.Mailbox.String(), "relay", addr.Relay, "ipc", cfg.IPCPath)
	if cfg.Ready != nil {
		cfg.Ready(Info{IPC: cfg.IPCPath, Addr: addr, DeviceID: enr.DeviceID, Name: enr.Name, Tenant: enr.Tenant})
	}
	<-ctx.Done()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// handlePolicyPush serves one FlowPolicy session: a PolicyPush, applied,
// then a PolicyAck. Each wait on the console is bounded by timeout: a
// push that stops halfway (a console gone, a frame lost, or a relay
// replaying the console's first handshake message under another session
// id, which KK does not bind) returns its session slot then. Applying
// runs on ctx, not under the timeout, so ending sessions the policy
// withdraws is never cut short.
func handlePolicyPush(ctx context.Context, c *channel.Conn, timeout time.Duration, st *store.Store, apply func(context.Context, protocol.Signed),
	contact func(context.Context, []protocol.TenantSecret), log *slog.Logger, dc *dcagent.Service, ws *dcclient.Client) {
	bounded := func(f func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return f(ctx)
	}
	var push protocol.PolicyPush
	if err := bounded(func(ctx context.Context) error { return c.Recv(ctx, protocol.MsgPolicyPush, &push) }); err != nil {
		log.Info("policy push", "err", err)
		return
	}
	if push.Page != 0 || push.More {
		// An agent takes its tenant's policy on one page (SPEC.md 8.3, R-43).
		log.Warn("policy push refused: paged", "page", push.Page, "more", push.More)
		_ = bounded(func(ctx context.Context) error { return c.SendError(ctx, protocol.CodeBadRequest, "bad request") })
		return
	}
	for _, s := range push.Policies {
		apply(ctx, s)
	}
	if dc != nil {
		// A DC agent's push lists the tenant's domain-joined workstations
		// (SPEC.md 8.2 PolicyPush, 11.7): FlowDomain is KK.
		if n, err := dc.SetWorkstations(ctx, push.Directory); err != nil {
			log.Error("domain workstations not stored", "err", err)
		} else {
			log.Info("domain workstations", "count", n)
		}
	}
	if ws != nil {
		// A domain-joined workstation's push lists its tenant's DC
		// agents (SPEC.md 8.2 PolicyPush, 11.7).
		if n, targets, err := ws.SetDirectory(ctx, push.Directory); err != nil {
			log.Error("domain controllers not stored", "err", err)
		} else {
			log.Info("domain controllers", "count", n, "rdp_targets", targets)
		}
	}
	contact(ctx, push.OfflineSecrets)
	var ack protocol.PolicyAck
	_ = st.View(ctx, func(tx *store.Tx) error {
		p, _, err := policy.Current(tx)
		if err == nil {
			ack.Versions = []protocol.TenantVersion{{Tenant: p.Tenant, Version: p.Version}}
		}
		return nil
	})
	if err := bounded(func(ctx context.Context) error { return c.Send(ctx, protocol.MsgPolicyAck, &ack) }); err != nil {
		log.Info("policy ack", "err", err)
	}
}

// shipOnReconnect calls poke (the audit shipper's) each time the relay
// connection comes up, the first time included, until ctx ends or online
// reports no changes (a relay that is always up). Records written while
// offline (an offline login's journal) then reach the console at once,
// and with the acknowledgement the keys used offline are retired
// (SPEC.md 11.6), instead of at the shipper's next retry or interval, up
// to audit.RetryMax or audit.ShipInterval (30 s each) after the relay is
// back.
func shipOnReconnect(ctx context.Context, online func() (bool, <-chan struct{}), poke func()) {
	was := false
	for {
		on, changed := online()
		if on && !was {
			poke()
		}
		was = on
		if changed == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
