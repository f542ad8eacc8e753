package agenttest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// ConsoleRelay is the relay connection a Console uses.
type ConsoleRelay interface {
	channel.Relay
	Recv(ctx context.Context) (protocol.PeerAddr, []byte, error)
}

// Console is a minimal console for agent tests: it answers enrollment
// tokens, collects and verifies audit records, and pushes policies.
type Console struct {
	MSP      *MSP
	Identity ed25519.PrivateKey
	Noise    noise.DHKey
	Mux      *channel.Mux
	relay    ConsoleRelay

	mu      sync.Mutex
	policy  protocol.Signed
	tokens  map[protocol.SessionID]*token
	devices map[protocol.MailboxID]*device
}

type token struct {
	psk     []byte
	expires time.Time
	uses    int
}

type device struct {
	cert     protocol.DeviceCert
	records  []protocol.AuditRecord
	hash     [32]byte
	escrowed []protocol.RecoveryEscrow
}

// Escrowed returns the break-glass recovery codes the device escrowed
// (SPEC.md 11.15), in the order they arrived.
func (c *Console) Escrowed(mailbox protocol.MailboxID) []protocol.RecoveryEscrow {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.devices[mailbox]
	if d == nil {
		return nil
	}
	return append([]protocol.RecoveryEscrow(nil), d.escrowed...)
}

// NewConsoleKeys returns a console identity and Noise key, for building
// its relay connection before NewConsole.
func NewConsoleKeys(t testing.TB) (ed25519.PrivateKey, noise.DHKey) {
	_, id, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := protocol.CipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id, nk
}

// NewConsole starts a console on rl holding policy p (signed by msp).
func NewConsole(t testing.TB, msp *MSP, id ed25519.PrivateKey, nk noise.DHKey, rl ConsoleRelay, p protocol.Policy) *Console {
	c := &Console{MSP: msp, Identity: id, Noise: nk, relay: rl, tokens: map[protocol.SessionID]*token{}, devices: map[protocol.MailboxID]*device{}}
	c.Mux = channel.New(channel.Config{Relay: rl, Static: nk, Accept: c.accept, Handle: c.handle})
	c.SetPolicy(t, p)
	Pump(t, c.Mux, rl.Recv)
	return c
}

// SetPolicy replaces the policy handed out at enrollment.
func (c *Console) SetPolicy(t testing.TB, p protocol.Policy) protocol.Signed {
	p.Console, p.ConsoleNoise = c.Addr().String(), c.NoisePublic()
	s := c.MSP.Sign(t, protocol.DocPolicy, &p)
	c.mu.Lock()
	c.policy = s
	c.mu.Unlock()
	return s
}

// Addr is the console's relay address.
func (c *Console) Addr() protocol.PeerAddr { return c.relay.Addr() }

// NoisePublic is the console's Noise static key.
func (c *Console) NoisePublic() protocol.NoiseKey {
	var k protocol.NoiseKey
	copy(k[:], c.Noise.Public)
	return k
}

// Token issues an enrollment token with uses uses.
func (c *Console) Token(t testing.TB, pins [][32]byte, expires time.Time, uses int) string {
	tok := protocol.EnrollToken{
		Tenant: c.MSP.Tenant, MSPKey: c.MSP.Pub, Console: c.Addr().String(), ConsoleNoise: c.NoisePublic(),
		RelayPins: pins, Expires: expires.Unix(),
	}
	rand.Read(tok.Secret[:])
	psk, _ := protocol.Derive(tok.Secret[:], protocol.LabelEnrollPSK, nil, 32)
	sid, _ := protocol.DeriveSessionID(tok.Secret[:], protocol.LabelEnrollSession)
	c.mu.Lock()
	c.tokens[sid] = &token{psk: psk, expires: expires, uses: uses}
	c.mu.Unlock()
	s, err := tok.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Records returns the verified audit records received from a device.
func (c *Console) Records(mailbox protocol.MailboxID) []protocol.AuditRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.devices[mailbox]; d != nil {
		return append([]protocol.AuditRecord(nil), d.records...)
	}
	return nil
}

func (c *Console) accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch h.Flow {
	case protocol.FlowEnroll:
		if tk := c.tokens[h.Session]; tk != nil {
			return tk.psk, protocol.NoiseKey{}, nil
		}
	case protocol.FlowAudit:
		if d := c.devices[h.From.Mailbox]; d != nil {
			return nil, d.cert.NoiseKey, nil
		}
	}
	return nil, protocol.NoiseKey{}, errors.New("console: refused")
}

func (c *Console) handle(ctx context.Context, conn *channel.Conn) {
	switch conn.Flow {
	case protocol.FlowEnroll:
		c.enroll(ctx, conn)
	case protocol.FlowAudit:
		for c.auditBatch(ctx, conn) {
		}
	}
}

