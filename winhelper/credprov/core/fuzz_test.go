//go:build linux && cgo

package core_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
	"github.com/jitkey/jitkey/winhelper/credprov/core"
)

// FuzzDecode: whatever the C decoder accepts is a canonical message:
// the Go encoder writes exactly the same bytes for it (for Number, the
// one canonical form of {1: n}).
func FuzzDecode(f *testing.F) {
	for _, m := range []struct {
		t protocol.IPCMsgType
		v any
	}{
		{protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true}},
		{protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:x", PNG: []byte{1, 2}, Terminal: "█\n", Expires: 1700000000}},
		{protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-a", Password: []byte("p"), Deadline: -1}},
		{protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 4, Reason: "r"}},
		{protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true}},
	} {
		b, err := protocol.EncodeIPCMsg(m.t, m.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{10, 0xa1, 0x01, 0x18, 42})
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, ok := core.Decodes(body)
		if !ok {
			return
		}
		if typ == 10 {
			n, _ := core.DecodeNumber(body)
			want := []byte{10, 0xa1, 0x01, 0x18, n} // CBOR: uint >= 24 takes a one-byte argument
			if n < 24 {
				want = []byte{10, 0xa1, 0x01, n}
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("Number %x accepted, canonical %x", body, want)
			}
			return
		}
		gt, v, err := protocol.DecodeIPCMsg(body)
		if err != nil || byte(gt) != typ {
			t.Fatalf("C accepted %x (type %d), Go: %d %v", body, typ, gt, err)
		}
		again, err := protocol.EncodeIPCMsg(gt, v)
		if err != nil || !bytes.Equal(again, body) {
			t.Fatalf("C accepted %x, re-encoded %x (%v)", body, again, err)
		}
	})
}

// terminal draws modules as the agent's qrcode.Terminal does.
func terminal(dark []byte, side int) string {
	var b strings.Builder
	at := func(x, y int) bool { return y < side && dark[y*side+x] == 1 }
	for y := 0; y < side; y += 2 {
		for x := 0; x < side; x++ {
			top, bot := at(x, y), at(x, y+1)
			switch {
			case top && bot:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bot:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// FuzzQRParse: the parser never reads or writes out of bounds (cgo
// buffers of exact size), and what it accepts draws back to the same
// text.
func FuzzQRParse(f *testing.F) {
	for _, s := range []string{"JK:a", "JK:" + strings.Repeat("x", 100)} {
		term, err := qrcode.Terminal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(term))
	}
	f.Add([]byte("█\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		dark, side := core.QRParse(text)
		if side == 0 {
			return
		}
		if got := terminal(dark, side); got != string(text) {
			t.Fatalf("accepted %q, draws back as %q", text, got)
		}
	})
}
