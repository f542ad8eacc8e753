package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
)

func (r *relay) metricsText(t *testing.T) string {
	rec := httptest.NewRecorder()
	r.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// tryDial attempts a QUIC handshake from local and closes what it gets.
func tryDial(r *relay, local string) error {
	if local == "" {
		local = "127.0.0.1:0"
	}
	ua, _ := net.ResolveUDPAddr("udp", local)
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	ra, _ := net.ResolveUDPAddr("udp", r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, ra, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}}, &quic.Config{HandshakeIdleTimeout: time.Second})
	if err != nil {
		return err
	}
	c.CloseWithError(0, "")
	return nil
}

func rawDialNoStream(t *testing.T, r *relay) *quic.Conn {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close() })
	ra, _ := net.ResolveUDPAddr("udp", r.addr)
	c, err := tr.Dial(context.Background(), ra, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}
