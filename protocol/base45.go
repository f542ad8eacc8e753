package protocol

import (
	"errors"
	"strings"
)

// base45 (RFC 9285) maps bytes onto the QR alphanumeric character set, so a
// QR code can use alphanumeric mode (5.5 bits per character) instead of
// byte mode (8 bits).
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

var errBase45 = errors.New("protocol: invalid base45")

func base45Encode(b []byte) string {
	var s strings.Builder
	s.Grow(len(b)/2*3 + 2)
	for i := 0; i+1 < len(b); i += 2 {
		n := int(b[i])<<8 | int(b[i+1])
		s.WriteByte(base45Alphabet[n%45])
		s.WriteByte(base45Alphabet[n/45%45])
		s.WriteByte(base45Alphabet[n/2025])
	}
	if len(b)%2 == 1 {
		n := int(b[len(b)-1])
		s.WriteByte(base45Alphabet[n%45])
		s.WriteByte(base45Alphabet[n/45])
	}
	return s.String()
}

func base45Value(c byte) int { return strings.IndexByte(base45Alphabet, c) }

func base45Decode(s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return nil, errBase45
	}
	out := make([]byte, 0, len(s)/3*2+1)
	for i := 0; i < len(s); i += 3 {
		if len(s)-i == 2 {
			c, d := base45Value(s[i]), base45Value(s[i+1])
			n := c + d*45
			if c < 0 || d < 0 || n > 0xff {
				return nil, errBase45
			}
			out = append(out, byte(n))
			break
		}
		c, d, e := base45Value(s[i]), base45Value(s[i+1]), base45Value(s[i+2])
		n := c + d*45 + e*2025
		if c < 0 || d < 0 || e < 0 || n > 0xffff {
			return nil, errBase45
		}
		out = append(out, byte(n>>8), byte(n))
	}
	return out, nil
}
