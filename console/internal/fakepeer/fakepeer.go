// Package fakepeer is a minimal agent and phone for the console's tests:
// just enough of the protocol to enrol, pair, ship audit records, sync and
// take policy pushes. The real agent and phone live in agent/ and
// mobilesim/.
package fakepeer

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// Peer is a fake agent or phone.
type Peer struct {
	ID       ed25519.PrivateKey
	Noise    noise.DHKey
	Approval *ecdsa.PrivateKey
	Mux      *channel.Mux
	Relay    channel.Relay

	// Trust, set after enrollment or pairing.
	MSPKey     protocol.IdentityKey
	Console    protocol.PeerAddr
	ConsoleKey protocol.NoiseKey
	DeviceCert protocol.DeviceCert

	// DomainJoined and DC are what Enroll declares (EnrollRequest 3, 4).
	DomainJoined, DC bool

	mu   sync.Mutex
	held map[string]uint64
	// Pushes receives every transfer pushed (FlowPolicy), its pages
	// merged into one PolicyPush.
	Pushes chan protocol.PolicyPush

	// Audit chain state of a fake agent.
	seq  uint64
	prev [32]byte
}

// Keys generates a peer's keys; Start wires it to a relay.
func Keys() (ed25519.PrivateKey, noise.DHKey, *ecdsa.PrivateKey) {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	kp, _ := protocol.CipherSuite.GenerateKeypair(rand.Reader)
	ap, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return id, kp, ap
}

// Mailbox of an identity key.
func Mailbox(id ed25519.PrivateKey) protocol.MailboxID {
	return protocol.MailboxFor(id.Public().(ed25519.PublicKey))
}

// New returns a peer over relay; run Pump(ctx, recv) on p.Mux.
func New(id ed25519.PrivateKey, kp noise.DHKey, ap *ecdsa.PrivateKey, relay channel.Relay) *Peer {
	p := &Peer{ID: id, Noise: kp, Approval: ap, Relay: relay, held: map[string]uint64{}, Pushes: make(chan protocol.PolicyPush, 16)}
	p.Mux = channel.New(channel.Config{Relay: relay, Static: kp, Accept: p.accept, Handle: p.handle})
	return p
}

// accept and handle read the trust fields under p.mu: a push may arrive
// while Enroll or Pair is still setting them.
func (p *Peer) accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	p.mu.Lock()
	console, key := p.Console, p.ConsoleKey
	p.mu.Unlock()
	if h.Flow != protocol.FlowPolicy || h.From.Mailbox != console.Mailbox {
		return nil, protocol.NoiseKey{}, errors.New("fakepeer: not from the console")
	}
	return nil, key, nil
}

func (p *Peer) handle(ctx context.Context, c *channel.Conn) {
	p.mu.Lock()
	msp := p.MSPKey
	p.mu.Unlock()
	x := protocol.NewTransfer(msp)
	if err := x.Receive(ctx, c); err != nil {
		_ = c.SendError(ctx, protocol.CodeRefused, "refused")
		return
	}
	push := merged(x)
	_ = c.Send(ctx, protocol.MsgPolicyAck, &protocol.PolicyAck{Versions: p.Apply(push.Policies)})
	p.Pushes <- push
}

// merged returns a complete transfer's documents as one PolicyPush.
func merged(x *protocol.Transfer) protocol.PolicyPush {
	return protocol.PolicyPush{Policies: x.Policies, Directory: x.Directory, OfflineSecrets: x.OfflineSecrets}
}

// Apply verifies policies against the MSP key and keeps the higher
// versions; it returns the versions now held.
func (p *Peer) Apply(pols []protocol.Signed) []protocol.TenantVersion {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []protocol.TenantVersion
	for _, s := range pols {
		var pol protocol.Policy
		if err := s.VerifyEd25519(protocol.DocPolicy, p.MSPKey, &pol); err != nil {
			continue
		}
		if pol.Version > p.held[pol.Tenant] {
			p.held[pol.Tenant] = pol.Version
		}
		out = append(out, protocol.TenantVersion{Tenant: pol.Tenant, Version: p.held[pol.Tenant]})
	}
	return out
}

