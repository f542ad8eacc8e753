package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Relay framing.
//
// A peer talks to a relay over one QUIC connection (ALPN RelayALPN, TLS 1.3)
// and exactly one bidirectional stream that the peer opens. Both directions
// carry a sequence of frames:
//
//	type:   u8  (RelayFrameType)
//	length: u32 big-endian, length of body, at most the type's bound
//	body:   length bytes, layout per type below
//
// Every field is fixed-size or length-prefixed except the payload, which is
// the rest of the body. Decoders reject unknown types, lengths outside the
// type's bound, unknown enum values and trailing bytes, so every accepted
// frame has exactly one encoding.

// RelayALPN is the TLS application protocol a relay and its peers negotiate.
const RelayALPN = "jitkey-relay/1"

// RelayVersion is the relay protocol version carried in Hello and Welcome.
const RelayVersion = 1

// RelayExporterLabel is the TLS exporter label (RFC 8446 section 7.5) whose
// 32-byte output, with an empty context, a peer signs to authenticate.
const RelayExporterLabel = "EXPORTER-jitkey/v1/relay-auth"

// relayAuthLabel is the domain-separation prefix of RelayAuthMessage.
const relayAuthLabel = "jitkey/v1/relay-auth"

// Size bounds of relay frames.
const (
	// MaxRelayPayload bounds the opaque payload of Send and Deliver.
	MaxRelayPayload = 65536
	// MaxRelayPushTicket bounds a sealed push ticket carried in Send.
	MaxRelayPushTicket = 1024
	// MaxRelayPushKey bounds the relay's HPKE public key in Welcome.
	MaxRelayPushKey = 256
	// MaxRelayPushToken bounds the gateway token inside a push ticket.
	MaxRelayPushToken = 512
	// RelayFrameHeaderLen is the size of the type and length fields.
	RelayFrameHeaderLen = 5
	// MaxRelaySendBody is the largest Send body.
	MaxRelaySendBody = 4 + 32 + 2 + MaxRelayPushTicket + MaxRelayPayload
	// MaxRelayFrameBody is the largest body of any frame type.
	MaxRelayFrameBody = MaxRelaySendBody
)

// RelayFrameType is the first byte of a relay frame.
type RelayFrameType uint8

// Relay frame types. The direction is peer→relay (P→R) or relay→peer (R→P).
const (
	// FrameHello (P→R) authenticates the peer; it is the first frame.
	FrameHello RelayFrameType = 0x01
	// FrameWelcome (R→P) accepts a Hello.
	FrameWelcome RelayFrameType = 0x02
	// FrameSend (P→R) asks the relay to deliver a payload to a mailbox.
	FrameSend RelayFrameType = 0x03
	// FrameAck (R→P) says a Send was queued to the connected recipient.
	FrameAck RelayFrameType = 0x04
	// FrameNack (R→P) refuses a Send, with a reason.
	FrameNack RelayFrameType = 0x05
	// FrameDeliver (R→P) carries a payload from another peer.
	FrameDeliver RelayFrameType = 0x06
	// FrameGoAway (R→P) asks the peer to reconnect later (relay shutdown).
	FrameGoAway RelayFrameType = 0x07
	// FrameReplaced (R→P) says a newer connection claimed this mailbox.
	FrameReplaced RelayFrameType = 0x08
	// FramePing (both) asks for a Pong with the same data.
	FramePing RelayFrameType = 0x09
	// FramePong (both) answers a Ping.
	FramePong RelayFrameType = 0x0a
)

// NackReason says why a relay refused a Send.
type NackReason uint8

// Nack reasons.
const (
	// NackNotConnected: the recipient has no connection to this relay.
	NackNotConnected NackReason = 1
	// NackTooLarge: the frame exceeded MaxRelaySendBody.
	NackTooLarge NackReason = 2
	// NackRateLimited: the sender exceeded its send rate.
	NackRateLimited NackReason = 3
	// NackQueueFull: the recipient's queue is full.
	NackQueueFull NackReason = 4
	// NackShuttingDown: the relay is draining and accepts no new frames.
	NackShuttingDown NackReason = 5
	// NackWakeSent: the recipient is not connected; a wake-up was sent
	// through the push gateway. The payload was dropped.
	NackWakeSent NackReason = 6
	// NackPushFailed: the recipient is not connected and the wake-up failed
	// (bad or expired ticket, gateway error, push capacity exhausted).
	NackPushFailed NackReason = 7
)

