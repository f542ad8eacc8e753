//go:build linux && cgo

package core_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
	"github.com/jitkey/jitkey/winhelper/credprov/core"
)

func msg(t *testing.T, typ protocol.IPCMsgType, v any) []byte {
	t.Helper()
	b, err := protocol.EncodeIPCMsg(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The Number message (IPC type 10, reserved for push in the common
// brief): {1: Number u8 10..99}.
func TestDecodeNumber(t *testing.T) {
	for _, c := range []struct {
		hex string
		n   uint8
		ok  bool
	}{
		{"0aa1010a", 10, true},
		{"0aa1011863", 99, true},
		{"0aa1011818", 24, true},
		{"0aa10109", 0, false},         // below 10
		{"0aa1011864", 0, false},       // above 99
		{"0aa1011800", 0, false},       // non-shortest head
		{"0aa101182a00", 0, false},     // trailing byte
		{"0aa2011820021820", 0, false}, // extra key
		{"0aa1021820", 0, false},       // wrong key
	} {
		b := unhex(t, c.hex)
		n, ok := core.DecodeNumber(b)
		if ok != c.ok || n != c.n {
			t.Errorf("%s: got %d %v, want %d %v", c.hex, n, ok, c.n, c.ok)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for i := 0; i+1 < len(s); i += 2 {
		var b byte
		for _, c := range s[i : i+2] {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= byte(c - '0')
			default:
				b |= byte(c-'a') + 10
			}
		}
		out = append(out, b)
	}
	return out
}

// The Push message (IPC type 9): {1: Email text <= 254}, canonical CBOR
// as the Go encoder writes it.
func TestEncodePush(t *testing.T) {
	type push struct {
		Email string `cbor:"1,keyasint"`
	}
	for _, email := range []string{"nik@msp.example", strings.Repeat("a", 240) + "@example.c"} {
		got, ok := core.EncodePush(email)
		if !ok {
			t.Fatalf("EncodePush(%q) refused", email)
		}
		want, err := protocol.Marshal(push{email})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != 9 || !bytes.Equal(got[1:], want) {
			t.Fatalf("EncodePush(%q) = %x, want 09%x", email, got, want)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 255), "\xff@x"} {
		if _, ok := core.EncodePush(bad); ok {
			t.Errorf("EncodePush(%q) accepted", bad)
		}
	}
}

// TestDecodeAgentMessages: what the agent's encoder writes, the C
// decoder takes; one changed byte in the type makes it refuse.
func TestDecodeAgentMessages(t *testing.T) {
	for name, body := range map[string][]byte{
		"status":     msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true}),
		"qr":         msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:x", PNG: []byte{1}, Terminal: "t", Expires: 5}),
		"credential": msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("pw"), Deadline: 9}),
		"denied":     msg(t, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 5, Reason: "no"}),
	} {
		typ, ok := core.Decodes(body)
		if !ok || typ != body[0] {
			t.Errorf("%s: decoded %d %v", name, typ, ok)
		}
		body[0] = 1 // Begin is not an agent message
		if _, ok := core.Decodes(body); ok {
			t.Errorf("%s as type 1 accepted", name)
		}
	}
}

