package console_test

import (
	"testing"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/store"
)

func TestTechInfoPhone(t *testing.T) {
	const now = 1_800_000_000
	old := &store.TechCert{Serial: 3, NotAfter: now + 86400}
	for _, tc := range []struct {
		name  string
		certs []*store.TechCert
		want  string
	}{
		{"none", nil, "not paired"},
		{"valid", []*store.TechCert{{Serial: 4, NotAfter: now + 86400}}, "serial 4 until 2027-01-16"},
		{"label", []*store.TechCert{{Serial: 4, Label: "Pixel 8", NotAfter: now + 86400}}, "Pixel 8, serial 4 until 2027-01-16"},
		{"expired", []*store.TechCert{{Serial: 4, NotAfter: now - 1}}, "serial 4 expired"},
		{"newest revoked", []*store.TechCert{old, {Serial: 5, Revoked: true, NotAfter: now + 86400}}, "serial 5 revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ti := console.TechInfo{Tech: &store.Tech{}, Certs: tc.certs}
			if got := ti.Phone(now); got != tc.want {
				t.Fatalf("Phone = %q, want %q", got, tc.want)
			}
		})
	}
}