// String names the reason.
func (r NackReason) String() string {
	switch r {
	case NackNotConnected:
		return "not-connected"
	case NackTooLarge:
		return "too-large"
	case NackRateLimited:
		return "rate-limited"
	case NackQueueFull:
		return "queue-full"
	case NackShuttingDown:
		return "shutting-down"
	case NackWakeSent:
		return "wake-sent"
	case NackPushFailed:
		return "push-failed"
	}
	return fmt.Sprintf("nack-%d", uint8(r))
}

func (r NackReason) valid() bool { return r >= NackNotConnected && r <= NackPushFailed }

// GoAwayReason says why a relay asks a peer to leave.
type GoAwayReason uint8

// GoAway reasons.
const (
	// GoAwayShutdown: the relay is shutting down; reconnect after RetryAfter.
	GoAwayShutdown GoAwayReason = 1
)

// Errors returned by the relay frame decoders.
var (
	// ErrRelayFrame is returned for any malformed relay frame.
	ErrRelayFrame = errors.New("protocol: malformed relay frame")
)

// RelayFrame is one decoded relay frame: one of *RelayHello, *RelayWelcome,
// *RelaySend, *RelayAck, *RelayNack, *RelayDeliver, *RelayGoAway,
// *RelayReplaced, *RelayPing, *RelayPong.
type RelayFrame interface {
	// Type is the frame's type byte.
	Type() RelayFrameType
	// appendBody appends the body encoding.
	appendBody(dst []byte) ([]byte, error)
}

// RelayHello authenticates a peer on a connection:
//
//	version:   u8 (RelayVersion)
//	identity:  32 bytes, Ed25519 public key
//	signature: 64 bytes, Ed25519 over RelayAuthMessage(exporter)
type RelayHello struct {
	Identity  [32]byte
	Signature [64]byte
}

// RelayWelcome accepts a Hello:
//
//	version:     u8 (RelayVersion)
//	mailbox:     32 bytes, MailboxFor(identity)
//	max payload: u32, the relay's payload bound (<= MaxRelayPayload)
//	push key:    u16 length (0..MaxRelayPushKey) || bytes; the relay's HPKE
//	             public key (DHKEM(X25519) serialization), empty if push is off
type RelayWelcome struct {
	Mailbox    MailboxID
	MaxPayload uint32
	PushKey    []byte
}

// RelaySend asks for delivery:
//
//	seq:     u32, chosen by the sender, echoed in Ack/Nack
//	to:      32 bytes, recipient MailboxID
//	ticket:  u16 length (0..MaxRelayPushTicket) || sealed push ticket
//	payload: rest of body (0..MaxRelayPayload), opaque
type RelaySend struct {
	Seq     uint32
	To      MailboxID
	Ticket  []byte
	Payload []byte
}

// RelayAck says Send Seq was queued to the recipient: seq u32.
type RelayAck struct{ Seq uint32 }

// RelayNack refuses Send Seq: seq u32 || reason u8 (a NackReason).
type RelayNack struct {
	Seq    uint32
	Reason NackReason
}

// RelayDeliver carries a payload to its recipient:
//
//	from:    32 bytes, sender MailboxID (authenticated by the relay)
//	payload: rest of body (0..MaxRelayPayload), opaque
//
// The sender's relay is the relay that delivers the frame: a sender always
// reaches a recipient through the recipient's relay, so the recipient replies
// on the same connection.
type RelayDeliver struct {
	From    MailboxID
	Payload []byte
}

// RelayGoAway asks the peer to close and reconnect:
//
//	reason:      u8 (a GoAwayReason)
//	retry after: u32 milliseconds, a hint for the reconnect delay
type RelayGoAway struct {
	Reason       GoAwayReason
	RetryAfterMs uint32
}

// RelayReplaced says a newer authenticated connection claimed this mailbox;
// the relay closes this one. Empty body.
type RelayReplaced struct{}

