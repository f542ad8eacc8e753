package app

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// FuzzDecodeQR feeds arbitrary scanned text to the phone's decoding of a
// login code (decodeQR, and QRError behind it): nothing panics; a code it
// accepts is a login code that re-encodes to the very text scanned; every
// refusal matches one of the phone's sentinels and says a sentence, never
// the decoder's words; "update the phone" only for a code whose version
// byte is later than this phone's.
func FuzzDecodeQR(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "protocol", "testdata", "*qr*.json"))
	now := time.Unix(1767225600, 0)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		var v struct{ Input string }
		if json.Unmarshal(b, &v) == nil && strings.HasPrefix(v.Input, "JK:") {
			f.Add(v.Input)
		}
	}
	f.Add("JK:00")
	f.Add("hello")
	a := &App{cfg: Config{Now: func() time.Time { return now }}}
	f.Fuzz(func(t *testing.T, text string) {
		q, err := a.decodeQR(text, protocol.QRLogin)
		if err == nil {
			if q.Kind != protocol.QRLogin {
				t.Fatalf("accepted a code of kind %d as a login code", q.Kind)
			}
			again, err := q.Encode()
			if err != nil || again != text {
				t.Fatalf("accepted %q re-encodes as %q (%v)", text, again, err)
			}
			return
		}
		if !errors.Is(err, ErrQRExpired) && !errors.Is(err, ErrQRMalformed) && !errors.Is(err, ErrWrongKind) {
			t.Fatalf("refusal %v matches no sentinel", err)
		}
		msg := err.Error()
		if strings.Contains(msg, "protocol:") || strings.Contains(msg, "cbor") || strings.Contains(msg, "base45") {
			t.Fatalf("the screen shows decoder internals: %q", msg)
		}
		if strings.Contains(msg, "newer version") {
			if v, ok := protocol.QRVersionOf(text); !ok || v <= protocol.QRVersion {
				t.Fatalf("'update the phone' for a code of version %d (%v)", v, ok)
			}
		}
	})
}
