//go:build (linux || darwin) && cgo

package ipcc_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jitkey/jitkey/internal/ipcc"
	"github.com/jitkey/jitkey/protocol"
)

// msg is what the Go codec writes: type u8 || canonical CBOR.
func msg(t testing.TB, typ protocol.IPCMsgType, v any) []byte {
	t.Helper()
	b, err := protocol.EncodeIPCMsg(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// agentSeeds are agent -> surface messages as the agent encodes them.
func agentSeeds(t testing.TB) [][]byte {
	sess := protocol.SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return [][]byte{
		msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true}),
		msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{OTP: true}),
		msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, SecondApproval: true}),
		msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{SecondApproval: true}),
		msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true, SecondApproval: true}),
		msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:abc", PNG: []byte{0x89, 'P', 'N', 'G'}, Terminal: "█▀▄\n▄▀█\n", Expires: 1_800_000_000}),
		msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: strings.Repeat("x", 300), Expires: -5}),
		msg(t, protocol.IPCMsgQR, &protocol.IPCQR{PNG: bytes.Repeat([]byte{7}, 1000), Terminal: "é", Expires: 1 << 40}),
		msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("p4ss-w0rd-32-characters-long!!!!"), Session: sess, Deadline: 1_800_003_600}),
		msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: `CORP\msp-nik`, Password: []byte("x"), Session: sess, Deadline: 1}),
		msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Session: sess}),
		msg(t, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: protocol.CodeDenied, Reason: "denied by the technician"}),
		msg(t, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 255}),
		msg(t, protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true}),
		msg(t, protocol.IPCMsgEnded, &protocol.IPCEnded{}),
		msg(t, protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 10}),
		msg(t, protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 42}),
		msg(t, protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 99}),
	}
}

// surfaceSeeds are surface -> agent messages as the Go codec encodes
// them (the C encoder must write the same bytes; the C decoder refuses
// them: they are not the surface's to read).
func surfaceSeeds(t testing.TB) [][]byte {
	return [][]byte{
		msg(t, protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "logon"}),
		msg(t, protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "logon", Target: "pc42"}),
		msg(t, protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "elevate", Action: 3, Target: strings.Repeat("t", 64)}),
		msg(t, protocol.IPCMsgCode, &protocol.IPCCode{Username: "nik", Code: "123456"}),
		msg(t, protocol.IPCMsgEnd, &protocol.IPCEnd{Session: protocol.SessionID{0xde, 0xad}}),
		msg(t, protocol.IPCMsgPush, &protocol.IPCPush{Email: "nik@msp.example"}),
	}
}

// agentMessage reports whether t is a message the C decoder reads.
func agentMessage(t protocol.IPCMsgType) bool {
	switch t {
	case protocol.IPCMsgStatus, protocol.IPCMsgQR, protocol.IPCMsgCredential, protocol.IPCMsgDenied,
		protocol.IPCMsgEnded, protocol.IPCMsgNumber:
		return true
	}
	return false
}

// same reports whether the C decoder's fields equal the Go decoder's.
func same(cm ipcc.Msg, v any) bool {
	switch v := v.(type) {
	case *protocol.IPCStatus:
		return cm.Online == v.Online && cm.OTP == v.OTP && cm.SecondApproval == v.SecondApproval
	case *protocol.IPCQR:
		return string(cm.Text) == v.Text && bytes.Equal(cm.PNG, v.PNG) && string(cm.Terminal) == v.Terminal && cm.Expires == v.Expires
	case *protocol.IPCCredential:
		return string(cm.Username) == v.Username && bytes.Equal(cm.Password, v.Password) && cm.Session == v.Session && cm.Deadline == v.Deadline
	case *protocol.IPCDenied:
		return cm.Code == v.Code && string(cm.Reason) == v.Reason
	case *protocol.IPCEnded:
		return cm.OK == v.OK
	case *protocol.IPCNumber:
		return cm.Number == v.Number
	}
	return false
}

// cEncode encodes a surface message that the Go codec decoded with the C
// encoder, with an output buffer of exactly want bytes; ok is false
// when the values are outside what the C encoder takes (C strings end at
// NUL; strings over JK_MAX_STRING bytes).
func cEncode(v any, want int) (b []byte, ok, applicable bool) {
	fits := func(ss ...string) bool {
		for _, s := range ss {
			if strings.IndexByte(s, 0) >= 0 || len(s) > ipcc.MaxString {
				return false
			}
		}
		return true
	}
	switch v := v.(type) {
	case *protocol.IPCBegin:
		if !fits(v.Surface, v.Target) {
			return nil, false, false
		}
		b, ok = ipcc.EncodeBegin(v.Surface, v.Action, v.Target, want)
	case *protocol.IPCCode:
		if !fits(v.Username, v.Code) {
			return nil, false, false
		}
		b, ok = ipcc.EncodeCode(v.Username, v.Code, want)
	case *protocol.IPCEnd:
		b, ok = ipcc.EncodeEnd(v.Session, want)
	case *protocol.IPCPush:
		if !fits(v.Email) || v.Email == "" {
			return nil, false, false
		}
		b, ok = ipcc.EncodePush(v.Email, want)
	default:
		return nil, false, false
	}
	return b, ok, true
}