// Held returns the policy version held for a tenant.
func (p *Peer) Held(tenant string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[tenant]
}

// Enroll runs FlowEnroll with a token.
func (p *Peer) Enroll(ctx context.Context, tokenText, name string, now func() int64) (*protocol.EnrollResponse, error) {
	tok, err := protocol.DecodeEnrollToken(tokenText, timeOf(now()))
	if err != nil && !errors.Is(err, protocol.ErrExpired) {
		return nil, err
	}
	to, err := protocol.ParsePeerAddr(tok.Console)
	if err != nil {
		return nil, err
	}
	psk, _ := protocol.Derive(tok.Secret[:], protocol.LabelEnrollPSK, nil, 32)
	sid, _ := protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession)
	c, err := p.Mux.Dial(ctx, channel.DialConfig{To: to, Flow: protocol.FlowEnroll, PeerStatic: tok.ConsoleNoise, PSK: psk, Session: sid})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ik, _ := protocol.IdentityKeyOf(p.ID.Public().(ed25519.PublicKey))
	req := protocol.EnrollRequest{
		Name: name, OS: "linux", DomainJoined: p.DomainJoined, DC: p.DC, IdentityKey: ik, Relay: p.Relay.Addr().Relay,
		IdentitySig: ed25519.Sign(p.ID, protocol.ProofInput("identity", c.Session.HandshakeHash())),
	}
	if err := c.Send(ctx, protocol.MsgEnrollRequest, &req); err != nil {
		return nil, err
	}
	var resp protocol.EnrollResponse
	if err := c.Recv(ctx, protocol.MsgEnrollResponse, &resp); err != nil {
		return nil, err
	}
	if err := resp.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, tok.MSPKey, &p.DeviceCert); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.MSPKey, p.Console, p.ConsoleKey = tok.MSPKey, to, tok.ConsoleNoise
	p.mu.Unlock()
	if vs := p.Apply([]protocol.Signed{resp.Policy}); len(vs) != 1 {
		return nil, errors.New("fakepeer: enrollment policy does not verify")
	}
	return &resp, nil
}

// Pair runs FlowPair with a pairing QR text. The response it returns
// holds the whole transfer, its pages merged.
func (p *Peer) Pair(ctx context.Context, qrText string) (*protocol.PairResponse, *protocol.TechCert, error) {
	q, err := protocol.ParseQR(qrText)
	if err != nil {
		return nil, nil, err
	}
	psk, _ := protocol.Derive(q.Secret[:], protocol.LabelPairPSK, nil, 32)
	sid, _ := protocol.DeriveSessionID(q.Secret[:], protocol.LabelPairSession)
	c, err := p.Mux.Dial(ctx, channel.DialConfig{To: q.Addr(), Flow: protocol.FlowPair, PeerStatic: q.Static, PSK: psk, Session: sid})
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	hh := c.Session.HandshakeHash()
	ik, _ := protocol.IdentityKeyOf(p.ID.Public().(ed25519.PublicKey))
	ak, _ := protocol.ApprovalKeyOf(&p.Approval.PublicKey)
	h := sha256.Sum256(protocol.ProofInput("approval", hh))
	der, err := ecdsa.SignASN1(rand.Reader, p.Approval, h[:])
	if err != nil {
		return nil, nil, err
	}
	asig, err := protocol.ApprovalSigFromASN1(der)
	if err != nil {
		return nil, nil, err
	}
	req := protocol.PairRequest{
		IdentityKey: ik, ApprovalKey: ak, Relay: p.Relay.Addr().Relay, Label: "fake phone",
		IdentitySig: ed25519.Sign(p.ID, protocol.ProofInput("identity", hh)), ApprovalSig: asig,
	}
	if err := c.Send(ctx, protocol.MsgPairRequest, &req); err != nil {
		return nil, nil, err
	}
	var resp protocol.PairResponse
	if err := c.Recv(ctx, protocol.MsgPairResponse, &resp); err != nil {
		return nil, nil, err
	}
	var tc protocol.TechCert
	if err := resp.TechCert.VerifyEd25519(protocol.DocTechCert, resp.MSPKey, &tc); err != nil {
		return nil, nil, err
	}
	x := protocol.NewTransfer(resp.MSPKey)
	if err := x.Add(resp.Page()); err != nil {
		return nil, nil, err
	}
	if err := x.Receive(ctx, c); err != nil {
		return nil, nil, err
	}
	all := merged(x)
	resp.SetPage(&all)
	p.mu.Lock()
	p.MSPKey, p.Console, p.ConsoleKey = resp.MSPKey, q.Addr(), resp.ConsoleNoise
	p.mu.Unlock()
	p.Apply(resp.Policies)
	return &resp, &tc, nil
}

