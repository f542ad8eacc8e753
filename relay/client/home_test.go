package client_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

// TestHomeRelaySpelling: peers name the same relay differently (a host
// name and its address, case, a trailing dot, a port with a leading zero,
// IPv6 forms, an IPv4 and an IPv6 address of one dual-stack socket). A
// client sending to an address that names its own home relay under another
// spelling must use its home connection: a second connection authenticated
// with the same identity would make the relay replace the home connection
// (RL-22), and Run would stop for good with ErrReplaced.
func TestHomeRelaySpelling(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		home   string // "%s" is the relay's port
		other  string
		// dialable: other resolves here, so a second peer is homed there
		// (a trailing dot does not resolve with /etc/hosts).
		dialable bool
		// sameKey: the spellings are equal once canonical, so no client
		// dials the other; otherwise each client probes it once, finds
		// the home relay's pin and stops before Hello.
		sameKey bool
	}{
		{"host name and address", "127.0.0.1:0", "127.0.0.1:%s", "localhost:%s", true, false},
		{"address and host name", "127.0.0.1:0", "localhost:%s", "127.0.0.1:%s", true, false},
		{"host name case", "127.0.0.1:0", "localhost:%s", "LocalHost:%s", true, true},
		{"trailing dot", "127.0.0.1:0", "localhost:%s", "localhost.:%s", false, true},
		{"port with leading zero", "127.0.0.1:0", "127.0.0.1:%s", "127.0.0.1:0%s", true, true},
		{"IPv4-mapped IPv6", "127.0.0.1:0", "127.0.0.1:%s", "[::ffff:127.0.0.1]:%s", true, true},
		{"IPv6 forms", "[::1]:0", "[::1]:%s", "[0:0:0:0:0:0:0:1]:%s", true, true},
		{"IPv4 and IPv6 of one socket", "[::]:0", "127.0.0.1:%s", "[::1]:%s", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { checkNoClientGoroutines(t) }) // after the clients' Close
			r := startRelay(t, server.Limits{}, tt.listen)
			pins := [][32]byte{r.Pin()}
			home := fmt.Sprintf(tt.home, r.port)
			other := fmt.Sprintf(tt.other, r.port)
			bHome, bTo := home, other
			if tt.dialable {
				bHome, bTo = other, home
			}
			aDials, bDials := newDialCounter(t), newDialCounter(t)
			a, aRun := runClient(t, home, pins, aDials.use)
			b, bRun := runClient(t, bHome, pins, bDials.use)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			// Each sends to the other's mailbox at the spelling that is not
			// its own, then a replies to From.
			exchange := func(from, to *client.Client, relay, payload string) client.Message {
				t.Helper()
				addr := to.Addr()
				addr.Relay = relay
				if err := from.Send(ctx, addr, []byte(payload)); err != nil {
					t.Fatalf("send to %v: %v", addr, err)
				}
				m := relaytest.Recv(t, to)
				if string(m.Payload) != payload || m.From.Mailbox != from.Addr().Mailbox {
					t.Fatalf("got %q from %v, want %q from %v", m.Payload, m.From, payload, from.Addr())
				}
				return m
			}
			exchange(a, b, other, "a to b")
			m := exchange(b, a, bTo, "b to a")
			exchange(a, b, m.From.Relay, "reply")
			exchange(a, a, other, "a to itself")

			for name, exited := range map[string]func() error{"a": aRun, "b": bRun} {
				if err := exited(); err != nil {
					t.Errorf("%s: Run returned %v", name, err)
				}
			}
			if got := r.metric(t, "jitkey_relay_mailbox_replaced_total"); got != 0 {
				t.Errorf("relay replaced %d connections, want 0", got)
			}
			if got := r.metric(t, "jitkey_relay_peers"); got != 2 {
				t.Errorf("relay has %d peers, want 2", got)
			}
			want := 2 // home, and one probe finding the home relay's pin
			if tt.sameKey {
				want = 1
			}
			if got := aDials.count(); got != want {
				t.Errorf("a opened %d connections, want %d", got, want)
			}
			if got := bDials.count(); got != want {
				t.Errorf("b opened %d connections, want %d", got, want)
			}
		})
	}
}

// dialCounter is a client's socket that counts the QUIC connections the
// client opens: the distinct source connection IDs of its Initial packets
// (RFC 9000 17.2.2).
type dialCounter struct {
	net.PacketConn
	tr  *quic.Transport
	mu  sync.Mutex
	ids map[string]bool
}

func newDialCounter(t *testing.T) *dialCounter {
	t.Helper()
	pc, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dialCounter{PacketConn: pc, ids: make(map[string]bool)}
	d.tr = &quic.Transport{Conn: d}
	t.Cleanup(func() { d.tr.Close() }) // after the client's Close
	return d
}

// use makes a client dial from d.
func (d *dialCounter) use(cfg *client.Config) { cfg.Transport = d.tr }

func (d *dialCounter) WriteTo(b []byte, addr net.Addr) (int, error) {
	if len(b) > 6 && b[0]&0xf0 == 0xc0 && binary.BigEndian.Uint32(b[1:5]) == 1 { // v1 Initial
		if i := 6 + int(b[5]); i < len(b) && i+1+int(b[i]) <= len(b) {
			d.mu.Lock()
			d.ids[string(b[i+1:i+1+int(b[i])])] = true
			d.mu.Unlock()
		}
	}
	return d.PacketConn.WriteTo(b, addr)
}

func (d *dialCounter) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ids)
}

