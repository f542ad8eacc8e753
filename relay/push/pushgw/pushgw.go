// Package pushgw is a small push gateway stand-in (for APNs/FCM) that
// speaks the relay's webhook contract (SPEC.md 12.6, package relay/push's
// Webhook): a POST whose body is exactly
//
//	{"token": <gateway token, standard base64 with padding>, "type": "wake"}
//
// with a token of 1..512 bytes. It calls OnWake with the token and answers
// 204; anything else is answered 4xx and wakes nobody. Tests and the phone
// simulator use it to play the operating system's push delivery.
package pushgw

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Bounds of a wake-up request.
const (
	// MaxBody bounds the request body: a 512-byte token in base64 and the
	// JSON around it fit in well under 1 KiB.
	MaxBody = 1024
	// MaxToken bounds the gateway token (SPEC.md 12.6).
	MaxToken = 512
)

// ErrBadWake is returned by ParseWake for a body that is not a wake-up.
var ErrBadWake = errors.New("pushgw: not a wake-up request")

// Wake is the body of a wake-up request.
type Wake struct {
	Token []byte `json:"token"`
	Type  string `json:"type"`
}

// ParseWake parses a wake-up body strictly: one JSON object with exactly
// the fields token (base64, 1..MaxToken bytes) and type ("wake"), nothing
// after it.
func ParseWake(body []byte) ([]byte, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrBadWake, len(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var raw struct {
		Token *string `json:"token"`
		Type  *string `json:"type"`
	}
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadWake, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the object", ErrBadWake)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the object", ErrBadWake)
	}
	if raw.Token == nil || raw.Type == nil || *raw.Type != "wake" {
		return nil, fmt.Errorf("%w: want token and type wake", ErrBadWake)
	}
	tok, err := base64.StdEncoding.Strict().DecodeString(*raw.Token)
	if err != nil || len(tok) == 0 || len(tok) > MaxToken {
		return nil, fmt.Errorf("%w: token", ErrBadWake)
	}
	return tok, nil
}

// EncodeWake is the body the relay posts for token (as relay/push's
// Webhook writes it).
func EncodeWake(token []byte) ([]byte, error) {
	return json.Marshal(Wake{Token: token, Type: "wake"})
}

// Gateway is the stand-in's HTTP handler.
type Gateway struct {
	// OnWake is called with the token of each valid wake-up, before the
	// answer; it must not block for long.
	OnWake func(token []byte)
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	tok, err := ParseWake(body)
	if err != nil {
		http.Error(w, "not a wake-up", http.StatusBadRequest)
		return
	}
	if g.OnWake != nil {
		g.OnWake(tok)
	}
	w.WriteHeader(http.StatusNoContent)
}
