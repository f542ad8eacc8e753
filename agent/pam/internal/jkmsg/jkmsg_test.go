//go:build linux && cgo

package jkmsg_test

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/pam/internal/jkmsg"
	"github.com/jitkey/jitkey/protocol"
)

// body is what the agent writes: type u8 || canonical CBOR.
func body(t testing.TB, typ ipcserver.MsgType, v any) []byte {
	t.Helper()
	b, err := protocol.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(typ)}, b...)
}

// seeds are agent messages as the agent encodes them.
func seeds(t testing.TB) [][]byte {
	sess := protocol.SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return [][]byte{
		body(t, ipcserver.MsgStatus, &ipcserver.Status{Online: true}),
		body(t, ipcserver.MsgStatus, &ipcserver.Status{OTP: true}),
		body(t, ipcserver.MsgQR, &ipcserver.QR{Text: "JK:abc", PNG: []byte{0x89, 'P', 'N', 'G'}, Terminal: "█▀▄\n▄▀█\n", Expires: 1_800_000_000}),
		body(t, ipcserver.MsgQR, &ipcserver.QR{Text: string(bytes.Repeat([]byte{'x'}, 300)), Expires: -5}),
		body(t, ipcserver.MsgQR, &ipcserver.QR{PNG: bytes.Repeat([]byte{7}, 1000), Terminal: "é", Expires: 1 << 40}),
		body(t, ipcserver.MsgCredential, &ipcserver.Credential{Username: "msp-nik", Password: []byte("p4ss-w0rd-32-characters-long!!!!"), Session: sess, Deadline: 1_800_003_600}),
		body(t, ipcserver.MsgCredential, &ipcserver.Credential{Session: sess}),
		body(t, ipcserver.MsgDenied, &ipcserver.Denied{Code: protocol.CodeDenied, Reason: "denied by the technician"}),
		body(t, ipcserver.MsgDenied, &ipcserver.Denied{Code: 255}),
		body(t, ipcserver.MsgEnded, &ipcserver.Ended{OK: true}),
		body(t, ipcserver.MsgEnded, &ipcserver.Ended{}),
	}
}

// goDecode is the agent's own client decoding (ipcserver.Client.Next):
// protocol.Unmarshal of the type's struct. It reports whether Go accepts.
func goDecode(b []byte) (any, bool) {
	if len(b) < 2 || len(b) > protocol.MaxIPCFrame {
		return nil, false
	}
	var v any
	switch ipcserver.MsgType(b[0]) {
	case ipcserver.MsgStatus:
		v = new(ipcserver.Status)
	case ipcserver.MsgQR:
		v = new(ipcserver.QR)
	case ipcserver.MsgCredential:
		v = new(ipcserver.Credential)
	case ipcserver.MsgDenied:
		v = new(ipcserver.Denied)
	case ipcserver.MsgEnded:
		v = new(ipcserver.Ended)
	default:
		return nil, false
	}
	return v, protocol.Unmarshal(b[1:], v) == nil
}

// check compares the C decoder with the Go one on b: both accept or both
// refuse, and what they accept decodes to the same fields.
func check(t *testing.T, b []byte) {
	gv, gok := goDecode(b)
	cm, cok := jkmsg.Decode(b)
	if gok != cok {
		t.Fatalf("Go accepts %v, C accepts %v: %x", gok, cok, b)
	}
	if !gok {
		return
	}
	same := true
	switch v := gv.(type) {
	case *ipcserver.Status:
		same = cm.Online == v.Online && cm.OTP == v.OTP
	case *ipcserver.QR:
		same = string(cm.Text) == v.Text && bytes.Equal(cm.PNG, v.PNG) && string(cm.Terminal) == v.Terminal && cm.Expires == v.Expires
	case *ipcserver.Credential:
		same = string(cm.Username) == v.Username && bytes.Equal(cm.Password, v.Password) && cm.Session == v.Session && cm.Deadline == v.Deadline
	case *ipcserver.Denied:
		same = cm.Code == v.Code && string(cm.Reason) == v.Reason
	case *ipcserver.Ended:
		same = cm.OK == v.OK
	}
	if !same || cm.Type != b[0] {
		t.Fatalf("C decodes %+v, Go %+v: %x", cm, gv, b)
	}
}

