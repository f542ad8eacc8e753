package otpcode_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/protocol"
)

// TestRFC6238 checks the test vectors of RFC 6238 appendix B (8 digits;
// SHA-1 with the 20-byte key, SHA-256 with the 32-byte key).
func TestRFC6238(t *testing.T) {
	sha1Key := []byte("12345678901234567890")
	sha256Key := []byte("12345678901234567890123456789012")
	for _, v := range []struct {
		unix       int64
		sha1, s256 string
	}{
		{59, "94287082", "46119246"},
		{1111111109, "07081804", "68084774"},
		{1111111111, "14050471", "67062674"},
		{1234567890, "89005924", "91819424"},
		{2000000000, "69279037", "90698825"},
		{20000000000, "65353130", "77737706"},
	} {
		step := otpcode.Step(time.Unix(v.unix, 0), 30)
		for _, c := range []struct {
			key  []byte
			alg  string
			want string
		}{{sha1Key, "", v.sha1}, {sha256Key, protocol.OTPSHA256, v.s256}} {
			got, err := otpcode.Code(c.key, step, protocol.OfflineParams{Digits: 8, Period: 30, Algorithm: c.alg})
			if err != nil || got != c.want {
				t.Errorf("T=%d %q: %q %v, want %q", v.unix, c.alg, got, err, c.want)
			}
		}
	}
}

// TestOathtool: codes computed by oathtool (an independent TOTP
// implementation) from the same key and time are accepted, for SHA-1 and
// SHA-256, 6 and 8 digits, 30 and 60 s.
func TestOathtool(t *testing.T) {
	if _, err := exec.LookPath("oathtool"); err != nil {
		t.Fatalf("oathtool is required (make deps installs it): %v", err)
	}
	key := make([]byte, otpcode.KeySize)
	rand.Read(key)
	now := time.Unix(1_790_000_000, 0)
	for _, p := range []protocol.OfflineParams{
		{Digits: 6, Period: 30}, {Digits: 8, Period: 30},
		{Digits: 6, Period: 60, Algorithm: protocol.OTPSHA256}, {Digits: 8, Period: 30, Algorithm: protocol.OTPSHA256},
	} {
		alg := "sha1"
		if p.Algorithm == protocol.OTPSHA256 {
			alg = "sha256"
		}
		out, err := exec.Command("oathtool", "--totp="+alg, "-d", fmt.Sprint(p.Digits), "-s", fmt.Sprintf("%ds", p.Period),
			"-N", fmt.Sprintf("@%d", now.Unix()), hex.EncodeToString(key)).Output()
		if err != nil {
			t.Fatalf("oathtool: %v", err)
		}
		code := strings.TrimSpace(string(out))
		p.Skew = 0
		step, ok, err := otpcode.Match(key, code, now, p, 0)
		if err != nil || !ok || step != otpcode.Step(now, p.Period) {
			t.Errorf("%+v: oathtool's %s not accepted (%d %v %v)", p, code, step, ok, err)
		}
	}
}

// TestMatchWindow: ±Skew steps are accepted, ±2 are not, a step at or
// below the last used one is not, and malformed codes are refused.
func TestMatchWindow(t *testing.T) {
	key := bytes.Repeat([]byte{7}, otpcode.KeySize)
	p := protocol.OfflineParams{Digits: 6, Period: 30, Skew: 1}
	now := time.Unix(1_790_000_015, 0)
	t0 := otpcode.Step(now, 30)
	code := func(step uint64) string {
		c, err := otpcode.Code(key, step, p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		name  string
		step  uint64
		after uint64
		ok    bool
	}{
		{"now", t0, 0, true},
		{"one step back", t0 - 1, 0, true},
		{"one step ahead", t0 + 1, 0, true},
		{"two steps back", t0 - 2, 0, false},
		{"two steps ahead", t0 + 2, 0, false},
		{"step already used", t0, t0, false},
		{"step below the last used", t0 - 1, t0, false},
		{"later step after a used one", t0 + 1, t0, true},
	} {
		got, ok, err := otpcode.Match(key, code(c.step), now, p, c.after)
		if err != nil || ok != c.ok || (ok && got != c.step) {
			// Two steps' codes may collide (1 in 10^6): not with this key.
			t.Errorf("%s: step %d ok %v err %v, want ok %v", c.name, got, ok, err, c.ok)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "12345a", " 123456", "１２３４５６"} {
		if _, ok, err := otpcode.Match(key, bad, now, p, 0); ok || err != otpcode.ErrFormat {
			t.Errorf("%q: ok %v err %v", bad, ok, err)
		}
	}
}

// TestSharedCodeKey: the code key binds both the technician and the
// device, and a phone holding the tech key derives the agent's key.
func TestSharedCodeKey(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	d1, d2 := protocol.DeviceID{1}, protocol.DeviceID{2}
	a1, _ := otpcode.SharedCodeKey(secret, "tech-a", d1)
	a2, _ := otpcode.SharedCodeKey(secret, "tech-a", d2)
	b1, _ := otpcode.SharedCodeKey(secret, "tech-b", d1)
	if len(a1) != otpcode.KeySize || bytes.Equal(a1, a2) || bytes.Equal(a1, b1) {
		t.Fatalf("code keys not distinct: %x %x %x", a1, a2, b1)
	}
	tk, err := protocol.Derive(secret, protocol.LabelOTPSharedTech, []byte("tech-a"), 32)
	if err != nil {
		t.Fatal(err)
	}
	phone, err := otpcode.CodeKey(tk, d1)
	if err != nil || !bytes.Equal(phone, a1) {
		t.Fatalf("phone's code key %x, agent's %x (%v)", phone, a1, err)
	}
}

// TestAgreesWithProtocol: the codes agree with protocol.TOTP, the
// independent RFC 6238 implementation the test vectors use (SHA-1).
func TestAgreesWithProtocol(t *testing.T) {
	key := bytes.Repeat([]byte{9}, otpcode.KeySize)
	for _, p := range []protocol.OfflineParams{{Digits: 6, Period: 30}, {Digits: 8, Period: 60}} {
		for _, unix := range []int64{0, 59, 1_790_000_000, 20_000_000_000} {
			want, err := protocol.TOTP(key, unix, p.Period, p.Digits)
			if err != nil {
				t.Fatal(err)
			}
			got, err := otpcode.Code(key, otpcode.Step(time.Unix(unix, 0), p.Period), p)
			if err != nil || got != want {
				t.Errorf("%+v at %d: %s %v, protocol.TOTP %s", p, unix, got, err, want)
			}
		}
	}
}
