package protocol

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/flynn/noise"
)

// Flow names one end-to-end exchange. The flow's name is bound into the
// Noise prologue, so a handshake for one flow cannot complete as another.
type Flow uint8

// The flows. First-contact flows use Noise IKpsk1 (the initiator learned the
// responder's static key and a one-time secret from a QR code or token; the
// PSK lets the responder drop anyone who has not seen the code before it
// answers). Known-peer flows use Noise KK.
const (
	FlowEnroll  Flow = 1 // IKpsk1, agent -> console (enrollment token)
	FlowPair    Flow = 2 // IKpsk1, phone -> console (pairing QR)
	FlowQRLogin Flow = 3 // IKpsk1, phone -> agent (login QR)
	FlowPolicy  Flow = 4 // KK, console -> agent or phone (policy and directory push)
	FlowAudit   Flow = 5 // KK, agent -> console (audit shipping, device report)
	FlowPush    Flow = 6 // KK, agent -> phone (push login)
	FlowDomain  Flow = 7 // KK, workstation agent -> domain controller agent
	FlowSync    Flow = 8 // KK, phone -> console (refresh policies and directory)
	// FlowConsoleLogin is IKpsk1, phone -> console: an MSP admin signs in to
	// the web console by approving its sign-in QR (SPEC.md 11.12).
	FlowConsoleLogin Flow = 9
)

// Name returns the flow's name as bound into the prologue.
func (f Flow) Name() string {
	switch f {
	case FlowEnroll:
		return "enroll"
	case FlowPair:
		return "pair"
	case FlowQRLogin:
		return "qr-login"
	case FlowPolicy:
		return "policy"
	case FlowAudit:
		return "audit"
	case FlowPush:
		return "push"
	case FlowDomain:
		return "domain"
	case FlowSync:
		return "sync"
	case FlowConsoleLogin:
		return "console-login"
	}
	return ""
}

// FirstContact reports whether the flow is an IKpsk1 flow.
func (f Flow) FirstContact() bool {
	return f == FlowEnroll || f == FlowPair || f == FlowQRLogin || f == FlowConsoleLogin
}

// CipherSuite is the only Noise cipher suite jitkey uses:
// Noise_*_25519_ChaChaPoly_BLAKE2s.
var CipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Padding and size bounds of transport messages.
const (
	// PadBlock: every transport plaintext is padded to a multiple of this
	// many bytes, so approve and deny (and most messages of one kind) have
	// the same length on the wire.
	PadBlock = 256
	// MaxTransportPlain bounds one transport message's application payload.
	MaxTransportPlain = 60 << 10
)

// ErrHandshake is the one error a peer's handshake failure produces: wrong
// key, wrong PSK, wrong prologue, corrupted or replayed message.
var ErrHandshake = errors.New("protocol: handshake failed")

// ErrDecrypt is the one error for a transport message that does not open.
var ErrDecrypt = errors.New("protocol: message authentication failed")

// Transport carries Noise messages of one session in order. The relay mux
// implements it over relay frames; tests implement it with channels.
type Transport interface {
	WriteMessage(ctx context.Context, msg []byte) error
	ReadMessage(ctx context.Context) ([]byte, error)
}

// HandshakeConfig configures one side of a handshake.
type HandshakeConfig struct {
	Flow       Flow
	Static     noise.DHKey // own Noise static key pair
	PeerStatic NoiseKey    // required for the initiator; for KK also the responder
	PSK        []byte      // 32 bytes; required for first-contact flows
	// InitiatorRelay and ResponderRelay are the two peers' home relays.
	// Both sides must agree on them: they are bound into the prologue.
	InitiatorRelay string
	ResponderRelay string
	Rand           io.Reader
}

// Prologue returns the Noise prologue of a flow:
//
//	"jitkey/v1" || 0x00 || flow name || 0x00 ||
//	u8 len || initiator relay || u8 len || responder relay
func Prologue(f Flow, initiatorRelay, responderRelay string) []byte {
	p := []byte("jitkey/v1\x00" + f.Name() + "\x00")
	p = append(p, byte(len(initiatorRelay)))
	p = append(p, initiatorRelay...)
	p = append(p, byte(len(responderRelay)))
	return append(p, responderRelay...)
}

func (c *HandshakeConfig) noiseConfig(initiator bool) (noise.Config, error) {
	if c.Flow.Name() == "" {
		return noise.Config{}, fmt.Errorf("protocol: unknown flow %d", c.Flow)
	}
	if err := CheckRelayAddr(c.InitiatorRelay); err != nil {
		return noise.Config{}, err
	}
	if err := CheckRelayAddr(c.ResponderRelay); err != nil {
		return noise.Config{}, err
	}
	nc := noise.Config{
		CipherSuite:   CipherSuite,
		Random:        c.Rand,
		Initiator:     initiator,
		Prologue:      Prologue(c.Flow, c.InitiatorRelay, c.ResponderRelay),
		StaticKeypair: c.Static,
	}
	if c.Flow.FirstContact() {
		if len(c.PSK) != 32 {
			return noise.Config{}, errors.New("protocol: first-contact flow needs a 32-byte PSK")
		}
		nc.Pattern = noise.HandshakeIK
		nc.PresharedKey = c.PSK
		nc.PresharedKeyPlacement = 1
		if initiator {
			nc.PeerStatic = c.PeerStatic[:]
		}
	} else {
		nc.Pattern = noise.HandshakeKK
		nc.PeerStatic = c.PeerStatic[:]
	}
	if initiator || !c.Flow.FirstContact() {
		if err := c.PeerStatic.Check(); err != nil {
			return noise.Config{}, err
		}
	}
	return nc, nil
}

