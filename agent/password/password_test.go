package password

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func TestGenerateMeetsRules(t *testing.T) {
	for _, length := range []int{MinLength, 25, 32, 64, MaxLength} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			for range 500 {
				s, err := Generate(rand.Reader, length)
				if err != nil {
					t.Fatal(err)
				}
				p := s.Bytes()
				if len(p) != length {
					t.Fatalf("length %d, want %d", len(p), length)
				}
				for _, class := range []string{Upper, Lower, Digits, Symbols} {
					if !bytes.ContainsAny(p, class) {
						t.Fatalf("password lacks a character of %q", class)
					}
				}
				for _, c := range p {
					if strings.IndexByte(Alphabet, c) < 0 {
						t.Fatalf("character %q not in alphabet", c)
					}
				}
			}
		})
	}
}

func TestAlphabetHasNoProblemCharacters(t *testing.T) {
	if len(Alphabet) != 62 {
		t.Fatalf("alphabet has %d characters, want 62", len(Alphabet))
	}
	seen := map[rune]bool{}
	for _, c := range Alphabet {
		if seen[c] {
			t.Fatalf("duplicate %q in alphabet", c)
		}
		seen[c] = true
	}
	if strings.ContainsAny(Alphabet, "0O1lIio :;'\"`\\$%!&|<>^#~*?(){}[]/\n\t") {
		t.Fatal("alphabet contains an ambiguous or shell-problematic character")
	}
}

// cycleReader yields 0, 1, ..., 255, 0, 1, ... forever.
type cycleReader struct{ next byte }

func (c *cycleReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.next
		c.next++
	}
	return len(p), nil
}

// TestSamplerUnbiased feeds the sampler every byte value equally often: a
// rejection sampler must then emit every alphabet index equally often,
// where plain b % 62 would favour the first 256 % 62 characters.
func TestSamplerUnbiased(t *testing.T) {
	s := &sampler{r: &cycleReader{}}
	// 256*62 input bytes hold 248*62 accepted ones: each index 4*62 times.
	out := make([]byte, sampleLimit*len(Alphabet))
	if err := s.fill(out); err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	for _, c := range out {
		counts[c]++
	}
	want := len(out) / len(Alphabet)
	for _, c := range []byte(Alphabet) {
		if counts[c] != want {
			t.Errorf("%q appeared %d times, want %d", c, counts[c], want)
		}
	}
}

// TestGenerateDistribution checks that, within each class, every character
// is about equally frequent (a deterministic source; loose bounds).
func TestGenerateDistribution(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{1, 2, 3})
	counts := map[byte]int{}
	for range 4000 {
		s, err := Generate(r, MinLength)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Bytes() {
			counts[c]++
		}
	}
	for _, class := range []string{Upper, Lower, Digits, Symbols} {
		total := 0
		for _, c := range []byte(class) {
			total += counts[c]
		}
		mean := float64(total) / float64(len(class))
		for _, c := range []byte(class) {
			if dev := (float64(counts[c]) - mean) / mean; dev > 0.12 || dev < -0.12 {
				t.Errorf("%q: %d occurrences, class mean %.0f", c, counts[c], mean)
			}
		}
	}
	// Class shares follow the alphabet, up to the small shift that the
	// complexity filter causes.
	for _, class := range []string{Upper, Lower, Digits, Symbols} {
		n := 0
		for _, c := range []byte(class) {
			n += counts[c]
		}
		got := float64(n) / float64(4000*MinLength)
		want := float64(len(class)) / float64(len(Alphabet))
		if got < want*0.85 || got > want*1.25 {
			t.Errorf("class %q share %.3f, want about %.3f", class, got, want)
		}
	}
}

type errReader struct{}

var errBroken = errors.New("broken source")

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name   string
		r      io.Reader
		length int
		want   error
	}{
		{"too short", rand.Reader, MinLength - 1, ErrLength},
		{"too long", rand.Reader, MaxLength + 1, ErrLength},
		{"short read", io.LimitReader(rand.Reader, 10), MinLength, io.ErrUnexpectedEOF},
		{"empty source", bytes.NewReader(nil), MinLength, io.EOF},
		{"failing source", errReader{}, MinLength, errBroken},
		{"stuck on accepted byte", constReader(0), MinLength, ErrBadRandom},
		{"stuck on rejected byte", constReader(0xff), MinLength, ErrBadRandom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Generate(tt.r, tt.length)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !s.IsZero() {
				t.Fatal("non-empty secret returned with an error")
			}
		})
	}
}