// RelayPing asks for a Pong echoing Data: 8 bytes.
type RelayPing struct{ Data [8]byte }

// RelayPong answers a Ping: 8 bytes.
type RelayPong struct{ Data [8]byte }

// Type implements RelayFrame.
func (*RelayHello) Type() RelayFrameType { return FrameHello }

// Type implements RelayFrame.
func (*RelayWelcome) Type() RelayFrameType { return FrameWelcome }

// Type implements RelayFrame.
func (*RelaySend) Type() RelayFrameType { return FrameSend }

// Type implements RelayFrame.
func (*RelayAck) Type() RelayFrameType { return FrameAck }

// Type implements RelayFrame.
func (*RelayNack) Type() RelayFrameType { return FrameNack }

// Type implements RelayFrame.
func (*RelayDeliver) Type() RelayFrameType { return FrameDeliver }

// Type implements RelayFrame.
func (*RelayGoAway) Type() RelayFrameType { return FrameGoAway }

// Type implements RelayFrame.
func (*RelayReplaced) Type() RelayFrameType { return FrameReplaced }

// Type implements RelayFrame.
func (*RelayPing) Type() RelayFrameType { return FramePing }

// Type implements RelayFrame.
func (*RelayPong) Type() RelayFrameType { return FramePong }

func (f *RelayHello) appendBody(dst []byte) ([]byte, error) {
	dst = append(dst, RelayVersion)
	dst = append(dst, f.Identity[:]...)
	return append(dst, f.Signature[:]...), nil
}

func (f *RelayWelcome) appendBody(dst []byte) ([]byte, error) {
	if f.MaxPayload > MaxRelayPayload {
		return dst, fmt.Errorf("%w: welcome max payload %d", ErrRelayFrame, f.MaxPayload)
	}
	if len(f.PushKey) > MaxRelayPushKey {
		return dst, fmt.Errorf("%w: push key length %d", ErrRelayFrame, len(f.PushKey))
	}
	dst = append(dst, RelayVersion)
	dst = append(dst, f.Mailbox[:]...)
	dst = binary.BigEndian.AppendUint32(dst, f.MaxPayload)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.PushKey)))
	return append(dst, f.PushKey...), nil
}

func (f *RelaySend) appendBody(dst []byte) ([]byte, error) {
	if len(f.Ticket) > MaxRelayPushTicket {
		return dst, fmt.Errorf("%w: push ticket length %d", ErrRelayFrame, len(f.Ticket))
	}
	if len(f.Payload) > MaxRelayPayload {
		return dst, fmt.Errorf("%w: payload length %d", ErrFrameTooLarge, len(f.Payload))
	}
	dst = binary.BigEndian.AppendUint32(dst, f.Seq)
	dst = append(dst, f.To[:]...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Ticket)))
	dst = append(dst, f.Ticket...)
	return append(dst, f.Payload...), nil
}

func (f *RelayAck) appendBody(dst []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, f.Seq), nil
}

func (f *RelayNack) appendBody(dst []byte) ([]byte, error) {
	if !f.Reason.valid() {
		return dst, fmt.Errorf("%w: nack reason %d", ErrRelayFrame, f.Reason)
	}
	dst = binary.BigEndian.AppendUint32(dst, f.Seq)
	return append(dst, byte(f.Reason)), nil
}

func (f *RelayDeliver) appendBody(dst []byte) ([]byte, error) {
	if len(f.Payload) > MaxRelayPayload {
		return dst, fmt.Errorf("%w: payload length %d", ErrFrameTooLarge, len(f.Payload))
	}
	dst = append(dst, f.From[:]...)
	return append(dst, f.Payload...), nil
}

func (f *RelayGoAway) appendBody(dst []byte) ([]byte, error) {
	if f.Reason != GoAwayShutdown {
		return dst, fmt.Errorf("%w: goaway reason %d", ErrRelayFrame, f.Reason)
	}
	dst = append(dst, byte(f.Reason))
	return binary.BigEndian.AppendUint32(dst, f.RetryAfterMs), nil
}

func (*RelayReplaced) appendBody(dst []byte) ([]byte, error) { return dst, nil }

func (f *RelayPing) appendBody(dst []byte) ([]byte, error) { return append(dst, f.Data[:]...), nil }