func (c *Console) enroll(ctx context.Context, conn *channel.Conn) {
	var req protocol.EnrollRequest
	if err := conn.Recv(ctx, protocol.MsgEnrollRequest, &req); err != nil {
		return
	}
	if !req.IdentityKey.Verify(protocol.ProofInput("identity", conn.Session.HandshakeHash()), req.IdentitySig) {
		_ = conn.SendError(ctx, protocol.CodeRefused, "refused")
		return
	}
	c.mu.Lock()
	tk := c.tokens[conn.ID]
	if tk == nil || tk.uses <= 0 || time.Now().After(tk.expires) {
		c.mu.Unlock()
		_ = conn.SendError(ctx, protocol.CodeExpired, "enrollment token expired or used up")
		return
	}
	tk.uses--
	dc := protocol.DeviceCert{
		Serial: c.MSP.NextSerial(), Name: req.Name, Tenant: c.MSP.Tenant, OS: req.OS, NoiseKey: conn.Session.PeerStatic(),
		DomainJoined: req.DomainJoined, DC: req.DC,
		IdentityKey: req.IdentityKey, Relay: req.Relay,
		NotBefore: time.Now().Add(-time.Hour).Unix(), NotAfter: time.Now().Add(365 * 24 * time.Hour).Unix(),
	}
	rand.Read(dc.DeviceID[:])
	signed, err := protocol.SignEd25519(protocol.DocDeviceCert, &dc, c.MSP.Key)
	if err != nil {
		c.mu.Unlock()
		return
	}
	c.devices[protocol.MailboxFor(req.IdentityKey.Public())] = &device{cert: dc}
	pol := c.policy
	c.mu.Unlock()
	_ = conn.Send(ctx, protocol.MsgEnrollResponse, &protocol.EnrollResponse{DeviceCert: signed, Policy: pol})
}

func (c *Console) auditBatch(ctx context.Context, conn *channel.Conn) bool {
	msg, err := conn.RecvRaw(ctx)
	if err != nil {
		return false
	}
	if len(msg) > 0 && protocol.MsgType(msg[0]) == protocol.MsgRecoveryEscrow {
		var e protocol.RecoveryEscrow
		if protocol.DecodeMsg(msg, protocol.MsgRecoveryEscrow, &e) != nil || e.Check() != nil {
			return false
		}
		c.mu.Lock()
		d := c.devices[conn.Peer.Mailbox]
		d.escrowed = append(d.escrowed, e)
		c.mu.Unlock()
		return conn.Send(ctx, protocol.MsgRecoveryAck, &protocol.RecoveryAck{Generation: e.Generation}) == nil
	}
	var b protocol.AuditBatch
	if err := protocol.DecodeMsg(msg, protocol.MsgAuditBatch, &b); err != nil {
		return false
	}
	c.mu.Lock()
	d := c.devices[conn.Peer.Mailbox]
	seq := uint64(len(d.records))
	// Skip records already stored (a resend after a lost ack).
	recs := b.Records
	for len(recs) > 0 {
		var r protocol.AuditRecord
		if err := protocol.Unmarshal(recs[0].Body, &r); err != nil || r.Seq > seq {
			break
		}
		recs = recs[1:]
	}
	good, _ := audit.Verify(d.cert.IdentityKey, seq, d.hash, recs)
	for i, r := range good {
		d.records = append(d.records, r)
		d.hash, _ = recs[i].Hash()
	}
	upTo := uint64(len(d.records))
	c.mu.Unlock()
	return conn.Send(ctx, protocol.MsgAuditAck, &protocol.AuditAck{UpTo: upTo}) == nil
}

// PushPolicy sends policies to an agent (FlowPolicy) and returns its ack.
func (c *Console) PushPolicy(ctx context.Context, to protocol.PeerAddr, policies ...protocol.Signed) (protocol.PolicyAck, error) {
	return c.Push(ctx, to, &protocol.PolicyPush{Policies: policies})
}

// DialPolicy opens a FlowPolicy session to an enrolled agent and sends
// nothing: a push that stops after the handshake.
func (c *Console) DialPolicy(ctx context.Context, to protocol.PeerAddr) (*channel.Conn, error) {
	c.mu.Lock()
	d := c.devices[to.Mailbox]
	c.mu.Unlock()
	if d == nil {
		return nil, errors.New("console: unknown device")
	}
	return c.Mux.Dial(ctx, channel.DialConfig{To: to, Flow: protocol.FlowPolicy, PeerStatic: d.cert.NoiseKey})
}

// Push sends one PolicyPush as it is to an agent (FlowPolicy) and returns
// its ack, or its MsgError as *protocol.PeerError.
func (c *Console) Push(ctx context.Context, to protocol.PeerAddr, push *protocol.PolicyPush) (protocol.PolicyAck, error) {
	var ack protocol.PolicyAck
	c.mu.Lock()
	d := c.devices[to.Mailbox]
	c.mu.Unlock()
	if d == nil {
		return ack, errors.New("console: unknown device")
	}
	conn, err := c.Mux.Dial(ctx, channel.DialConfig{To: to, Flow: protocol.FlowPolicy, PeerStatic: d.cert.NoiseKey})
	if err != nil {
		return ack, err
	}
	defer conn.Close()
	if err := conn.Send(ctx, protocol.MsgPolicyPush, push); err != nil {
		return ack, err
	}
	err = conn.Recv(ctx, protocol.MsgPolicyAck, &ack)
	return ack, err
}
