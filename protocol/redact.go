package protocol

import (
	"log/slog"
	"time"
)

// Log redaction. Values that carry a secret (a QR session secret, an
// enrollment token secret, an offline TOTP key) implement slog.LogValuer so
// that logging one shows its public fields and Redacted in place of the
// secret.

// Redacted is what a logged value shows in place of a secret.
const Redacted = "REDACTED"

// LogValue implements slog.LogValuer; Secret logs as Redacted.
func (q QRPayload) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("kind", int(q.Kind)),
		slog.Int("action", int(q.Action)),
		slog.Time("time", q.Time),
		slog.String("addr", q.Addr().String()),
		slog.String("secret", Redacted),
	)
}

// LogValue implements slog.LogValuer; Secret logs as Redacted.
func (t EnrollToken) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", t.Tenant),
		slog.String("console", t.Console),
		slog.Time("expires", time.Unix(t.Expires, 0)),
		slog.String("secret", Redacted),
	)
}

// LogValue implements slog.LogValuer; Secret logs as Redacted.
func (s TenantSecret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", s.Tenant),
		slog.String("secret", Redacted),
	)
}

// LogValue implements slog.LogValuer; OfflineSecret, when present, logs as
// Redacted.
func (r LoginResult) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Bool("ok", r.OK),
		slog.String("account", r.Account),
		slog.Int("code", int(r.Code)),
		slog.String("text", r.Text),
	}
	if len(r.OfflineSecret) > 0 {
		attrs = append(attrs, slog.String("offline_secret", Redacted))
	}
	return slog.GroupValue(attrs...)
}