// TestKerbPackLayout checks the serialization against the documented
// x64 layout of KERB_INTERACTIVE_UNLOCK_LOGON (see pack.h): header
// fields at their offsets, UNICODE_STRING lengths in bytes, Buffer as
// offsets from the start pointing at the UTF-16LE strings, which follow
// the 64-byte struct in order domain, user, password.
func TestKerbPackLayout(t *testing.T) {
	for _, c := range []struct {
		typ                    uint32
		domain, user, password string
	}{
		{core.KerbInteractiveLogon, "WS01", "msp-nik", "Abc-123456789012345678901"},
		{core.KerbWorkstationUnlockLogon, "WS01", "msp-nik", "pw"},
		{core.KerbInteractiveLogon, "", "msp-x", "p"},
	} {
		b, ok := core.KerbPack(c.typ, c.domain, c.user, c.password, 4096)
		if !ok {
			t.Fatalf("pack %+v refused", c)
		}
		want := 64 + 2*(len(c.domain)+len(c.user)+len(c.password))
		if len(b) != want || core.KerbSize(len(c.domain), len(c.user), len(c.password)) != want {
			t.Fatalf("size %d, want %d", len(b), want)
		}
		le := binary.LittleEndian
		if got := le.Uint32(b[0:]); got != c.typ {
			t.Fatalf("MessageType %d, want %d", got, c.typ)
		}
		if le.Uint32(b[4:]) != 0 || le.Uint64(b[56:]) != 0 {
			t.Fatal("padding or LogonId not zero")
		}
		off := uint64(64)
		for i, s := range []string{c.domain, c.user, c.password} {
			hdr := 8 + 16*i
			n := uint16(2 * len(s))
			if le.Uint16(b[hdr:]) != n || le.Uint16(b[hdr+2:]) != n || le.Uint32(b[hdr+4:]) != 0 {
				t.Fatalf("string %d header %x", i, b[hdr:hdr+8])
			}
			buf := le.Uint64(b[hdr+8:])
			if len(s) == 0 {
				if buf != 0 {
					t.Fatalf("empty string %d has Buffer %d", i, buf)
				}
				continue
			}
			if buf != off {
				t.Fatalf("string %d Buffer %d, want %d", i, buf, off)
			}
			u := make([]uint16, len(s))
			for k := range u {
				u[k] = le.Uint16(b[int(buf)+2*k:])
			}
			if got := string(utf16.Decode(u)); got != s {
				t.Fatalf("string %d = %q, want %q", i, got, s)
			}
			off += uint64(n)
		}
	}
	// Too small a buffer: refused, and nothing of the password left in it.
	b, ok := core.KerbPack(core.KerbInteractiveLogon, "D", "u", "secret", 70)
	if ok || len(b) != 0 {
		t.Fatal("pack into a small buffer accepted")
	}
}

func TestUTF8ToUTF16(t *testing.T) {
	got, ok := core.UTF8ToUTF16([]byte("msp-nik é€"), 64)
	if !ok || string(utf16.Decode(got)) != "msp-nik é€" {
		t.Fatalf("got %v %v", got, ok)
	}
	for _, bad := range []string{"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xc0\x80", "\xf0\x9f\x98\x80"} {
		if _, ok := core.UTF8ToUTF16([]byte(bad), 64); ok {
			t.Errorf("%x accepted", bad)
		}
	}
	if _, ok := core.UTF8ToUTF16([]byte("abc"), 2); ok {
		t.Error("overflow accepted")
	}
}

// TestQRFromTerminal: the modules read from the agent's Terminal text,
// drawn as the tile bitmap and decoded by a QR reader, give the payload
// back.
func TestQRFromTerminal(t *testing.T) {
	for _, text := range []string{"JK:short", "JK:" + strings.Repeat("ABCDEFGHIJ", 20)} {
		term, err := qrcode.Terminal(text)
		if err != nil {
			t.Fatal(err)
		}
		dark, side := core.QRParse([]byte(term))
		if side == 0 {
			t.Fatalf("Terminal text of %q refused", text)
		}
		if lines := strings.Count(term, "\n"); lines != (side+1)/2 {
			t.Fatalf("side %d for %d lines", side, lines)
		}
		px, ok := core.QRRender(dark, side, 4)
		if !ok {
			t.Fatal("render refused")
		}
		w := side * 4
		img := image.NewGray(image.Rect(0, 0, w, w))
		for i, p := range px {
			if p != 0xFF000000 && p != 0xFFFFFFFF {
				t.Fatalf("pixel %#x", p)
			}
			img.Pix[i] = byte(p) // 0x00 black, 0xFF white
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		got, err := qrcode.Decode(buf.Bytes())
		if err != nil || got != text {
			t.Fatalf("decoded %q, %v; want %q", got, err, text)
		}
	}
}

func TestQRParseRejects(t *testing.T) {
	term, _ := qrcode.Terminal("JK:x")
	lines := strings.SplitAfter(term, "\n")
	for name, s := range map[string]string{
		"empty":        "",
		"no newline":   strings.TrimSuffix(term, "\n"),
		"short line":   strings.Replace(term, "█\n", "\n", 1),
		"missing line": strings.Join(lines[:len(lines)-2], ""),
		"extra line":   term + lines[0],
		"other glyph":  strings.Replace(term, "█", "#", 1),
		"dark below":   strings.Join(lines[:len(lines)-2], "") + strings.Replace(lines[len(lines)-2], "█", "▀", 1),
		"tiny":         "█\n",
	} {
		if _, side := core.QRParse([]byte(s)); side != 0 {
			t.Errorf("%s: accepted (side %d)", name, side)
		}
	}
}
