// Package peertest provides a fake console and fake agents that speak the
// phone's flows (pairing, QR login, sync, policy push) over an in-memory
// network (channel/channeltest), for tests of the phone simulator. They
// follow docs/flows.md, check what the real peers check, and record what
// they saw; they are not the real console and agent.
package peertest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// Network connects a fake peer to relays: it starts a mux for the peer's
// keys on relay and returns it with the peer's address and a stop function
// that disconnects the peer and waits for its sessions.
type Network interface {
	Join(relay string, identity ed25519.PrivateKey, static noise.DHKey,
		accept func(context.Context, channel.Hello) ([]byte, protocol.NoiseKey, error),
		handle func(context.Context, *channel.Conn)) (mux *channel.Mux, addr protocol.PeerAddr, stop func(), err error)
}

// Memory is a Network over channeltest.
type Memory struct{ Net *channeltest.Network }

// Join implements Network.
func (m Memory) Join(relay string, identity ed25519.PrivateKey, static noise.DHKey,
	accept func(context.Context, channel.Hello) ([]byte, protocol.NoiseKey, error),
	handle func(context.Context, *channel.Conn)) (*channel.Mux, protocol.PeerAddr, func(), error) {
	addr := protocol.PeerAddr{Relay: relay, Mailbox: protocol.MailboxFor(identity.Public().(ed25519.PublicKey))}
	mux, stop := JoinMemory(m.Net, addr, static, accept, handle)
	return mux, addr, stop, nil
}

// JoinMemory connects a peer to an in-memory network and starts its mux.
func JoinMemory(n *channeltest.Network, addr protocol.PeerAddr, static noise.DHKey,
	accept func(context.Context, channel.Hello) ([]byte, protocol.NoiseKey, error),
	handle func(context.Context, *channel.Conn)) (mux *channel.Mux, stop func()) {
	p := n.Join(addr)
	mux = channel.New(channel.Config{Relay: p, Static: static, Accept: accept, Handle: handle, HandshakeTimeout: 3 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mux.Pump(ctx, p.Recv) }()
	return mux, func() { n.Leave(addr); cancel(); <-done }
}

// newPeerKeys returns a fresh identity key and Noise key pair.
func newPeerKeys() (ed25519.PrivateKey, noise.DHKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	kp, err := protocol.CipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		panic(err)
	}
	return priv, kp
}

// NoiseKeyOf returns the public half of a Noise key pair.
func NoiseKeyOf(k noise.DHKey) (n protocol.NoiseKey) { copy(n[:], k.Public); return n }

// DefaultPolicy returns a valid named-mode policy for tenant.
func DefaultPolicy(tenant string, version uint64) protocol.Policy {
	return protocol.Policy{
		Tenant: tenant, Version: version, IssuedAt: time.Now().Unix(), LoginMode: protocol.ModeNamed,
		Offline:    protocol.OfflineParams{Digits: 6, Period: 30, Skew: 1, MaxFailures: 5, LockoutBase: 30, LockoutLimit: 3600},
		MaxSession: 8 * 3600, InactivityDays: 30,
	}
}

type pending struct {
	username string
	grants   []protocol.Grant
	psk      []byte
	used     bool
}

// Console is a fake MSP console: the MSP authority, pairing and pushes.
type Console struct {
	Name   string
	MSP    ed25519.PrivateKey
	Addr   protocol.PeerAddr
	Static noise.DHKey
	Mux    *channel.Mux

	mu       sync.Mutex
	serial   uint64
	policies map[string]protocol.Policy
	devices  []protocol.DeviceCert
	pairings map[protocol.SessionID]*pending
	phones   []protocol.TechCert // paired technicians
	// Acks records every PolicyAck received.
	Acks       []protocol.PolicyAck
	pageBudget int
	tamper     func([]protocol.PolicyPush) []protocol.PolicyPush
	refusals   []protocol.PeerError
	secrets    map[string]protocol.TenantSecret // shared-mode tenant secrets
	stop       func()
}

// SetOfflineSecret gives a shared-mode tenant its offline secret: phones
// of technicians who may see the tenant get their tech key derived from it
// (SPEC.md 9), with the generation, in every transfer.
func (c *Console) SetOfflineSecret(tenant string, secret []byte, generation uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secrets == nil {
		c.secrets = map[string]protocol.TenantSecret{}
	}
	c.secrets[tenant] = protocol.TenantSecret{Tenant: tenant, Secret: secret, Generation: generation}
}

