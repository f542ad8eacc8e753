package wallet

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

// TestOfflineKeys: a device's named-mode key is stored per (tenant,
// device) and replaced by a newer one; tech keys are found by tenant with
// their generation; both survive a save and a load.
func TestOfflineKeys(t *testing.T) {
	w := newWallet(t)
	o := &Org{ID: "acme-msp", Name: "Acme MSP", MSPKey: []byte{1},
		OfflineSecrets: []TenantSecret{{Tenant: "globex", Secret: bytes.Repeat([]byte{7}, 32), Generation: 3}}}
	dev, other := protocol.DeviceID{1}, protocol.DeviceID{2}
	o.SetDeviceKey("acme", dev, bytes.Repeat([]byte{1}, 20))
	o.SetDeviceKey("acme", other, bytes.Repeat([]byte{2}, 20))
	o.SetDeviceKey("acme", dev, bytes.Repeat([]byte{3}, 20)) // replaced after the agent's key changed
	if err := w.SaveOrg(o); err != nil {
		t.Fatal(err)
	}
	got, err := w.Org("acme-msp")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.DeviceSecrets) != 2 {
		t.Fatalf("%d device keys, want 2", len(got.DeviceSecrets))
	}
	for _, c := range []struct {
		tenant string
		id     protocol.DeviceID
		want   byte // 0: none
	}{{"acme", dev, 3}, {"acme", other, 2}, {"globex", dev, 0}, {"acme", protocol.DeviceID{9}, 0}} {
		k, ok := got.DeviceKey(c.tenant, c.id)
		if ok != (c.want != 0) || ok && !bytes.Equal(k.Secret, bytes.Repeat([]byte{c.want}, 20)) {
			t.Errorf("device key %s/%x: %v %x, want %d", c.tenant, c.id[:1], ok, k.Secret, c.want)
		}
	}
	if k, ok := got.TechKey("globex"); !ok || k.Generation != 3 || !bytes.Equal(k.Secret, bytes.Repeat([]byte{7}, 32)) {
		t.Fatalf("tech key: %v %+v", ok, k.Generation)
	}
	if _, ok := got.TechKey("acme"); ok {
		t.Fatal("a tech key for a tenant without one")
	}
	// A key stored before the tenant was kept is still found.
	got.DeviceSecrets = []DeviceSecret{{DeviceID: dev[:], Secret: []byte{4}}}
	if _, ok := got.DeviceKey("acme", dev); !ok {
		t.Fatal("an older key without a tenant is not found")
	}
}

// TestOfflineKeysRedacted: logging an offline key shows its tenant,
// device and generation, never the key.
func TestOfflineKeysRedacted(t *testing.T) {
	key := []byte("0123456789abcdefghij0123456789ab")
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("stored", "key", TenantSecret{Tenant: "globex", Secret: key, Generation: 2})
		log.Info("stored", "key", DeviceSecret{Tenant: "acme", DeviceID: []byte{0xab, 0xcd}, Secret: key[:20]})
	}
	out := buf.String()
	for _, leak := range []string{string(key[:20]), hex.EncodeToString(key[:20]), base64.StdEncoding.EncodeToString(key[:20])[:20]} {
		if strings.Contains(out, leak) {
			t.Fatalf("log holds the key: %s", out)
		}
	}
	for _, want := range []string{"REDACTED", "globex", "generation=2", "abcd", "acme"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q: %s", want, out)
		}
	}
}