// Sync runs FlowSync and acknowledges what it got; the PolicyPush it
// returns holds the whole transfer, its pages merged.
func (p *Peer) Sync(ctx context.Context) (*protocol.PolicyPush, error) {
	c, err := p.Mux.Dial(ctx, channel.DialConfig{To: p.Console, Flow: protocol.FlowSync, PeerStatic: p.ConsoleKey})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Send(ctx, protocol.MsgSyncRequest, &protocol.SyncRequest{}); err != nil {
		return nil, err
	}
	x := protocol.NewTransfer(p.MSPKey)
	if err := x.Receive(ctx, c); err != nil {
		return nil, err
	}
	push := merged(x)
	return &push, c.Send(ctx, protocol.MsgPolicyAck, &protocol.PolicyAck{Versions: p.Apply(push.Policies)})
}

// Record appends the next record of the fake agent's audit chain.
func (p *Peer) Record(r protocol.AuditRecord) protocol.Signed {
	p.seq++
	r.DeviceID, r.Seq, r.Prev = p.DeviceCert.DeviceID, p.seq, p.prev
	s, err := protocol.SignEd25519(protocol.DocAudit, &r, p.ID)
	if err != nil {
		panic(err)
	}
	p.prev, _ = s.Hash()
	return s
}

// Ship sends audit batches in one FlowAudit session and returns the acks.
func (p *Peer) Ship(ctx context.Context, batches ...protocol.AuditBatch) ([]protocol.AuditAck, error) {
	c, err := p.Mux.Dial(ctx, channel.DialConfig{To: p.Console, Flow: protocol.FlowAudit, PeerStatic: p.ConsoleKey})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var acks []protocol.AuditAck
	for _, b := range batches {
		if err := c.Send(ctx, protocol.MsgAuditBatch, &b); err != nil {
			return acks, err
		}
		var ack protocol.AuditAck
		if err := c.Recv(ctx, protocol.MsgAuditAck, &ack); err != nil {
			return acks, err
		}
		if ack.Policy != nil {
			p.Apply([]protocol.Signed{*ack.Policy})
		}
		acks = append(acks, ack)
	}
	return acks, nil
}

func timeOf(unix int64) time.Time { return time.Unix(unix, 0) }

// Escrow sends a break-glass recovery code (SPEC.md 11.15) after the
// given audit batches, in one FlowAudit session, as an agent does, and
// returns the console's acknowledgement.
func (p *Peer) Escrow(ctx context.Context, e protocol.RecoveryEscrow, batches ...protocol.AuditBatch) (protocol.RecoveryAck, error) {
	var ack protocol.RecoveryAck
	c, err := p.Mux.Dial(ctx, channel.DialConfig{To: p.Console, Flow: protocol.FlowAudit, PeerStatic: p.ConsoleKey})
	if err != nil {
		return ack, err
	}
	defer c.Close()
	for _, b := range batches {
		if err := c.Send(ctx, protocol.MsgAuditBatch, &b); err != nil {
			return ack, err
		}
		var a protocol.AuditAck
		if err := c.Recv(ctx, protocol.MsgAuditAck, &a); err != nil {
			return ack, err
		}
	}
	if err := c.Send(ctx, protocol.MsgRecoveryEscrow, &e); err != nil {
		return ack, err
	}
	return ack, c.Recv(ctx, protocol.MsgRecoveryAck, &ack)
}