// Initiate runs the initiator side: write message 1, read message 2.
func Initiate(ctx context.Context, cfg HandshakeConfig, t Transport) (*Session, error) {
	nc, err := cfg.noiseConfig(true)
	if err != nil {
		return nil, err
	}
	hs, err := noise.NewHandshakeState(nc)
	if err != nil {
		return nil, fmt.Errorf("protocol: handshake state: %w", err)
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("protocol: write handshake: %w", err)
	}
	if err := t.WriteMessage(ctx, msg1); err != nil {
		return nil, fmt.Errorf("protocol: send handshake: %w", err)
	}
	msg2, err := t.ReadMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("protocol: receive handshake: %w", err)
	}
	payload, cs1, cs2, err := hs.ReadMessage(nil, msg2)
	if err != nil || len(payload) != 0 || cs1 == nil {
		return nil, ErrHandshake
	}
	return newSession(hs, cs1, cs2, true), nil
}

// RespondMessage runs the responder side given message 1 (already read by
// the caller, who needed its header to choose cfg) and writes message 2.
func RespondMessage(ctx context.Context, cfg HandshakeConfig, msg1 []byte, t Transport) (*Session, error) {
	nc, err := cfg.noiseConfig(false)
	if err != nil {
		return nil, err
	}
	hs, err := noise.NewHandshakeState(nc)
	if err != nil {
		return nil, fmt.Errorf("protocol: handshake state: %w", err)
	}
	payload, _, _, err := hs.ReadMessage(nil, msg1)
	if err != nil || len(payload) != 0 {
		return nil, ErrHandshake
	}
	msg2, cs1, cs2, err := hs.WriteMessage(nil, nil)
	if err != nil || cs1 == nil {
		return nil, fmt.Errorf("protocol: write handshake: %w", err)
	}
	if err := t.WriteMessage(ctx, msg2); err != nil {
		return nil, fmt.Errorf("protocol: send handshake: %w", err)
	}
	return newSession(hs, cs1, cs2, false), nil
}

// Respond runs the responder side: read message 1, write message 2.
func Respond(ctx context.Context, cfg HandshakeConfig, t Transport) (*Session, error) {
	msg1, err := t.ReadMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("protocol: receive handshake: %w", err)
	}
	return RespondMessage(ctx, cfg, msg1, t)
}

// Session is an established Noise channel: padded, authenticated
// encryption of transport messages in each direction. Seal and Open are each
// safe for concurrent use.
type Session struct {
	hash []byte
	peer NoiseKey

	sendMu sync.Mutex
	send   *noise.CipherState
	recvMu sync.Mutex
	recv   *noise.CipherState
}

func newSession(hs *noise.HandshakeState, cs1, cs2 *noise.CipherState, initiator bool) *Session {
	s := &Session{hash: hs.ChannelBinding()}
	copy(s.peer[:], hs.PeerStatic())
	if initiator {
		s.send, s.recv = cs1, cs2
	} else {
		s.send, s.recv = cs2, cs1
	}
	return s
}

// HandshakeHash returns the Noise handshake hash h, which approvals bind.
func (s *Session) HandshakeHash() []byte { return s.hash }

// PeerStatic returns the peer's Noise static key as authenticated by the
// handshake.
func (s *Session) PeerStatic() NoiseKey { return s.peer }

// PeerIs reports, in constant time, whether the peer's static key is k.
func (s *Session) PeerIs(k NoiseKey) bool { return subtle.ConstantTimeCompare(s.peer[:], k[:]) == 1 }

// Seal pads and encrypts one transport message:
//
//	plaintext = u16 big-endian length || message || zero bytes up to a multiple of PadBlock
func (s *Session) Seal(msg []byte) ([]byte, error) {
	if len(msg) > MaxTransportPlain {
		return nil, fmt.Errorf("%w: transport message of %d bytes", ErrFrameTooLarge, len(msg))
	}
	n := 2 + len(msg)
	padded := make([]byte, (n+PadBlock-1)/PadBlock*PadBlock)
	binary.BigEndian.PutUint16(padded, uint16(len(msg)))
	copy(padded[2:], msg)
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	out, err := s.send.Encrypt(nil, nil, padded)
	if err != nil {
		return nil, fmt.Errorf("protocol: encrypt: %w", err)
	}
	return out, nil
}

// Open decrypts one transport message and removes its padding. Messages
// must arrive in order; any failure is ErrDecrypt.
func (s *Session) Open(ct []byte) ([]byte, error) {
	s.recvMu.Lock()
	plain, err := s.recv.Decrypt(nil, nil, ct)
	s.recvMu.Unlock()
	if err != nil || len(plain) < 2 || len(plain)%PadBlock != 0 {
		return nil, ErrDecrypt
	}
	n := int(binary.BigEndian.Uint16(plain))
	if 2+n > len(plain) {
		return nil, ErrDecrypt
	}
	var nonzero byte
	for _, b := range plain[2+n:] {
		nonzero |= b
	}
	if nonzero != 0 {
		return nil, ErrDecrypt
	}
	return plain[2 : 2+n], nil
}
