package protocol

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLogValueRedacts logs each secret-carrying value with a recognisable
// secret and checks that neither the secret's bytes nor its hex appear,
// and that Redacted does.
func TestLogValueRedacts(t *testing.T) {
	secret := bytes.Repeat([]byte{0xA5}, 32)
	var q QRPayload
	copy(q.Secret[:], secret)
	var tok EnrollToken
	copy(tok.Secret[:], secret)
	for name, v := range map[string]any{
		"QRPayload":     q,
		"*QRPayload":    &q,
		"EnrollToken":   tok,
		"TenantSecret":  TenantSecret{Tenant: "t", Secret: secret},
		"LoginResult":   LoginResult{OK: true, OfflineSecret: secret},
		"IPCCredential": IPCCredential{Username: "msp-nik", Password: secret},
	} {
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		} {
			var buf bytes.Buffer
			slog.New(h(&buf)).Info("x", "v", v)
			out := buf.String()
			if !strings.Contains(out, Redacted) {
				t.Errorf("%s: no %s in %q", name, Redacted, out)
			}
			for _, leak := range []string{"a5a5a5a5", "A5A5A5A5", "165 165 165", "165,165,165", "paWl", "\xa5\xa5"} {
				if strings.Contains(out, leak) {
					t.Errorf("%s: secret %q in log %q", name, leak, out)
				}
			}
		}
	}
}
