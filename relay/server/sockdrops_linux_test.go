package server

import (
	"net"
	"testing"
)

// TestSocketDrops fills a socket nobody reads and checks that the
// kernel's drops for it are seen.
func TestSocketDrops(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadBuffer(4096) // the kernel's minimum: a few datagrams
	drops := socketDrops(pc)
	if drops == nil {
		t.Fatal("no drop counter for a UDP socket")
	}
	if n, ok := drops(); !ok || n != 0 {
		t.Fatalf("fresh socket: drops %d, found %v; want 0, true", n, ok)
	}
	out, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	msg := make([]byte, 1200)
	for range 200 {
		out.Write(msg)
	}
	if n, ok := drops(); !ok || n == 0 {
		t.Fatalf("after 200 datagrams to a full socket: drops %d, found %v; want > 0", n, ok)
	}
}
