package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
)

// FuzzDecode: a stored audit row either decodes to a signed envelope that
// re-encodes to exactly the stored bytes, or is refused with an error;
// never a panic and never a different record.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "protocol", "testdata", "ok-signed-*.json"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b) // not CBOR: a refusal seed
		}
	}
	f.Add([]byte{0x84, 0x01, 0x40, 0x40, 0x40})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, record []byte) {
		out, err := audit.Decode([]store.AuditRow{{Seq: 1, Record: record}})
		if err != nil {
			return
		}
		if len(out) != 1 {
			t.Fatalf("%d envelopes from one row", len(out))
		}
		again, err := out[0].Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, record) {
			t.Fatalf("row %x decodes to a record that encodes as %x", record, again)
		}
	})
}