func TestDecodeAgentMessages(t *testing.T) {
	for _, b := range seeds(t) {
		if _, ok := jkmsg.Decode(b); !ok {
			t.Fatalf("C refuses the agent's message %x", b)
		}
		check(t, b)
		// Every strict prefix and every one-byte extension is refused.
		for i := range len(b) {
			check(t, b[:i])
		}
		check(t, append(append([]byte(nil), b...), 0))
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
		{"unknown type", []byte{9, 0xa0}},
		{"surface message", []byte{1, 0xa2, 0x01, 0x60, 0x02, 0x00}},
		{"status keys swapped", []byte{7, 0xa2, 0x02, 0xf4, 0x01, 0xf4}},
		{"status key missing", []byte{7, 0xa1, 0x01, 0xf4}},
		{"status duplicate key", []byte{7, 0xa2, 0x01, 0xf4, 0x01, 0xf4}},
		{"status extra key", []byte{7, 0xa3, 0x01, 0xf4, 0x02, 0xf4, 0x03, 0xf4}},
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := jkmsg.Decode(tc.b); ok {
				t.Fatalf("C accepts %x", tc.b)
			}
			check(t, tc.b)
		})
	}
	// Accepted edge values, as Go accepts them.
	for _, b := range [][]byte{
		{2, 0xa4, 0x01, 0x60, 0x02, 0xf6, 0x03, 0x60, 0x04, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // expires -2^63
		{2, 0xa4, 0x01, 0x60, 0x02, 0x40, 0x03, 0x60, 0x04, 0x00},                                                 // empty, non-nil PNG
	} {
		if _, ok := jkmsg.Decode(b); !ok {
			t.Fatalf("C refuses %x", b)
		}
		check(t, b)
	}
}

// TestEncode: the C encoder writes exactly the agent's encoding of the
// surface's messages, and refuses output that does not fit.
func TestEncode(t *testing.T) {
	for _, s := range []string{"logon", "unlock", "elevate", "sudo", "", "é"} {
		for _, a := range []uint8{0, 4, 23, 24, 255} {
			want := body(t, ipcserver.MsgBegin, &ipcserver.Begin{Surface: s, Action: a})
			got, ok := jkmsg.EncodeBegin(s, a, len(want))
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("Begin %q %d: %x, want %x", s, a, got, want)
			}
			if _, ok := jkmsg.EncodeBegin(s, a, len(want)-1); ok {
				t.Fatalf("Begin %q %d fits in one byte less", s, a)
			}
		}
	}
	for _, c := range [][2]string{{"nik", "123456"}, {"", ""}, {string(bytes.Repeat([]byte{'a'}, 300)), "12345678"}} {
		want := body(t, ipcserver.MsgCode, &ipcserver.Code{Username: c[0], Code: c[1]})
		got, ok := jkmsg.EncodeCode(c[0], c[1], len(want))
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("Code %q: %x, want %x", c[0], got, want)
		}
		if _, ok := jkmsg.EncodeCode(c[0], c[1], len(want)-1); ok {
			t.Fatal("Code fits in one byte less")
		}
	}
	if _, ok := jkmsg.EncodeCode(string(bytes.Repeat([]byte{'a'}, 1025)), "1", 4096); ok {
		t.Fatal("Code with a 1025-byte username encoded")
	}
	if _, ok := jkmsg.EncodeCode("\xff", "1", 4096); ok {
		t.Fatal("Code with invalid UTF-8 encoded")
	}
	sess := protocol.SessionID{0xde, 0xad}
	want := body(t, ipcserver.MsgEnd, &ipcserver.End{Session: sess})
	if got, ok := jkmsg.EncodeEnd(sess, len(want)); !ok || !bytes.Equal(got, want) {
		t.Fatalf("End: %x, want %x", got, want)
	}
	if _, ok := jkmsg.EncodeEnd(sess, len(want)-1); ok {
		t.Fatal("End fits in one byte less")
	}
}

// FuzzDecode: on any input the C decoder agrees with the agent's Go
// decoder (which accepts only canonical encodings, so what both accept
// re-encodes identically), and the C decoder never reads outside its
// input (run with -asan to have that checked).
func FuzzDecode(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
	})
}

// FuzzUTF8: the C validator agrees with Go's unicode/utf8.
func FuzzUTF8(f *testing.F) {
	for _, s := range []string{"", "a", "é", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\x80", "█▀", "\xf0\x9f\x98"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := jkmsg.UTF8Valid(b), utf8.Valid(b); got != want {
			t.Fatalf("%x: C %v, Go %v", b, got, want)
		}
	})
}