func (f *RelayPong) appendBody(dst []byte) ([]byte, error) { return append(dst, f.Data[:]...), nil }

// relayBodyBounds gives the minimum and maximum body length of each type.
func relayBodyBounds(t RelayFrameType) (lo, hi int, ok bool) {
	switch t {
	case FrameHello:
		return 1 + 32 + 64, 1 + 32 + 64, true
	case FrameWelcome:
		return 1 + 32 + 4 + 2, 1 + 32 + 4 + 2 + MaxRelayPushKey, true
	case FrameSend:
		return 4 + 32 + 2, MaxRelaySendBody, true
	case FrameAck:
		return 4, 4, true
	case FrameNack:
		return 5, 5, true
	case FrameDeliver:
		return 32, 32 + MaxRelayPayload, true
	case FrameGoAway:
		return 5, 5, true
	case FrameReplaced:
		return 0, 0, true
	case FramePing, FramePong:
		return 8, 8, true
	}
	return 0, 0, false
}

// AppendRelayFrame appends the encoding of f (header and body) to dst.
func AppendRelayFrame(dst []byte, f RelayFrame) ([]byte, error) {
	start := len(dst)
	dst = append(dst, byte(f.Type()), 0, 0, 0, 0)
	dst, err := f.appendBody(dst)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - RelayFrameHeaderLen
	if _, hi, _ := relayBodyBounds(f.Type()); n > hi {
		return dst[:start], fmt.Errorf("%w: body length %d > %d", ErrFrameTooLarge, n, hi)
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(n))
	return dst, nil
}

// EncodeRelayFrame returns the encoding of f.
func EncodeRelayFrame(f RelayFrame) ([]byte, error) { return AppendRelayFrame(nil, f) }

// ParseRelayFrameHeader parses the 5-byte header and checks the length
// against the type's bounds. For an over-long Send it returns
// ErrFrameTooLarge with the type and length filled in, so that a relay can
// skip the body and answer NackTooLarge.
func ParseRelayFrameHeader(hdr [RelayFrameHeaderLen]byte) (RelayFrameType, uint32, error) {
	t := RelayFrameType(hdr[0])
	n := binary.BigEndian.Uint32(hdr[1:])
	lo, hi, ok := relayBodyBounds(t)
	if !ok {
		return t, n, fmt.Errorf("%w: unknown type 0x%02x", ErrRelayFrame, hdr[0])
	}
	if n > uint32(hi) {
		return t, n, fmt.Errorf("%w: type 0x%02x length %d > %d", ErrFrameTooLarge, hdr[0], n, hi)
	}
	if n < uint32(lo) {
		return t, n, fmt.Errorf("%w: type 0x%02x length %d < %d", ErrRelayFrame, hdr[0], n, lo)
	}
	return t, n, nil
}

// DecodeRelaySendBody decodes the body of a Send frame into f, with the
// checks of DecodeRelayFrameBody, without allocating (the relay decodes
// one per forwarded frame). f's Ticket and Payload alias body.
func DecodeRelaySendBody(body []byte, f *RelaySend) error {
	if lo, hi, _ := relayBodyBounds(FrameSend); len(body) < lo || len(body) > hi {
		return fmt.Errorf("%w: type 0x%02x body length %d", ErrRelayFrame, byte(FrameSend), len(body))
	}
	be := binary.BigEndian
	*f = RelaySend{Seq: be.Uint32(body[0:4])}
	copy(f.To[:], body[4:36])
	k := int(be.Uint16(body[36:38]))
	if k > MaxRelayPushTicket || 38+k > len(body) {
		return fmt.Errorf("%w: send ticket length %d", ErrRelayFrame, k)
	}
	if k > 0 {
		f.Ticket = body[38 : 38+k]
	}
	if p := body[38+k:]; len(p) > MaxRelayPayload {
		return fmt.Errorf("%w: send payload length %d", ErrFrameTooLarge, len(p))
	} else if len(p) > 0 {
		f.Payload = p
	}
	return nil
}

