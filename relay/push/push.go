// Package push seals and opens push tickets and calls the push gateway.
//
// A push ticket lets a relay wake a disconnected peer without storing
// anything: the peer seals its gateway token (say an APNs device token) to
// its home relay's HPKE key and hands the ticket to its correspondents; they
// attach it to a Send; when the peer is not connected the relay opens the
// ticket and posts a content-free wake-up to the gateway.
package push

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// ErrBadTicket is returned for a ticket that does not open, does not parse,
// names another mailbox or has expired. It does not say which.
var ErrBadTicket = errors.New("push: invalid ticket")

// KEM, KDF and AEAD of push tickets.
var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// Key is a relay's push-ticket key pair.
type Key struct{ priv hpke.PrivateKey }

// NewKey derives a key pair from 32 bytes of secret input keying material
// (from a key file, or from the relay's Rand).
func NewKey(ikm []byte) (*Key, error) {
	if len(ikm) < 32 {
		return nil, errors.New("push: key material shorter than 32 bytes")
	}
	priv, err := kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("push: derive key: %w", err)
	}
	return &Key{priv: priv}, nil
}

// PublicKey is the serialized public key announced in Welcome.
func (k *Key) PublicKey() []byte { return k.priv.PublicKey().Bytes() }

// LogValue keeps the key out of logs.
func (k *Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Seal seals a ticket to a relay's public key (as announced in Welcome).
func Seal(relayPub []byte, t *protocol.RelayPushTicket) ([]byte, error) {
	pk, err := kem.NewPublicKey(relayPub)
	if err != nil {
		return nil, fmt.Errorf("push: relay key: %w", err)
	}
	pt, err := protocol.AppendRelayPushTicket(nil, t)
	if err != nil {
		return nil, fmt.Errorf("push: encode ticket: %w", err)
	}
	ct, err := hpke.Seal(pk, kdf, aead, []byte(protocol.RelayPushTicketInfo), pt)
	if err != nil {
		return nil, fmt.Errorf("push: seal ticket: %w", err)
	}
	if len(ct) > protocol.MaxRelayPushTicket {
		return nil, fmt.Errorf("push: sealed ticket %d bytes > %d", len(ct), protocol.MaxRelayPushTicket)
	}
	return ct, nil
}

// Open opens a ticket and checks that it may wake mailbox to at time now.
func (k *Key) Open(sealed []byte, to protocol.MailboxID, now time.Time) (*protocol.RelayPushTicket, error) {
	pt, err := hpke.Open(k.priv, kdf, aead, []byte(protocol.RelayPushTicketInfo), sealed)
	if err != nil {
		return nil, ErrBadTicket
	}
	t, err := protocol.DecodeRelayPushTicket(pt)
	if err != nil || t.Mailbox != to || uint64(now.Unix()) > t.Expiry {
		return nil, ErrBadTicket
	}
	return t, nil
}

// Webhook posts wake-ups to an HTTP push gateway (a stand-in for APNs/FCM).
// The request is a JSON object {"token": <base64 bytes>, "type": "wake"}:
// the gateway learns which device to wake and nothing else.
type Webhook struct {
	// URL receives a POST per wake-up.
	URL string
	// Client defaults to a client with a 5 s timeout.
	Client *http.Client
}

// Wake posts one wake-up. Any status but 2xx is an error.
func (w *Webhook) Wake(ctx context.Context, token []byte) error {
	body, err := json.Marshal(struct {
		Token []byte `json:"token"`
		Type  string `json:"type"`
	}{token, "wake"})
	if err != nil {
		return fmt.Errorf("push: encode wake: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		// The URL may carry the gateway's credentials in its query, and
		// this error is logged: keep only why the request failed.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("push: post wake: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("push: gateway status %d", resp.StatusCode)
	}
	return nil
}