// NewConsole starts a fake console named name on relay.
func NewConsole(n Network, name, relay string) (*Console, error) {
	_, msp, _ := ed25519.GenerateKey(rand.Reader)
	id, kp := newPeerKeys()
	c := &Console{Name: name, MSP: msp, Static: kp, policies: map[string]protocol.Policy{}, pairings: map[protocol.SessionID]*pending{}}
	var err error
	c.Mux, c.Addr, c.stop, err = n.Join(relay, id, kp, c.accept, c.handle)
	return c, err
}

// Close disconnects the console.
func (c *Console) Close() { c.stop() }

// MSPKey returns the MSP authority's public key.
func (c *Console) MSPKey() protocol.IdentityKey {
	k, _ := protocol.IdentityKeyOf(c.MSP.Public().(ed25519.PublicKey))
	return k
}

// SetPolicy stores (and will sign) a tenant policy.
func (c *Console) SetPolicy(p protocol.Policy) {
	p.Console, p.ConsoleNoise = c.Addr.String(), NoiseKeyOf(c.Static)
	c.mu.Lock()
	c.policies[p.Tenant] = p
	c.mu.Unlock()
}

// Policy returns a tenant's current policy.
func (c *Console) Policy(tenant string) protocol.Policy {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.policies[tenant]
}

// Sign signs a document with the MSP key.
func (c *Console) Sign(t protocol.DocType, doc any) protocol.Signed {
	s, err := protocol.SignEd25519(t, doc, c.MSP)
	if err != nil {
		panic(err)
	}
	return s
}

// PairingQR registers a pending pairing and returns its QR text.
func (c *Console) PairingQR(username string, grants []protocol.Grant, at time.Time) string {
	var secret [protocol.QRSecretLen]byte
	rand.Read(secret[:])
	sid, _ := protocol.DeriveSessionID(secret[:], protocol.LabelPairSession)
	psk, _ := protocol.Derive(secret[:], protocol.LabelPairPSK, nil, 32)
	c.mu.Lock()
	c.pairings[sid] = &pending{username: username, grants: grants, psk: psk}
	c.mu.Unlock()
	q := protocol.QRPayload{Kind: protocol.QRPair, Time: at, Static: NoiseKeyOf(c.Static), Mailbox: c.Addr.Mailbox, Relay: c.Addr.Relay, Secret: secret}
	text, err := q.Encode()
	if err != nil {
		panic(err)
	}
	return text
}

// Phones returns the technician certificates issued.
func (c *Console) Phones() []protocol.TechCert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]protocol.TechCert(nil), c.phones...)
}

func (c *Console) accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch h.Flow {
	case protocol.FlowPair:
		p := c.pairings[h.Session]
		if p == nil || p.used {
			return nil, protocol.NoiseKey{}, errors.New("unknown pairing")
		}
		p.used = true
		return p.psk, protocol.NoiseKey{}, nil
	case protocol.FlowSync:
		for _, t := range c.phones {
			if protocol.MailboxFor(t.IdentityKey.Public()) == h.From.Mailbox {
				return nil, t.NoiseKey, nil
			}
		}
	}
	return nil, protocol.NoiseKey{}, errors.New("not accepted")
}

func (c *Console) handle(ctx context.Context, conn *channel.Conn) {
	switch conn.Flow {
	case protocol.FlowPair:
		c.pair(ctx, conn)
	case protocol.FlowSync:
		var req protocol.SyncRequest
		if conn.Recv(ctx, protocol.MsgSyncRequest, &req) != nil {
			return
		}
		var tech protocol.TechCert
		for _, t := range c.Phones() {
			if t.NoiseKey == conn.Session.PeerStatic() {
				tech = t
			}
		}
		if c.sendTransfer(ctx, conn, nil, &tech) != nil {
			return
		}
		var ack protocol.PolicyAck
		if conn.Recv(ctx, protocol.MsgPolicyAck, &ack) == nil {
			c.mu.Lock()
			c.Acks = append(c.Acks, ack)
			c.mu.Unlock()
		}
	}
}

