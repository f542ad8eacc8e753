package winudp

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// openTestSocket is the winsock socket on IPv4 loopback. The tests run
// under Wine in TestWine (winhelper/credprov), which builds them with
// go test -c for windows.
func openTestSocket() (socket, error) { return openSocket(loopback) }

// TestListen: where net.ListenUDP fails (Wine 8), Fallback recognises
// its error; Listen opens the socket the relay client uses (dual-stack
// if the system allows it), logs that it does, and exchanges datagrams
// with an IPv4 peer, whose address it reports unmapped.
func TestListen(t *testing.T) {
	pc, err := net.ListenUDP("udp", nil)
	if err == nil {
		t.Logf("net.ListenUDP works here (%v): the relay client would not take winudp", pc.LocalAddr())
		pc.Close()
	} else {
		t.Logf("net.ListenUDP: %v", err)
		if !Fallback(err) {
			t.Fatalf("Fallback(%v) = false: the relay client would have no socket", err)
		}
	}
	var log bytes.Buffer
	c, err := Listen(slog.New(slog.NewTextHandler(&log, nil)), err)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(log.String(), "plain winsock calls") {
		t.Fatalf("Listen logged %q", log.String())
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	t.Logf("Listen: %v (dual-stack %v)", local, c.sock.(*winSocket).v6)
	peer, _ := newTestConn(t)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, local.Port()))
	if _, err := peer.WriteTo([]byte("ping"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom: %q, %v", buf[:n], err)
	}
	if from.String() != peer.LocalAddr().String() {
		t.Fatalf("from %v, want %v", from, peer.LocalAddr())
	}
	if _, err := c.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	if n, _, err := peer.ReadFrom(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("peer ReadFrom: %q, %v", buf[:n], err)
	}
}