// DecodeRelayFrameBody decodes the body of a frame of type t. Byte slices
// in the result (payload, ticket, push key) alias body.
func DecodeRelayFrameBody(t RelayFrameType, body []byte) (RelayFrame, error) {
	lo, hi, ok := relayBodyBounds(t)
	if !ok {
		return nil, fmt.Errorf("%w: unknown type 0x%02x", ErrRelayFrame, byte(t))
	}
	if len(body) < lo || len(body) > hi {
		return nil, fmt.Errorf("%w: type 0x%02x body length %d", ErrRelayFrame, byte(t), len(body))
	}
	be := binary.BigEndian
	switch t {
	case FrameHello:
		if body[0] != RelayVersion {
			return nil, fmt.Errorf("%w: hello version %d", ErrRelayFrame, body[0])
		}
		f := new(RelayHello)
		copy(f.Identity[:], body[1:33])
		copy(f.Signature[:], body[33:97])
		return f, nil
	case FrameWelcome:
		if body[0] != RelayVersion {
			return nil, fmt.Errorf("%w: welcome version %d", ErrRelayFrame, body[0])
		}
		f := new(RelayWelcome)
		copy(f.Mailbox[:], body[1:33])
		f.MaxPayload = be.Uint32(body[33:37])
		if f.MaxPayload > MaxRelayPayload {
			return nil, fmt.Errorf("%w: welcome max payload %d", ErrRelayFrame, f.MaxPayload)
		}
		k := int(be.Uint16(body[37:39]))
		if 39+k != len(body) {
			return nil, fmt.Errorf("%w: welcome push key length %d", ErrRelayFrame, k)
		}
		if k > 0 {
			f.PushKey = body[39:]
		}
		return f, nil
	case FrameSend:
		f := new(RelaySend)
		if err := DecodeRelaySendBody(body, f); err != nil {
			return nil, err
		}
		return f, nil
	case FrameAck:
		return &RelayAck{Seq: be.Uint32(body)}, nil
	case FrameNack:
		f := &RelayNack{Seq: be.Uint32(body), Reason: NackReason(body[4])}
		if !f.Reason.valid() {
			return nil, fmt.Errorf("%w: nack reason %d", ErrRelayFrame, body[4])
		}
		return f, nil
	case FrameDeliver:
		f := new(RelayDeliver)
		copy(f.From[:], body[:32])
		if len(body) > 32 {
			f.Payload = body[32:]
		}
		return f, nil
	case FrameGoAway:
		f := &RelayGoAway{Reason: GoAwayReason(body[0]), RetryAfterMs: be.Uint32(body[1:])}
		if f.Reason != GoAwayShutdown {
			return nil, fmt.Errorf("%w: goaway reason %d", ErrRelayFrame, body[0])
		}
		return f, nil
	case FrameReplaced:
		return new(RelayReplaced), nil
	case FramePing:
		f := new(RelayPing)
		copy(f.Data[:], body)
		return f, nil
	default: // FramePong
		f := new(RelayPong)
		copy(f.Data[:], body)
		return f, nil
	}
}

// DecodeRelayFrame decodes exactly one frame from b; trailing bytes are an
// error. Byte slices in the result alias b.
func DecodeRelayFrame(b []byte) (RelayFrame, error) {
	if len(b) < RelayFrameHeaderLen {
		return nil, fmt.Errorf("%w: short header", ErrRelayFrame)
	}
	t, n, err := ParseRelayFrameHeader([RelayFrameHeaderLen]byte(b[:RelayFrameHeaderLen]))
	if err != nil {
		return nil, err
	}
	if uint64(len(b)-RelayFrameHeaderLen) != uint64(n) {
		return nil, fmt.Errorf("%w: body length %d, header says %d", ErrRelayFrame, len(b)-RelayFrameHeaderLen, n)
	}
	return DecodeRelayFrameBody(t, b[RelayFrameHeaderLen:])
}

