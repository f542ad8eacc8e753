package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// MailboxID names a peer on a relay. It is derived from the peer's Ed25519
// identity key, so only the holder of that key can claim the mailbox:
//
//	MailboxID = SHA-256("jitkey/v1/mailbox" || 0x00 || identity public key (32 bytes))
type MailboxID [32]byte

// mailboxLabel is the domain-separation prefix of MailboxFor.
const mailboxLabel = "jitkey/v1/mailbox"

// MaxRelayAddrLen bounds a relay address ("host:port") in every message.
const MaxRelayAddrLen = 96

// ErrBadAddr is returned when a peer or relay address does not parse.
var ErrBadAddr = errors.New("protocol: malformed peer address")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// MailboxFor derives the mailbox of an identity public key.
func MailboxFor(identity ed25519.PublicKey) MailboxID {
	h := sha256.New()
	h.Write([]byte(mailboxLabel))
	h.Write([]byte{0})
	h.Write(identity)
	var m MailboxID
	h.Sum(m[:0])
	return m
}

// String renders the mailbox as lowercase unpadded base32.
func (m MailboxID) String() string { return strings.ToLower(b32.EncodeToString(m[:])) }

// MailboxTextLen is the length of a mailbox id's text form.
const MailboxTextLen = 52

// ParseMailbox parses the String form of a mailbox id: exactly 52
// characters of lowercase unpadded base32 whose 4 trailing bits are zero,
// so that every mailbox has exactly one text form.
func ParseMailbox(s string) (MailboxID, error) {
	var m MailboxID
	bad := fmt.Errorf("%w: mailbox %q", ErrBadAddr, s)
	if len(s) != MailboxTextLen {
		return m, bad
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return m, bad
		}
	}
	b, err := b32.DecodeString(strings.ToUpper(s))
	if err != nil || len(b) != len(m) {
		return m, bad
	}
	copy(m[:], b)
	if m.String() != s { // nonzero trailing bits
		return MailboxID{}, bad
	}
	return m, nil
}

// PeerAddr is where a peer can be reached: its mailbox on its home relay.
// Its text form is "mailbox@host:port".
type PeerAddr struct {
	Relay   string    // home relay, "host:port", at most MaxRelayAddrLen bytes
	Mailbox MailboxID // derived from the peer's identity key
}

// String renders the address as "mailbox@host:port".
func (a PeerAddr) String() string { return a.Mailbox.String() + "@" + a.Relay }

// ParsePeerAddr parses "mailbox@host:port".
func ParsePeerAddr(s string) (PeerAddr, error) {
	mb, relay, ok := strings.Cut(s, "@")
	if !ok {
		return PeerAddr{}, fmt.Errorf("%w: %q has no '@'", ErrBadAddr, s)
	}
	if err := CheckRelayAddr(relay); err != nil {
		return PeerAddr{}, err
	}
	m, err := ParseMailbox(mb)
	if err != nil {
		return PeerAddr{}, err
	}
	return PeerAddr{Relay: relay, Mailbox: m}, nil
}

// CheckRelayAddr validates a relay address (SPEC.md section 2):
//
//	relay-addr = host ":" port     ; 1..MaxRelayAddrLen bytes, each 0x21..0x7e
//	host       = "[" inner "]"     ; inner: 1* bytes other than "[" "]", with a ":"
//	           / name              ; name:  1* bytes other than ":" "[" "]"
//	port       = 1*DIGIT           ; value 1..65535, leading zeros allowed
//
// The address is not canonicalised: it enters Noise prologues byte for
// byte, so an IPv6 literal is not checked beyond this grammar, and case,
// a trailing dot or leading zeros of the port are kept as written.
func CheckRelayAddr(s string) error {
	if s == "" || len(s) > MaxRelayAddrLen {
		return fmt.Errorf("%w: relay address length %d", ErrBadAddr, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%w: relay address %q", ErrBadAddr, s)
		}
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return fmt.Errorf("%w: relay address %q has no port", ErrBadAddr, s)
	}
	host, port := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") {
		// An IPv6 literal: "[" address "]", the address itself without brackets.
		inner, ok := strings.CutSuffix(host[1:], "]")
		if !ok || inner == "" || !strings.Contains(inner, ":") || strings.ContainsAny(inner, "[]") {
			return fmt.Errorf("%w: relay address %q has a malformed IPv6 literal", ErrBadAddr, s)
		}
	} else if strings.ContainsAny(host, ":[]") {
		return fmt.Errorf("%w: relay address %q is ambiguous (an IPv6 address needs brackets)", ErrBadAddr, s)
	}
	n := 0
	for j := 0; j < len(port); j++ {
		if port[j] < '0' || port[j] > '9' || n > 65535 {
			return fmt.Errorf("%w: relay address %q has a bad port", ErrBadAddr, s)
		}
		n = n*10 + int(port[j]-'0')
	}
	if n == 0 || n > 65535 {
		return fmt.Errorf("%w: relay address %q has a bad port", ErrBadAddr, s)
	}
	return nil
}