func (c *Console) pair(ctx context.Context, conn *channel.Conn) {
	var req protocol.PairRequest
	if err := conn.Recv(ctx, protocol.MsgPairRequest, &req); err != nil {
		return
	}
	hh := conn.Session.HandshakeHash()
	if !req.IdentityKey.Verify(protocol.ProofInput("identity", hh), req.IdentitySig) ||
		!req.ApprovalKey.Verify(protocol.ProofInput("approval", hh), req.ApprovalSig) {
		conn.SendError(ctx, protocol.CodeRefused, "pairing refused")
		return
	}
	c.mu.Lock()
	p := c.pairings[conn.ID]
	c.serial++
	now := time.Now()
	tech := protocol.TechCert{
		Serial: c.serial, TechID: "tech-" + p.username, Username: p.username, Email: p.username + "@msp.test",
		Grants: p.grants, NoiseKey: conn.Session.PeerStatic(), IdentityKey: req.IdentityKey, ApprovalKey: req.ApprovalKey,
		Relay: req.Relay, NotBefore: now.Add(-time.Hour).Unix(), NotAfter: now.Add(365 * 24 * time.Hour).Unix(),
	}
	c.phones = append(c.phones, tech)
	c.mu.Unlock()
	resp := protocol.PairResponse{
		TechCert: c.Sign(protocol.DocTechCert, &tech), MSPKey: c.MSPKey(), Org: c.Name, ConsoleNoise: NoiseKeyOf(c.Static),
	}
	c.sendTransfer(ctx, conn, &resp, &tech)
}

// SetPaging makes transfers use pages of at most budget bytes of
// documents (protocol.Paginate; 0 means protocol.PageBudget), so that a
// few devices fill several pages, and lets tamper, if not nil, change the
// pages before they are sent (pairing, sync and push), for tests of a
// console that gets them wrong.
func (c *Console) SetPaging(budget int, tamper func([]protocol.PolicyPush) []protocol.PolicyPush) {
	c.mu.Lock()
	c.pageBudget, c.tamper = budget, tamper
	c.mu.Unlock()
}

// Refusals returns the MsgErrors phones answered transfers with.
func (c *Console) Refusals() []protocol.PeerError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]protocol.PeerError(nil), c.refusals...)
}

// sendTransfer sends the technician's view as a paged transfer (page 0
// inside pair when pairing) and records a phone's refusal.
func (c *Console) sendTransfer(ctx context.Context, conn *channel.Conn, pair *protocol.PairResponse, t *protocol.TechCert) error {
	push := c.pushFor(t)
	c.mu.Lock()
	budget, tamper := c.pageBudget, c.tamper
	c.mu.Unlock()
	pages, err := protocol.Paginate(push.Policies, push.Directory, push.OfflineSecrets, budget)
	if err != nil {
		return err
	}
	if tamper != nil {
		pages = tamper(pages)
	}
	err = protocol.SendTransfer(ctx, conn, pair, pages)
	var pe *protocol.PeerError
	if errors.As(err, &pe) {
		c.mu.Lock()
		c.refusals = append(c.refusals, *pe)
		c.mu.Unlock()
	}
	return err
}

// pushFor returns the policies and directory the technician may see.
func (c *Console) pushFor(t *protocol.TechCert) protocol.PolicyPush {
	c.mu.Lock()
	defer c.mu.Unlock()
	var push protocol.PolicyPush
	for tenant, p := range c.policies {
		if t.RoleIn(tenant) == "" {
			continue
		}
		push.Policies = append(push.Policies, c.Sign(protocol.DocPolicy, &p))
		if s, ok := c.secrets[tenant]; ok && p.LoginMode == protocol.ModeShared {
			key, err := protocol.Derive(s.Secret, protocol.LabelOTPSharedTech, []byte(t.TechID), 32)
			if err != nil {
				panic(err)
			}
			push.OfflineSecrets = append(push.OfflineSecrets, protocol.TenantSecret{Tenant: tenant, Secret: key, Generation: s.Generation})
		}
		for _, d := range c.devices {
			if d.Tenant == tenant {
				push.Directory = append(push.Directory, c.Sign(protocol.DocDeviceCert, &d))
			}
		}
	}
	return push
}

// PushTo runs FlowPolicy to a paired phone and returns its acknowledgement.
func (c *Console) PushTo(ctx context.Context, tech protocol.TechCert) (protocol.PolicyAck, error) {
	var ack protocol.PolicyAck
	to := protocol.PeerAddr{Relay: tech.Relay, Mailbox: protocol.MailboxFor(tech.IdentityKey.Public())}
	conn, err := c.Mux.Dial(ctx, channel.DialConfig{To: to, Flow: protocol.FlowPolicy, PeerStatic: tech.NoiseKey})
	if err != nil {
		return ack, err
	}
	defer conn.Close()
	if err := c.sendTransfer(ctx, conn, nil, &tech); err != nil {
		return ack, err
	}
	err = conn.Recv(ctx, protocol.MsgPolicyAck, &ack)
	return ack, err
}