// roundTrip checks the C codec against the Go codec on one frame body b:
//   - the C decoder accepts b exactly when it is an agent -> surface
//     message that protocol.DecodeIPCMsg accepts within one frame, and
//     then yields the same fields; what both accept, the Go encoder
//     writes back as b (decode → encode is the identity: canonical);
//   - a surface -> agent message that the Go codec accepts, the C
//     encoder writes back as b from the decoded values.
func roundTrip(t *testing.T, b []byte) {
	t.Helper()
	cm, cok := ipcc.Decode(b)
	gt, gv, gerr := protocol.DecodeIPCMsg(b)
	gok := gerr == nil && len(b) <= protocol.MaxIPCFrame
	if cok != (gok && agentMessage(gt)) {
		t.Fatalf("C accepts %v, Go accepts %v (type %d, %v): %x", cok, gok, gt, gerr, b)
	}
	if !gok {
		return
	}
	again, err := protocol.EncodeIPCMsg(gt, gv)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("Go decodes %x and re-encodes %x (%v)", b, again, err)
	}
	if cok {
		if cm.Type != b[0] || !same(cm, gv) {
			t.Fatalf("C decodes %+v, Go %+v: %x", cm, gv, b)
		}
		return
	}
	enc, ok, applicable := cEncode(gv, len(b))
	if applicable && (!ok || !bytes.Equal(enc, b)) {
		t.Fatalf("C encodes %+v as %x (%v), Go as %x", gv, enc, ok, b)
	}
}

func TestDecodeAgentMessages(t *testing.T) {
	for _, b := range agentSeeds(t) {
		if _, ok := ipcc.Decode(b); !ok {
			t.Fatalf("C refuses the agent's message %x", b)
		}
		roundTrip(t, b)
		// Every strict prefix and every one-byte extension is refused.
		for i := range len(b) {
			roundTrip(t, b[:i])
		}
		roundTrip(t, append(append([]byte(nil), b...), 0))
		// A surface's message type on an agent's body is refused.
		c := append([]byte{byte(protocol.IPCMsgBegin)}, b[1:]...)
		if _, ok := ipcc.Decode(c); ok {
			t.Fatalf("C accepts %x", c)
		}
	}
	for _, b := range surfaceSeeds(t) {
		if _, ok := ipcc.Decode(b); ok {
			t.Fatalf("C decodes the surface's message %x", b)
		}
		roundTrip(t, b)
	}
}

