package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

func TestDecodeMsg(t *testing.T) {
	hello, err := EncodeMsg(MsgPolicyAck, &PolicyAck{Versions: []TenantVersion{{Tenant: "acme", Version: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if hello[0] != byte(MsgPolicyAck) {
		t.Fatalf("type byte %d", hello[0])
	}
	refusal, _ := EncodeMsg(MsgError, &ErrorMsg{Code: CodeRefused, Text: "not allowed"})
	tests := []struct {
		name string
		in   []byte
		want MsgType
		err  error
	}{
		{"match", hello, MsgPolicyAck, nil},
		{"type mismatch", hello, MsgAuditAck, ErrMalformed},
		{"empty", nil, MsgPolicyAck, ErrMalformed},
		{"type only", []byte{byte(MsgPolicyAck)}, MsgPolicyAck, ErrMalformed},
		{"trailing", append(bytes.Clone(hello), 0), MsgPolicyAck, ErrMalformed},
		{"malformed error message", []byte{byte(MsgError), 0xa0}, MsgPolicyAck, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v PolicyAck
			wantErr(t, DecodeMsg(tt.in, tt.want, &v), tt.err)
		})
	}
	t.Run("body of another type", func(t *testing.T) {
		var v AuditAck
		wantErr(t, DecodeMsg(append([]byte{byte(MsgAuditAck)}, hello[1:]...), MsgAuditAck, &v), ErrMalformed)
	})
	t.Run("peer error", func(t *testing.T) {
		var v PolicyAck
		err := DecodeMsg(refusal, MsgPolicyAck, &v)
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Code != CodeRefused || pe.Text != "not allowed" || !strings.Contains(pe.Error(), "not allowed") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("error message wanted", func(t *testing.T) {
		var e ErrorMsg
		if err := DecodeMsg(refusal, MsgError, &e); err != nil || e.Code != CodeRefused {
			t.Fatalf("%+v %v", e, err)
		}
	})
}

func TestProofInput(t *testing.T) {
	if got := ProofInput("identity", []byte{1, 2}); !bytes.Equal(got, []byte("jitkey/v1/proof/identity\x00\x01\x02")) {
		t.Fatalf("%q", got)
	}
}

func testEnrollToken(t testing.TB) EnrollToken {
	f := newFixture(t)
	tok := EnrollToken{
		Tenant:    testTenant,
		MSPKey:    f.mspPub,
		Console:   MailboxFor(detrand.Ed25519("console-identity").Public().(ed25519.PublicKey)).String() + "@" + testRelayA,
		RelayPins: [][32]byte{{0xaa}},
		Secret:    [16]byte{1, 2, 3},
		Expires:   testNow.Add(time.Hour).Unix(),
	}
	copy(tok.ConsoleNoise[:], f.console.Public)
	return tok
}

func TestEnrollToken(t *testing.T) {
	good := testEnrollToken(t)
	text, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	enc := func(mod func(*EnrollToken)) string {
		tok := good
		mod(&tok)
		b, err := Marshal(&tok)
		if err != nil {
			t.Fatal(err)
		}
		return "jk-enroll-" + base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		text string
		now  time.Time
		want error
	}{
		{"valid", text, testNow, nil},
		{"surrounding space", "  " + text + "\n", testNow, nil},
		{"at expiry", text, time.Unix(good.Expires, 0), nil},
		{"expired", text, time.Unix(good.Expires+1, 0), ErrExpired},
		{"no pin", enc(func(t *EnrollToken) { t.RelayPins = nil }), testNow, ErrMalformed},
		{"empty pin list", enc(func(t *EnrollToken) { t.RelayPins = [][32]byte{} }), testNow, ErrMalformed},
		{"zero console key", enc(func(t *EnrollToken) { t.ConsoleNoise = NoiseKey{} }), testNow, ErrBadKey},
		{"bad console address", enc(func(t *EnrollToken) { t.Console = "nowhere" }), testNow, ErrBadAddr},
		{"wrong prefix", "jk-enrol-" + text[10:], testNow, ErrMalformed},
		{"no prefix", text[10:], testNow, ErrMalformed},
		{"padded base64", text + "==", testNow, ErrMalformed},
		{"std base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(text[:10]) + strings.NewReplacer("-", "+", "_", "/").Replace(text[10:]), testNow, nil},
		{"truncated", text[:len(text)-4], testNow, ErrMalformed},
		{"too long", text + strings.Repeat("A", MaxEnrollToken), testNow, ErrMalformed},
		{"garbage CBOR", "jk-enroll-" + base64.RawURLEncoding.EncodeToString([]byte{0xff}), testNow, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "std base64 alphabet" {
				if !strings.ContainsAny(text[10:], "-_") {
					t.Skip("token text has no URL-alphabet characters")
				}
				tt.want = ErrMalformed
			}
			got, err := DecodeEnrollToken(tt.text, tt.now)
			wantErr(t, err, tt.want)
			if tt.want == nil && (got.Tenant != good.Tenant || got.Secret != good.Secret) {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

func TestPeerAddr(t *testing.T) {
	mb := MailboxFor(detrand.Ed25519("x").Public().(ed25519.PublicKey))
	a := PeerAddr{Relay: testRelayA, Mailbox: mb}
	got, err := ParsePeerAddr(a.String())
	if err != nil || got != a {
		t.Fatalf("round trip %v %v", got, err)
	}
	if m, err := ParseMailbox(mb.String()); err != nil || m != mb {
		t.Fatal("mailbox round trip")
	}
	for _, bad := range []string{"", "@" + testRelayA, mb.String(), mb.String() + "@", mb.String()[:51] + "@" + testRelayA, "!!@" + testRelayA} {
		if _, err := ParsePeerAddr(bad); !errors.Is(err, ErrBadAddr) {
			t.Errorf("ParsePeerAddr(%q) = %v", bad, err)
		}
	}
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"a:1", true}, {"[::1]:4433", true}, {"relay.example:4433", true},
		{"", false}, {":1", false}, {"a:", false}, {"a", false}, {"a b:1", false},
		{"a\x7f:1", false}, {"é:1", false}, {strings.Repeat("a", 95) + ":1", false},
		{"::1:4433", false}, {"[::1]x:1", false}, {"[]:1", false}, {"[a]:1", false}, {"[[::1]]:1", false},
		{"a]:1", false}, {"a:0", false}, {"a:65536", false}, {"a:99999999999999999999", false}, {"a:-1", false}, {"a:1x", false},
		{"a:65535", true}, {"[::ffff:127.0.0.1]:1", true},
	} {
		if err := CheckRelayAddr(tt.s); (err == nil) != tt.ok {
			t.Errorf("CheckRelayAddr(%q) = %v", tt.s, err)
		}
	}
	// Different keys, different mailboxes; the label is bound in.
	if MailboxFor(make([]byte, 32)) == MailboxFor(bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("mailbox collision")
	}
}

func TestPushRequestCheckCandidates(t *testing.T) {
	for _, tc := range []struct {
		c  []uint16
		ok bool
	}{
		{[]uint16{47, 12, 83}, true},
		{[]uint16{10, 99, 50}, true},
		{[]uint16{47, 12}, false},
		{[]uint16{47, 12, 83, 20}, false},
		{[]uint16{47, 47, 83}, false},
		{[]uint16{9, 12, 83}, false},
		{[]uint16{47, 100, 83}, false},
		{nil, false},
	} {
		r := PushRequest{Candidates: tc.c}
		err := r.CheckCandidates()
		if (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.c, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%v: %v is not ErrMalformed", tc.c, err)
		}
	}
}