// Enroll creates a device certificate for an agent and adds it to the
// directory.
func (c *Console) Enroll(a *Agent, name, tenant string, domainJoined bool) {
	c.mu.Lock()
	c.serial++
	now := time.Now()
	var id protocol.DeviceID
	rand.Read(id[:])
	idk, _ := protocol.IdentityKeyOf(a.Identity.Public().(ed25519.PublicKey))
	d := protocol.DeviceCert{
		Serial: c.serial, DeviceID: id, Name: name, Tenant: tenant, OS: "linux", DomainJoined: domainJoined,
		NoiseKey: NoiseKeyOf(a.Static), IdentityKey: idk, Relay: a.Addr.Relay,
		NotBefore: now.Add(-time.Hour).Unix(), NotAfter: now.Add(365 * 24 * time.Hour).Unix(),
	}
	c.devices = append(c.devices, d)
	c.mu.Unlock()
	a.mu.Lock()
	a.Cert, a.signed, a.msp = d, c.Sign(protocol.DocDeviceCert, &d), c.MSPKey()
	a.mu.Unlock()
}

// AddDevice adds a device without an agent to the directory: a
// certificate with fresh keys.
func (c *Console) AddDevice(name, tenant string) protocol.DeviceCert {
	id, kp := newPeerKeys()
	idk, _ := protocol.IdentityKeyOf(id.Public().(ed25519.PublicKey))
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serial++
	d := protocol.DeviceCert{
		Serial: c.serial, Name: name, Tenant: tenant, OS: "windows", NoiseKey: NoiseKeyOf(kp), IdentityKey: idk,
		Relay: c.Addr.Relay, NotBefore: now.Add(-time.Hour).Unix(), NotAfter: now.Add(365 * 24 * time.Hour).Unix(),
	}
	rand.Read(d.DeviceID[:])
	c.devices = append(c.devices, d)
	return d
}

// Unlist removes a device from the directory (it keeps its certificate).
func (c *Console) Unlist(id protocol.DeviceID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, d := range c.devices {
		if d.DeviceID == id {
			c.devices = append(c.devices[:i], c.devices[i+1:]...)
			return
		}
	}
}

// Event is what a fake agent saw in one login.
type Event struct {
	Result   protocol.LoginResult
	Approval *protocol.Approval // nil when none arrived
	Err      error              // a phone's MsgError or a failed check
}

// Agent is a fake agent answering QR logins.
type Agent struct {
	Identity ed25519.PrivateKey
	Static   noise.DHKey
	Addr     protocol.PeerAddr
	Mux      *channel.Mux
	// Events receives one Event per login session.
	Events chan Event

	mu      sync.Mutex
	Cert    protocol.DeviceCert
	Policy  protocol.Policy // cached tenant policy (set with Configure)
	Choices []uint8         // account kinds offered (set with Configure)
	signed  protocol.Signed
	msp     protocol.IdentityKey
	codes   map[protocol.SessionID]code
	live    map[protocol.SessionID]uint8 // action of each accepted session
	used    map[[16]byte]bool
	offline []byte // named-mode offline key for the next approved login
	stop    func()
}

// GiveOfflineKey makes the agent send key (a named-mode offline key, 20
// bytes) in the result of its next approved login, as a real agent does
// at a technician's first online login and after replacing the key.
func (a *Agent) GiveOfflineKey(key []byte) {
	a.mu.Lock()
	a.offline = key
	a.mu.Unlock()
}

// NewAgent starts a fake agent on relay; enrol it with Console.Enroll.
func NewAgent(n Network, relay string) (*Agent, error) {
	id, kp := newPeerKeys()
	a := &Agent{Identity: id, Static: kp, Events: make(chan Event, 8), codes: map[protocol.SessionID]code{}, live: map[protocol.SessionID]uint8{}, used: map[[16]byte]bool{}}
	var err error
	a.Mux, a.Addr, a.stop, err = n.Join(relay, id, kp, a.accept, a.handle)
	return a, err
}

// Close disconnects the agent.
func (a *Agent) Close() { a.stop() }

// Configure sets the agent's cached policy and the account choices it
// offers (selective login).
func (a *Agent) Configure(p protocol.Policy, choices []uint8) {
	a.mu.Lock()
	a.Policy, a.Choices = p, choices
	a.mu.Unlock()
}