// TestDecodeRefusals names the non-canonical and hostile encodings the
// decoder must refuse, each next to the Go decoder's verdict.
func TestDecodeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"type only", []byte{7}},
		{"unknown type", []byte{11, 0xa0}},
		{"type 0", []byte{0, 0xa0}},
		{"surface begin", []byte{1, 0xa2, 0x01, 0x60, 0x02, 0x00}},
		{"surface push", []byte{9, 0xa1, 0x01, 0x61, 'a'}},
		{"status keys swapped", []byte{7, 0xa2, 0x02, 0xf4, 0x01, 0xf4}},
		{"status key missing", []byte{7, 0xa1, 0x01, 0xf4}},
		{"status duplicate key", []byte{7, 0xa2, 0x01, 0xf4, 0x01, 0xf4}},
		{"status second approval false", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x03, 0xf4}},
		{"status second approval null", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x03, 0xf6}},
		{"status second approval int", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x03, 0x01}},
		{"status second approval key missing", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4}},
		{"status second approval without otp", []byte{7, 0xa2, 0x01, 0xf4, 0x03, 0xf5}},
		{"status second approval first", []byte{7, 0xa3, 0x03, 0xf5, 0x01, 0xf4, 0x02, 0xf4}},
		{"status second approval long key", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x18, 0x03, 0xf5}},
		{"status extra key 4", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x04, 0xf5}},
		{"status four keys", []byte{7, 0xa4, 0x01, 0xf4, 0x02, 0xf4, 0x03, 0xf5, 0x04, 0xf5}},
		{"status second approval trailing byte", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x03, 0xf5, 0x00}},
		{"status indefinite map", []byte{7, 0xbf, 0x01, 0xf4, 0x02, 0xf4, 0xff}},
		{"status null bool", []byte{7, 0xa2, 0x01, 0xf6, 0x02, 0xf4}},
		{"status long key", []byte{7, 0xa2, 0x18, 0x01, 0xf4, 0x02, 0xf4}},
		{"status tagged", []byte{7, 0xc0, 0xa2, 0x01, 0xf4, 0x02, 0xf4}},
		{"ended int bool", []byte{6, 0xa1, 0x01, 0x01}},
		{"denied code 256", []byte{4, 0xa2, 0x01, 0x19, 0x01, 0x00, 0x02, 0x60}},
		{"denied non-shortest code", []byte{4, 0xa2, 0x01, 0x18, 0x05, 0x02, 0x60}},
		{"denied bad utf-8", []byte{4, 0xa2, 0x01, 0x05, 0x02, 0x61, 0xff}},
		{"denied surrogate", []byte{4, 0xa2, 0x01, 0x05, 0x02, 0x63, 0xed, 0xa0, 0x80}},
		{"denied overlong", []byte{4, 0xa2, 0x01, 0x05, 0x02, 0x62, 0xc0, 0x80}},
		{"denied reason length past end", []byte{4, 0xa2, 0x01, 0x05, 0x02, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"denied reason 2^32 length", []byte{4, 0xa2, 0x01, 0x05, 0x02, 0x7a, 0xff, 0xff, 0xff, 0xf0}},
		{"credential short session", []byte{3, 0xa4, 0x01, 0x60, 0x02, 0xf6, 0x03, 0x4f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x00}},
		{"credential null session", []byte{3, 0xa4, 0x01, 0x60, 0x02, 0xf6, 0x03, 0xf6, 0x04, 0x00}},
		{"qr expires 2^63", []byte{2, 0xa4, 0x01, 0x60, 0x02, 0xf6, 0x03, 0x60, 0x04, 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"qr expires -2^63-1", []byte{2, 0xa4, 0x01, 0x60, 0x02, 0xf6, 0x03, 0x60, 0x04, 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"number 9", []byte{10, 0xa1, 0x01, 0x09}},
		{"number 100", []byte{10, 0xa1, 0x01, 0x18, 0x64}},
		{"number non-shortest", []byte{10, 0xa1, 0x01, 0x18, 0x00}},
		{"number trailing byte", []byte{10, 0xa1, 0x01, 0x18, 0x2a, 0x00}},
		{"number extra key", []byte{10, 0xa2, 0x01, 0x18, 0x20, 0x02, 0x18, 0x20}},
		{"number wrong key", []byte{10, 0xa1, 0x02, 0x18, 0x20}},
		{"number text", []byte{10, 0xa1, 0x01, 0x62, '4', '2'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := ipcc.Decode(tc.b); ok {
				t.Fatalf("C accepts %x", tc.b)
			}
			roundTrip(t, tc.b)
		})
	}
	// Accepted edge values, as Go accepts them.
	for _, b := range [][]byte{
		{2, 0xa4, 0x01, 0x60, 0x02, 0xf6, 0x03, 0x60, 0x04, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // expires -2^63
		{2, 0xa4, 0x01, 0x60, 0x02, 0x40, 0x03, 0x60, 0x04, 0x00},                                                 // empty, non-nil PNG
		{7, 0xa3, 0x01, 0xf5, 0x02, 0xf4, 0x03, 0xf5},                                                             // status waiting for a second approver
		{10, 0xa1, 0x01, 0x0a},       // number 10
		{10, 0xa1, 0x01, 0x17},       // number 23, the last one-byte head
		{10, 0xa1, 0x01, 0x18, 0x18}, // number 24, the first two-byte head
		{10, 0xa1, 0x01, 0x18, 0x63}, // number 99
	} {
		cm, ok := ipcc.Decode(b)
		if !ok {
			t.Fatalf("C refuses %x", b)
		}
		if b[0] == 10 && cm.Number != b[len(b)-1] {
			t.Fatalf("%x: number %d", b, cm.Number)
		}
		if b[0] == 7 && (!cm.Online || cm.OTP || !cm.SecondApproval) {
			t.Fatalf("%x: status %+v", b, cm)
		}
		roundTrip(t, b)
	}
}

// TestEncode: the C encoder writes exactly the Go codec's encoding of the
// surface's messages, and refuses output that does not fit or values out
// of range.
func TestEncode(t *testing.T) {
	for _, s := range []string{"logon", "unlock", "elevate", "sudo", "", "é"} {
		for _, a := range []uint8{0, 4, 23, 24, 255} {
			for _, target := range []string{"", "pc42", "0123456789abcdef0123456789abcdef", "é" + strings.Repeat("t", 62)} {
				want := msg(t, protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: s, Action: a, Target: target})
				got, ok := ipcc.EncodeBegin(s, a, target, len(want))
				if !ok || !bytes.Equal(got, want) {
					t.Fatalf("Begin %q %d %q: %x, want %x", s, a, target, got, want)
				}
				if _, ok := ipcc.EncodeBegin(s, a, target, len(want)-1); ok {
					t.Fatalf("Begin %q %d %q fits in one byte less", s, a, target)
				}
			}
		}
	}
	for _, bad := range []string{strings.Repeat("t", 65), "\xff", "pc\xed\xa0\x80"} {
		if b, ok := ipcc.EncodeBegin("logon", 0, bad, 4096); ok {
			t.Errorf("Begin with target %q encoded: %x", bad, b)
		}
	}
	for _, c := range [][2]string{{"nik", "123456"}, {"", ""}, {strings.Repeat("a", 300), "12345678"}} {
		want := msg(t, protocol.IPCMsgCode, &protocol.IPCCode{Username: c[0], Code: c[1]})
		got, ok := ipcc.EncodeCode(c[0], c[1], len(want))
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("Code %q: %x, want %x", c[0], got, want)
		}
		if _, ok := ipcc.EncodeCode(c[0], c[1], len(want)-1); ok {
			t.Fatal("Code fits in one byte less")
		}
	}
	if _, ok := ipcc.EncodeCode(strings.Repeat("a", ipcc.MaxString+1), "1", 4096); ok {
		t.Fatal("Code with a 1025-byte username encoded")
	}
	if _, ok := ipcc.EncodeCode("\xff", "1", 4096); ok {
		t.Fatal("Code with invalid UTF-8 encoded")
	}
	sess := protocol.SessionID{0xde, 0xad}
	want := msg(t, protocol.IPCMsgEnd, &protocol.IPCEnd{Session: sess})
	if got, ok := ipcc.EncodeEnd(sess, len(want)); !ok || !bytes.Equal(got, want) {
		t.Fatalf("End: %x, want %x", got, want)
	}
	if _, ok := ipcc.EncodeEnd(sess, len(want)-1); ok {
		t.Fatal("End fits in one byte less")
	}
	for _, email := range []string{"nik@msp.example", "a", strings.Repeat("a", 240) + "@example.c"} {
		want := msg(t, protocol.IPCMsgPush, &protocol.IPCPush{Email: email})
		got, ok := ipcc.EncodePush(email, len(want))
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("Push %q: %x, want %x", email, got, want)
		}
		if _, ok := ipcc.EncodePush(email, len(want)-1); ok {
			t.Fatalf("Push %q fits in one byte less", email)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 255), "\xff@x"} {
		if _, ok := ipcc.EncodePush(bad, 4096); ok {
			t.Errorf("Push %q encoded", bad)
		}
	}
}

