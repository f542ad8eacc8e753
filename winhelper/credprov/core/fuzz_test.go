//go:build linux && cgo

package core_test

import (
	"strings"
	"testing"

	"github.com/jitkey/jitkey/qrcode"
	"github.com/jitkey/jitkey/winhelper/credprov/core"
)

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
