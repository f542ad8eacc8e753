package server_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/server"
)

// TestInlineWritesBounded: frames to a peer that keeps up are written
// inline, without the queue; a peer that grants a huge flow-control window
// and then stops acknowledging (its socket is not read) must still not make
// the relay accept more than its queue limit, the inline bound (64 KiB) and
// QUIC's congestion window for it. Without the inline bound, QUIC's
// non-blocking write would take all 64 MiB of the window into its buffer.
func TestInlineWritesBounded(t *testing.T) {
	const queueBytes = 32 << 10
	r := startRelay(t, server.Config{Limits: server.Limits{QueueFrames: 10000, QueueBytes: queueBytes, SendRate: 1e6, SendBurst: 1e6}}, "")
	a, _ := startClient(t, r, nil)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	deaf := &deafConn{PacketConn: pc, deaf: make(chan struct{})}
	victim := rawDialConfig(t, r, deaf, &quic.Config{
		MaxIdleTimeout:                 30 * time.Second,
		InitialStreamReceiveWindow:     64 << 20,
		MaxStreamReceiveWindow:         64 << 20,
		InitialConnectionReceiveWindow: 64 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
	})
	victim.auth(t)
	close(deaf.deaf)
	to := protocol.PeerAddr{Relay: r.addr, Mailbox: victim.mailbox()}
	payload := make([]byte, 1024)
	frame := protocol.RelayFrameHeaderLen + len(protocol.MailboxID{}) + len(payload)
	n := 0
	for ; n < 1000 && err == nil; n++ {
		err = sendWithin(a, to, payload, 300*time.Millisecond)
	}
	if !errors.Is(err, client.ErrQueueFull) {
		t.Fatalf("got %v after %d sends, want ErrQueueFull", err, n)
	}
	accepted := (n - 1) * frame
	if limit := queueBytes + 64<<10 + 64<<10; accepted > limit { // + a congestion window

		t.Fatalf("relay accepted %d bytes for a peer that does not read, want at most %d", accepted, limit)
	}
	if accepted <= queueBytes {
		t.Fatalf("relay accepted %d bytes, no more than its queue: nothing was written inline", accepted)
	}
}

// deafConn stops reading its socket once deaf is closed: the QUIC stack
// on it then neither receives nor acknowledges anything.
type deafConn struct {
	net.PacketConn
	deaf chan struct{}
}

func (c *deafConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	select {
	case <-c.deaf:
		<-c.deaf // never returns a packet again; Close still ends the read
		for err == nil {
			_, _, err = c.PacketConn.ReadFrom(b)
		}
		return 0, nil, err
	default:
	}
	return n, addr, err
}