// TestHomeRelayDialledBeforeHomeKnown: a Send to another spelling of the
// home relay dials it before the client knows the home relay's pin (Run
// has not connected yet), so the pin check cannot stop its Hello. The
// Hello is held back until the home connection is up, so that the relay
// replaces the home connection with the client's own foreign one. Run must
// see that the replacement was its own doing and reconnect, not stop with
// ErrReplaced; later Sends to that spelling use the home connection.
func TestHomeRelayDialledBeforeHomeKnown(t *testing.T) {
	t.Cleanup(func() { checkNoClientGoroutines(t) })
	r := startRelay(t, server.Limits{}, "127.0.0.1:0")
	pins := [][32]byte{r.Pin()}
	home := "127.0.0.1:" + r.port
	px := startHoldProxy(t, home)
	b, _ := runClient(t, home, pins, nil)
	to := b.Addr()
	to.Relay = px.addr // the home relay, through the proxy

	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := client.New(client.Config{Identity: k, Home: home, Pins: pins, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	early := make(chan error, 1)
	go func() { early <- a.Send(ctx, to, []byte("early")) }()
	select {
	case <-px.held: // a's handshake through the proxy is done, its Hello held
	case <-time.After(5 * time.Second):
		t.Fatal("no 1-RTT packet through the proxy")
	}
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(context.Background()) }()
	defer func() {
		a.Close()
		<-runDone
	}()
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	px.release()
	select {
	case err := <-early:
		// Either way: it may have been Acked on the foreign connection or
		// lost when Run's reconnection replaced that connection.
		t.Logf("send during the replacement: %v", err)
	case <-ctx.Done():
		t.Fatal("send during the replacement did not return")
	}
	if err := a.WaitConnected(ctx); err != nil {
		t.Fatalf("after the replacement: %v", err)
	}
	replaced := r.metric(t, "jitkey_relay_mailbox_replaced_total")
	if replaced == 0 {
		t.Fatal("the relay never replaced a connection: the test did not race the Hellos")
	}
	for i := range 3 {
		payload := fmt.Sprintf("after %d", i)
		if err := a.Send(ctx, to, []byte(payload)); err != nil {
			t.Fatalf("send to %v: %v", to, err)
		}
		for {
			m := relaytest.Recv(t, b)
			if string(m.Payload) == payload {
				break
			}
		}
	}
	select {
	case err := <-runDone:
		t.Fatalf("Run returned %v", err)
	default:
	}
	if got := r.metric(t, "jitkey_relay_mailbox_replaced_total"); got != replaced {
		t.Errorf("relay replaced %d connections after the race, want none", got-replaced)
	}
	if got := r.metric(t, "jitkey_relay_peers"); got != 2 {
		t.Errorf("relay has %d peers, want 2", got)
	}
}

// holdProxy forwards UDP datagrams between one client and a relay. Until
// release it forwards the client's long-header (handshake) packets but
// keeps its short-header (1-RTT) packets, which carry the relay stream and
// so the Hello.
type holdProxy struct {
	addr string
	held chan struct{} // closed when a first 1-RTT packet is held

	mu      sync.Mutex
	up      *net.UDPConn
	holding bool
	queue   [][]byte
}

func startHoldProxy(t *testing.T, relay string) *holdProxy {
	t.Helper()
	down, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ra, err := net.ResolveUDPAddr("udp", relay)
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{addr: down.LocalAddr().String(), held: make(chan struct{}), up: up, holding: true}
	var (
		wg       sync.WaitGroup
		clientMu sync.Mutex
		peer     *net.UDPAddr
		heldOnce sync.Once
	)
	wg.Add(2)
	go func() { // client → relay
		defer wg.Done()
		buf := make([]byte, 1<<16)
		for {
			n, from, err := down.ReadFromUDP(buf)
			if err != nil {
				return
			}
			clientMu.Lock()
			peer = from
			clientMu.Unlock()
			long, short := splitShortHeader(buf[:n])
			p.mu.Lock()
			if p.holding && len(short) > 0 {
				p.queue = append(p.queue, append([]byte(nil), short...))
				heldOnce.Do(func() { close(p.held) })
			} else {
				long = buf[:n]
			}
			p.mu.Unlock()
			if len(long) > 0 {
				up.Write(long)
			}
		}
	}()
	go func() { // relay → client
		defer wg.Done()
		buf := make([]byte, 1<<16)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			clientMu.Lock()
			to := peer
			clientMu.Unlock()
			if to != nil {
				down.WriteToUDP(buf[:n], to)
			}
		}
	}()
	t.Cleanup(func() {
		down.Close()
		up.Close()
		wg.Wait()
	})
	return p
}

// release forwards what was held and stops holding.
func (p *holdProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = false
	for _, b := range p.queue {
		p.up.Write(b)
	}
	p.queue = nil
}

// splitShortHeader splits a QUIC v1 datagram into its leading long-header
// packets and a trailing short-header packet (RFC 9000 12.2, 17.2). A
// datagram it cannot parse is all long.
func splitShortHeader(d []byte) (long, short []byte) {
	for i := 0; i < len(d); {
		if d[i]&0x80 == 0 {
			return d[:i], d[i:]
		}
		j := i + 5 // first byte, version
		if j >= len(d) || binary.BigEndian.Uint32(d[i+1:j]) != 1 {
			return d, nil
		}
		for range 2 { // destination and source connection IDs
			if j >= len(d) {
				return d, nil
			}
			j += 1 + int(d[j])
		}
		fields := 1 // length
		if (d[i]>>4)&3 == 0 {
			fields = 2 // Initial: token length, token; length
		}
		for range fields {
			if j > len(d) {
				return d, nil
			}
			v, n, err := quicvarint.Parse(d[j:])
			if err != nil {
				return d, nil
			}
			j += n + int(v)
		}
		i = j
	}
	return d, nil
}
