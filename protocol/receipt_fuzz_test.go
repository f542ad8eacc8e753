package protocol

import (
	"bytes"
	"testing"
)

// FuzzEndReceipt decodes arbitrary bytes as an end receipt (SPEC.md 6.6),
// bare and in its Signed envelope: no panic, whatever decodes re-encodes
// to the same bytes, and VerifyEndReceipt accepts nothing unsigned.
func FuzzEndReceipt(f *testing.F) {
	for _, b := range vectorInputs(f, false, "signed", "cbor") {
		f.Add(b)
		if s, err := DecodeSigned(b); err == nil {
			f.Add(s.Body)
		}
	}
	var key IdentityKey
	f.Fuzz(func(t *testing.T, data []byte) {
		var r EndReceipt
		if err := Unmarshal(data, &r); err == nil {
			again, err := Marshal(&r)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("decoded but re-encodes differently: %v\n%x\n%x", err, data, again)
			}
		}
		if _, err := VerifyEndReceipt(data, key, DeviceID{}, ""); err == nil {
			t.Fatal("a receipt verified with the zero key")
		}
	})
}
