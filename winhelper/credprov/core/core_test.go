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
