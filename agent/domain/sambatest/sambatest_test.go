//go:build linux

package sambatest

import (
	"context"
	"crypto/tls"
	"testing"
)

// TestStartServesLDAPS provisions a DC and completes a TLS handshake with
// its LDAPS port against the pinned CA, checking the SAN is usable.
func TestStartServesLDAPS(t *testing.T) {
	if !Available() {
		t.Fatal("samba is not installed: run make deps")
	}
	dc, err := Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	c, err := tls.Dial("tcp", Addr, &tls.Config{RootCAs: dc.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("LDAPS handshake: %v", err)
	}
	c.Close()
	if _, err := tls.Dial("tcp", Addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("handshake without the pinned CA succeeded")
	}
}