// LoginQR issues a fresh login code for action, timed at.
func (a *Agent) LoginQR(action uint8, at time.Time) string {
	var secret [protocol.QRSecretLen]byte
	rand.Read(secret[:])
	sid, _ := protocol.DeriveSessionID(secret[:], protocol.LabelQRSession)
	psk, _ := protocol.Derive(secret[:], protocol.LabelQRPSK, nil, 32)
	a.mu.Lock()
	a.codes[sid] = code{psk: psk, action: action}
	id := a.Cert.DeviceID
	a.mu.Unlock()
	q := protocol.QRPayload{Kind: protocol.QRLogin, Action: action, Time: at, DeviceID: id, Static: NoiseKeyOf(a.Static),
		Mailbox: a.Addr.Mailbox, Relay: a.Addr.Relay, Secret: secret}
	text, err := q.Encode()
	if err != nil {
		panic(err)
	}
	return text
}

func (a *Agent) accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cd, ok := a.codes[h.Session]
	if h.Flow != protocol.FlowQRLogin || !ok {
		return nil, protocol.NoiseKey{}, errors.New("no such code")
	}
	delete(a.codes, h.Session) // single use
	a.live[h.Session] = cd.action
	return cd.psk, protocol.NoiseKey{}, nil
}

func (a *Agent) handle(ctx context.Context, c *channel.Conn) {
	ev := a.login(ctx, c)
	a.Events <- ev
}

func (a *Agent) login(ctx context.Context, c *channel.Conn) Event {
	var hello protocol.LoginHello
	if err := c.Recv(ctx, protocol.MsgLoginHello, &hello); err != nil {
		return Event{Err: err}
	}
	a.mu.Lock()
	dev, signed, msp, pol, choices, action := a.Cert, a.signed, a.msp, a.Policy, a.Choices, a.live[c.ID]
	a.mu.Unlock()
	refuse := func(err error) Event {
		res := protocol.LoginResult{Code: protocol.CodeRefused, Text: "not allowed on this device"}
		c.Send(ctx, protocol.MsgLoginResult, &res)
		return Event{Result: res, Err: err}
	}
	var tech protocol.TechCert
	if err := hello.TechCert.VerifyEd25519(protocol.DocTechCert, msp, &tech); err != nil {
		return refuse(err)
	}
	if err := tech.Valid(time.Now()); err != nil {
		return refuse(err)
	}
	if !c.Session.PeerIs(tech.NoiseKey) {
		return refuse(errors.New("noise key"))
	}
	if err := pol.Authorize(&tech, &dev); err != nil {
		return refuse(err)
	}
	account := "msp-" + tech.Username
	if pol.LoginMode == protocol.ModeShared {
		account = pol.SharedAccount
	}
	req := protocol.LoginRequest{DeviceCert: signed, Session: c.ID, Action: action, Account: account, Choices: choices, Time: time.Now().Unix()}
	if err := c.Send(ctx, protocol.MsgLoginRequest, &req); err != nil {
		return Event{Err: err}
	}
	var s protocol.Signed
	if err := c.Recv(ctx, protocol.MsgApproval, &s); err != nil {
		return Event{Err: err}
	}
	var ap protocol.Approval
	if err := s.VerifyP256(protocol.DocApproval, tech.ApprovalKey, &ap); err != nil {
		return refuse(err)
	}
	err := ap.Match(protocol.ApprovalExpect{
		Serial: tech.Serial, DeviceID: dev.DeviceID, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(),
		Action: req.Action, Now: time.Now(),
		AllowAccount: func(k uint8) bool {
			for _, ch := range choices {
				if ch == k {
					return true
				}
			}
			return len(choices) == 0 && k == protocol.AccountDefault
		},
	})
	if err != nil {
		ev := refuse(err)
		ev.Approval = &ap
		return ev
	}
	a.mu.Lock()
	replay := a.used[ap.Nonce]
	a.used[ap.Nonce] = true
	a.mu.Unlock()
	if replay {
		return refuse(errors.New("replay"))
	}
	res := protocol.LoginResult{OK: true, Account: account}
	if ap.Decision == protocol.DecisionApprove {
		a.mu.Lock()
		res.OfflineSecret, a.offline = a.offline, nil
		a.mu.Unlock()
	}
	if ap.Decision == protocol.DecisionDeny {
		res = protocol.LoginResult{Code: protocol.CodeDenied, Text: "denied by the technician"}
	}
	if err := c.Send(ctx, protocol.MsgLoginResult, &res); err != nil {
		return Event{Err: err, Approval: &ap}
	}
	return Event{Result: res, Approval: &ap}
}

type code struct {
	psk    []byte
	action uint8
}

// String names the agent for test logs.
func (a *Agent) String() string { return fmt.Sprintf("agent %s", a.Cert.Name) }
