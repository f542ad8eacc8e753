package server_test

import (
	"context"
	"testing"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// BenchmarkForward sends 1 KiB frames from one client to another through
// the relay, one in flight (Send waits for its Ack), and reports the
// allocations of the whole process per frame: relay and both clients.
// The relay's own share is read from a memory profile
// (-memprofile, focus relay/server).
func BenchmarkForward(b *testing.B) {
	r := startRelay(b, server.Config{Limits: server.Limits{SendRate: 1e9, SendBurst: 1 << 30}}, "")
	from, _ := startClient(b, r, nil)
	to, _ := startClient(b, r, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := to.Recv(ctx); err != nil {
				return
			}
		}
	}()
	payload := make([]byte, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := from.Send(ctx, to.Addr(), payload); err != nil {
			b.Fatal(err)
		}
	}
	cancel()
	<-done
}

// BenchmarkPing sends a Ping over an authenticated connection and reads
// its Pong, one in flight, and reports the allocations of the whole
// process per round trip (relay and the raw peer's quic-go). An idle peer
// costs the relay one such round trip per keep-alive period; the relay's
// own share is read from a memory profile (focus relay/server): none.
func BenchmarkPing(b *testing.B) {
	r := startRelay(b, server.Config{}, "")
	p := rawDial(b, r, "")
	p.auth(b)
	ping := &protocol.RelayPing{Data: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	b.ReportAllocs()
	for b.Loop() {
		p.write(b, ping)
		if _, ok := p.read(b).(*protocol.RelayPong); !ok {
			b.Fatal("no Pong")
		}
	}
}
