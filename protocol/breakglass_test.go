package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRecoveryCodeText(t *testing.T) {
	var c RecoveryCode
	for i := range c {
		c[i] = byte(i*37 + 11)
	}
	s := c.Text()
	if len(s) != RecoveryCodeLen+6 || strings.Count(s, "-") != 6 {
		t.Fatalf("text %q", s)
	}
	for _, typed := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", ""), strings.ReplaceAll(s, "-", " - ")} {
		got, err := ParseRecoveryCode(typed)
		if err != nil || got != c {
			t.Fatalf("parse %q: %v %x", typed, err, got)
		}
	}
	// O, I and L read as 0, 1, 1.
	alt := strings.NewReplacer("0", "O", "1", "l").Replace(s)
	if got, err := ParseRecoveryCode(alt); err != nil || got != c {
		t.Fatalf("parse %q: %v", alt, err)
	}
	// Every single-character change of this code is caught by the check
	// (for a code in general, all but about 1 in 4096 are).
	caught := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		for _, r := range "0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
			if byte(r) == s[i] {
				continue
			}
			typo := s[:i] + string(r) + s[i+1:]
			if _, err := ParseRecoveryCode(typo); !errors.Is(err, ErrMalformed) {
				t.Errorf("typo %q accepted", typo)
			}
			caught++
		}
	}
	if caught != RecoveryCodeLen*31 {
		t.Fatalf("checked %d typos", caught)
	}
	for _, bad := range []string{"", s[:len(s)-1], s + "0", strings.Replace(s, s[:1], "U", 1), s[:5] + "*" + s[6:], strings.Repeat(" ", 65)} {
		if _, err := ParseRecoveryCode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestRecoveryCodeRedacted(t *testing.T) {
	var c RecoveryCode
	c[0] = 0xAB
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "code", c, "escrow", RecoveryEscrow{Generation: 3, Code: c})
	out := buf.String() + fmt.Sprint(c) + fmt.Sprintf("%v %s", c, c)
	if strings.Contains(out, c.Text()[:4]) || strings.Contains(strings.ToLower(out), "ab") && !strings.Contains(out, Redacted) {
		t.Fatalf("code logged: %s", out)
	}
	if !strings.Contains(buf.String(), "generation=3") {
		t.Fatalf("generation not logged: %s", buf.String())
	}
}

func TestRecoveryMsgCheck(t *testing.T) {
	e := RecoveryEscrow{Generation: 0}
	if err := e.Check(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	a := RecoveryAck{}
	if err := a.Check(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	e.Generation, a.Generation = 1, 1
	if e.Check() != nil || a.Check() != nil {
		t.Fatal("generation 1 refused")
	}
}

// FuzzParseRecoveryCode parses arbitrary text as a recovery code: no
// panic; what parses writes back as a text that parses to the same code.
func FuzzParseRecoveryCode(f *testing.F) {
	for _, b := range vectorInputs(f, true, "recovery-code") {
		f.Add(string(b))
	}
	f.Add("0000-0000-0000-0000-0000-0000-0000")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseRecoveryCode(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := ParseRecoveryCode(c.Text())
		if err != nil || again != c {
			t.Fatalf("%q -> %q does not read back: %v", s, c.Text(), err)
		}
	})
}

// FuzzDecodeRecoveryMsg decodes arbitrary messages as a RecoveryEscrow or
// a RecoveryAck (the console's and the agent's new decoders, SPEC.md
// 11.15): no panic, whatever decodes re-encodes to the same bytes.
func FuzzDecodeRecoveryMsg(f *testing.F) {
	for _, b := range vectorInputs(f, false, "msg") {
		if len(b) > 0 && (MsgType(b[0]) == MsgRecoveryEscrow || MsgType(b[0]) == MsgRecoveryAck) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e RecoveryEscrow
		if DecodeMsg(data, MsgRecoveryEscrow, &e) == nil {
			again, err := EncodeMsg(MsgRecoveryEscrow, &e)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("RecoveryEscrow re-encodes differently: %v", err)
			}
		}
		var a RecoveryAck
		if DecodeMsg(data, MsgRecoveryAck, &a) == nil {
			again, err := EncodeMsg(MsgRecoveryAck, &a)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("RecoveryAck re-encodes differently: %v", err)
			}
		}
	})
}