// TestUTF8 compares the C validator with Go's unicode/utf8 on edge cases
// and on every one- and two-byte string, and on a fixed-seed sample of
// longer ones.
func TestUTF8(t *testing.T) {
	check := func(b []byte) {
		if got, want := ipcc.UTF8Valid(b), utf8.Valid(b); got != want {
			t.Fatalf("%x: C %v, Go %v", b, got, want)
		}
	}
	for _, s := range []string{"", "a", "é", "\xed\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80",
		"\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "█▀", "\xf0\x9f\x98", "\xf0\x9f\x98\x80", "\xf8\x88\x80\x80\x80"} {
		check([]byte(s))
	}
	for i := range 1 << 16 {
		check([]byte{byte(i >> 8), byte(i)})
	}
	r := rand.New(rand.NewPCG(1, 2))
	lead := []byte{0x00, 0x7f, 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff}
	for range 200_000 {
		b := make([]byte, 3+r.IntN(3))
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = lead[r.IntN(len(lead))]
			} else {
				b[i] = byte(0x80 + r.IntN(0x40))
			}
		}
		check(b)
	}
}

// FuzzDecode is the codec's one fuzz target: on any input the C decoder
// agrees with protocol.DecodeIPCMsg, and decode → encode round-trips
// (roundTrip): an agent message both accept re-encodes to the same
// bytes; a surface message the Go codec accepts, the C encoder writes
// back identically. The body sits in C memory of exactly its length, so
// a read past the end is a read past the allocation (the sanitized C
// loop, TestDecoderSanitized, catches such reads).
func FuzzDecode(f *testing.F) {
	for _, b := range agentSeeds(f) {
		f.Add(b)
	}
	for _, b := range surfaceSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, b)
	})
}
