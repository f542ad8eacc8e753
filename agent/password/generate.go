package password

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Character classes of the password alphabet. Characters that are easily
// confused (0 O o 1 l I i) are left out, and so are characters that need
// quoting in a shell, cmd.exe or PowerShell, or that separate fields in the
// files and tools passwords pass through (space, quotes, backslash, $, %,
// :, ;, &, |, <, >, !, ^, `, #, ~, brackets).
const (
	Upper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	Lower   = "abcdefghjkmnpqrstuvwxyz"
	Digits  = "23456789"
	Symbols = "-_.,+=@"
	// Alphabet is every character Generate may emit (62 characters, about
	// 5.95 bits each).
	Alphabet = Upper + Lower + Digits + Symbols
)

// MinLength and MaxLength bound the length of a generated password.
// 24 characters of Alphabet carry about 142 bits; 256 is the Windows limit.
const (
	MinLength = 24
	MaxLength = 256
)

// maxAttempts bounds how many candidates Generate draws before giving up on
// a random source that cannot produce an acceptable password (for example
// one stuck on a single byte value). With a uniform source a candidate is
// rejected about one time in ten, so a working source never gets near it.
const maxAttempts = 1000

// ErrLength is returned for a requested length outside MinLength..MaxLength.
var ErrLength = errors.New("password: length out of range")

// ErrBadRandom is returned when the random source yields no acceptable
// password within a bounded number of attempts.
var ErrBadRandom = errors.New("password: random source produced no acceptable password")

// Generate returns a password of length characters drawn uniformly from
// Alphabet that contains at least one character of each class (Upper,
// Lower, Digits, Symbols). r should be crypto/rand.Reader; an error reading
// it is returned wrapped.
func Generate(r io.Reader, length int) (Secret, error) {
	return GenerateForAccount(r, length)
}

// GenerateForAccount is Generate with the Windows / Active Directory rule
// that a password must not contain the account's name: the result contains
// no run of 3 or more characters of any of names (compared
// case-insensitively; names shorter than 3 characters impose nothing).
// Pass the account name and, for AD, the display name's words.
//
// Candidates that fail a rule are discarded whole, so the result is uniform
// over all passwords that pass.
func GenerateForAccount(r io.Reader, length int, names ...string) (Secret, error) {
	if length < MinLength || length > MaxLength {
		return Secret{}, fmt.Errorf("%w: %d not in %d..%d", ErrLength, length, MinLength, MaxLength)
	}
	grams := trigrams(names)
	src := &sampler{r: r}
	defer src.wipe()
	out := make([]byte, length)
	for range maxAttempts {
		if err := src.fill(out); err != nil {
			clear(out)
			return Secret{}, err
		}
		if meetsComplexity(out) && !containsAny(out, grams) {
			return newSecret(out), nil
		}
	}
	clear(out)
	return Secret{}, ErrBadRandom
}

// sampler turns random bytes into uniformly distributed Alphabet indexes
// by rejection sampling: bytes at or above the largest multiple of
// len(Alphabet) that fits in a byte are discarded.
type sampler struct {
	r   io.Reader
	buf [128]byte
	pos int
	n   int
	// rejected counts discarded bytes in a row, to stop on a source that
	// only yields rejectable bytes.
	rejected int
}

const sampleLimit = 256 - 256%len(Alphabet)

func (s *sampler) fill(out []byte) error {
	for i := range out {
		for {
			if s.pos == s.n {
				if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
					return fmt.Errorf("password: read random: %w", err)
				}
				s.pos, s.n = 0, len(s.buf)
			}
			b := s.buf[s.pos]
			s.buf[s.pos] = 0
			s.pos++
			if int(b) < sampleLimit {
				out[i] = Alphabet[int(b)%len(Alphabet)]
				s.rejected = 0
				break
			}
			s.rejected++
			if s.rejected > 4*len(s.buf) {
				return ErrBadRandom
			}
		}
	}
	return nil
}

func (s *sampler) wipe() { clear(s.buf[:]) }

// meetsComplexity reports whether p has a character of every class.
func meetsComplexity(p []byte) bool {
	var u, l, d, s bool
	for _, c := range p {
		switch {
		case strings.IndexByte(Upper, c) >= 0:
			u = true
		case strings.IndexByte(Lower, c) >= 0:
			l = true
		case strings.IndexByte(Digits, c) >= 0:
			d = true
		case strings.IndexByte(Symbols, c) >= 0:
			s = true
		}
	}
	return u && l && d && s
}

// trigrams returns the lowercased 3-character runs of names.
func trigrams(names []string) [][3]byte {
	var out [][3]byte
	for _, n := range names {
		n = strings.ToLower(n)
		for i := 0; i+3 <= len(n); i++ {
			out = append(out, [3]byte{n[i], n[i+1], n[i+2]})
		}
	}
	return out
}

// containsAny reports whether p contains any of grams, case-insensitively.
func containsAny(p []byte, grams [][3]byte) bool {
	for i := 0; i+3 <= len(p); i++ {
		w := [3]byte{lower(p[i]), lower(p[i+1]), lower(p[i+2])}
		for _, g := range grams {
			if w == g {
				return true
			}
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