// ReadRelayFrame reads one frame from r. It checks the declared length
// against the type's bound before allocating. buf, if large enough, is used
// for the body; byte slices in the result then alias it.
func ReadRelayFrame(r io.Reader, buf []byte) (RelayFrame, error) {
	var hdr [RelayFrameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	t, n, err := ParseRelayFrameHeader(hdr)
	if err != nil {
		return nil, err
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: truncated body: %v", ErrRelayFrame, err)
	}
	return DecodeRelayFrameBody(t, body)
}

// WriteRelayFrame encodes f and writes it to w in one Write call.
func WriteRelayFrame(w io.Writer, f RelayFrame) error {
	b, err := EncodeRelayFrame(f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// RelayAuthMessage is what a peer signs with its identity key to
// authenticate on a relay connection:
//
//	"jitkey/v1/relay-auth" || 0x00 || exporter (32 bytes)
//
// where exporter is the connection's TLS exporter output for
// RelayExporterLabel, empty context, 32 bytes. The signature is therefore
// valid on that one TLS connection only.
func RelayAuthMessage(exporter []byte) []byte {
	m := make([]byte, 0, len(relayAuthLabel)+1+len(exporter))
	m = append(m, relayAuthLabel...)
	m = append(m, 0)
	return append(m, exporter...)
}

// RelayPin is a relay's pin: SHA-256 of its certificate's DER-encoded
// SubjectPublicKeyInfo.
func RelayPin(spki []byte) [32]byte { return sha256.Sum256(spki) }

// RelayPushTicketInfo is the HPKE info string of sealed push tickets.
const RelayPushTicketInfo = "jitkey/v1/push-ticket"

// RelayPushTicket is the plaintext of a push ticket. It is sealed with HPKE
// (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, info
// RelayPushTicketInfo) to the public key the recipient's relay announces in
// Welcome; only that relay can open it. Layout:
//
//	version: u8 (RelayVersion)
//	mailbox: 32 bytes, the mailbox the ticket may wake (must equal Send.To)
//	expiry:  u64 big-endian, Unix seconds after which the ticket is refused
//	token:   u16 length (1..MaxRelayPushToken) || gateway token bytes
type RelayPushTicket struct {
	Mailbox MailboxID
	Expiry  uint64
	Token   []byte
}

// AppendRelayPushTicket appends the plaintext encoding of t.
func AppendRelayPushTicket(dst []byte, t *RelayPushTicket) ([]byte, error) {
	if len(t.Token) == 0 || len(t.Token) > MaxRelayPushToken {
		return dst, fmt.Errorf("%w: push token length %d", ErrRelayFrame, len(t.Token))
	}
	dst = append(dst, RelayVersion)
	dst = append(dst, t.Mailbox[:]...)
	dst = binary.BigEndian.AppendUint64(dst, t.Expiry)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Token)))
	return append(dst, t.Token...), nil
}

// DecodeRelayPushTicket decodes a push ticket plaintext; Token aliases b.
func DecodeRelayPushTicket(b []byte) (*RelayPushTicket, error) {
	if len(b) < 1+32+8+2 || b[0] != RelayVersion {
		return nil, fmt.Errorf("%w: push ticket header", ErrRelayFrame)
	}
	t := new(RelayPushTicket)
	copy(t.Mailbox[:], b[1:33])
	t.Expiry = binary.BigEndian.Uint64(b[33:41])
	k := int(binary.BigEndian.Uint16(b[41:43]))
	if k == 0 || k > MaxRelayPushToken || 43+k != len(b) {
		return nil, fmt.Errorf("%w: push token length %d", ErrRelayFrame, k)
	}
	t.Token = b[43:]
	return t, nil
}

// RelayCloseCode is the QUIC application error code with which a relay
// closes a connection.
type RelayCloseCode uint64

// Relay close codes. Authentication failures all use one code, with no
// hint which check failed.
const (
	// RelayCloseNormal: orderly close (peer or relay).
	RelayCloseNormal RelayCloseCode = 0
	// RelayCloseAuthFailed: Hello missing, late or not verifiable.
	RelayCloseAuthFailed RelayCloseCode = 0x100
	// RelayCloseProtocol: a malformed or unexpected frame.
	RelayCloseProtocol RelayCloseCode = 0x101
	// RelayCloseReplaced: a newer connection claimed the mailbox.
	RelayCloseReplaced RelayCloseCode = 0x102
	// RelayCloseShutdown: the relay is shutting down.
	RelayCloseShutdown RelayCloseCode = 0x103
	// RelayCloseSlowReader: the peer did not read its frames in time.
	RelayCloseSlowReader RelayCloseCode = 0x104
)