func TestGenerateForAccountAvoidsName(t *testing.T) {
	// A name made of alphabet letters, so that about one unfiltered
	// password in seventy contains one of its runs.
	const name = "abcdefghjkmnpqrstuvwxyz"
	hits := func(gen func() (Secret, error)) int {
		n := 0
		for range 3000 {
			s, err := gen()
			if err != nil {
				t.Fatal(err)
			}
			if containsAny(s.Bytes(), trigrams([]string{name})) {
				n++
			}
		}
		return n
	}
	r := mrand.NewChaCha8([32]byte{7})
	if n := hits(func() (Secret, error) { return Generate(r, MinLength) }); n == 0 {
		t.Fatal("control: unfiltered passwords never contained a run of the name; the check below proves nothing")
	}
	if n := hits(func() (Secret, error) { return GenerateForAccount(r, MinLength, "MSP-x", name) }); n != 0 {
		t.Fatalf("%d passwords contain a 3-character run of the account name", n)
	}
}

func TestContainsAny(t *testing.T) {
	grams := trigrams([]string{"msp-jdoe", "ab"})
	for _, tt := range []struct {
		p    string
		want bool
	}{
		{"xxxxJDOxx", true},
		{"xxDoE", true},
		{"p-J", true},
		{"msxp-xjx", false},
		{"abab", false},
	} {
		if got := containsAny([]byte(tt.p), grams); got != tt.want {
			t.Errorf("containsAny(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

type holder struct {
	Exported Secret
	hidden   Secret
	Ptr      *Secret
}

func TestRedaction(t *testing.T) {
	s, err := Generate(rand.Reader, MinLength)
	if err != nil {
		t.Fatal(err)
	}
	pw := string(s.Bytes())
	h := holder{Exported: s, hidden: s, Ptr: &s}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h), fmt.Sprintf(verb, []Secret{s}))
	}
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintln(s, h), s.String(), s.GoString(),
		fmt.Errorf("set password %v: %w", s, errBroken).Error())

	for _, newHandler := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("issued", "password", s, "holder", h, slog.Group("g", "pw", s), slog.Any("any", s))
		log.With("pw", s).Info("with")
		outputs = append(outputs, buf.String())
		if !strings.Contains(buf.String(), Redacted) {
			t.Errorf("slog output lacks %s: %s", Redacted, buf.String())
		}
	}

	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != `{"Exported":"REDACTED","Ptr":"REDACTED"}` {
		t.Errorf("json = %s", j)
	}
	outputs = append(outputs, string(j))
	txt, _ := s.MarshalText()
	outputs = append(outputs, string(txt))

	for _, out := range outputs {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) || strings.Contains(out, fmt.Sprint(s.Bytes())) {
			t.Errorf("secret leaked in %q", out)
		}
	}
	if got := fmt.Sprintf("%v|%s|%#v|%x", s, s, s, s); got != "REDACTED|REDACTED|REDACTED|REDACTED" {
		t.Errorf("Sprintf = %q", got)
	}
}

func TestWipeCloneEqual(t *testing.T) {
	a := FromBytes([]byte("Correct-Horse-Battery-42"))
	b := a // a copy shares the bytes
	c := a.Clone()
	if !Equal(a, c) || !Equal(a, b) {
		t.Fatal("Equal is false for equal secrets")
	}
	if Equal(a, FromBytes([]byte("Correct-Horse-Battery-43"))) || Equal(a, FromBytes([]byte("Correct"))) {
		t.Fatal("Equal is true for different secrets")
	}
	a.Wipe()
	if !b.IsZero() || !a.IsZero() {
		t.Fatal("Wipe did not clear every copy")
	}
	if c.IsZero() || string(c.Bytes()) != "Correct-Horse-Battery-42" {
		t.Fatal("Wipe reached a clone")
	}
	if a.Len() != 24 {
		t.Fatalf("Len after Wipe = %d, want 24 (zeroed, not truncated)", a.Len())
	}
	var zero Secret
	if !zero.IsZero() || zero.Bytes() != nil || zero.Len() != 0 {
		t.Fatal("zero Secret is not empty")
	}
	zero.Wipe() // must not panic
	src := []byte("abc")
	d := FromBytes(src)
	src[0] = 'X'
	if string(d.Bytes()) != "abc" {
		t.Fatal("FromBytes did not copy")
	}
}
