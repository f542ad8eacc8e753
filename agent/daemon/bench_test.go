//go:build !race

// Latency figures are meaningless under the race detector, and 300 logins
// take too long under it; this file is built only without it (make bench,
// go test without -race).

package daemon_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/relay/server"
)

// TestBackToBackLoginsStress: 300 QR logins in a row over the real relay
// with its default limits; none may be lost. Back to back, the agent sends
// several times the relay's per-peer send rate (100/s): for each login a
// handshake reply, the login request and result, and audit shipping. The
// relay refuses the excess as rate-limited and the relay client must slow
// down instead of losing a technician's scan.
func TestBackToBackLoginsStress(t *testing.T) {
	w := newWorld(t, server.Limits{})
	p, mux := w.phone(t, "nik")
	w.login(t, p, mux) // warm up relay connections
	start := time.Now()
	d := w.qrLogins(t, p, mux, 300)
	took := time.Since(start)
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	t.Logf("%d logins in %v, scan to credential p50 %v p99 %v max %v; the relay refused %d sends as rate-limited",
		len(d), took, d[len(d)/2], d[len(d)*99/100], d[len(d)-1], w.rateLimited(t))
}

// BenchmarkQRLogin measures one QR login end to end on loopback, from the
// phone's scan to the credential at the login surface: real QUIC relay,
// SQLite store, fake account backend (no OS commands). It reports the
// median and 99th percentile (goal: p99 <= 50 ms).
//
// The relay's per-peer send rate is raised, as in jitkey-relayload: back
// to back, the agent sends far more than a real one does, and the default
// 100/s would measure the relay's throttle, not a login.
// TestBackToBackLoginsStress covers the default limits.
func BenchmarkQRLogin(b *testing.B) {
	w := newWorld(b, server.Limits{SendRate: 1e6, SendBurst: 1e6})
	p, mux := w.phone(b, "nik")
	w.login(b, p, mux) // warm up relay connections
	b.ResetTimer()
	d := w.qrLogins(b, p, mux, b.N)
	b.StopTimer()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}
