package channel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

type peer struct {
	mux    *Mux
	net    *channeltest.Peer
	static noise.DHKey
}

func newPeer(t *testing.T, n *channeltest.Network, relay string, cfg Config) *peer {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	kp, err := protocol.CipherSuite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	np := n.Join(protocol.PeerAddr{Relay: relay, Mailbox: protocol.MailboxFor(pub)})
	cfg.Relay, cfg.Static = np, kp
	cfg.HandshakeTimeout = 2 * time.Second
	p := &peer{mux: New(cfg), net: np, static: kp}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.mux.Pump(ctx, np.Recv) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func nk(k noise.DHKey) (n protocol.NoiseKey) { copy(n[:], k.Public); return }

func echoHandler(ctx context.Context, c *Conn) {
	var req protocol.ErrorMsg
	if err := c.Recv(ctx, protocol.MsgError, &req); err == nil {
		c.SendError(ctx, req.Code+1, req.Text+" back")
	}
}

func TestKKRoundTrip(t *testing.T) {
	n := channeltest.NewNetwork()
	var clientKey protocol.NoiseKey
	server := newPeer(t, n, "relay-a:1", Config{
		Accept: func(ctx context.Context, h Hello) ([]byte, protocol.NoiseKey, error) {
			if h.Flow != protocol.FlowAudit || h.InitiatorRelay != "relay-b:2" {
				return nil, protocol.NoiseKey{}, errors.New("unexpected hello")
			}
			return nil, clientKey, nil
		},
		Handle: echoHandler,
	})
	client := newPeer(t, n, "relay-b:2", Config{})
	clientKey = nk(client.static)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.mux.Dial(ctx, DialConfig{To: server.net.Addr(), Flow: protocol.FlowAudit, PeerStatic: nk(server.static)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Session.PeerIs(nk(server.static)) {
		t.Fatal("peer static mismatch")
	}
	if err := c.SendError(ctx, 1, "ping"); err != nil {
		t.Fatal(err)
	}
	// Expecting another type turns the peer's MsgError into a *PeerError.
	var got protocol.LoginResult
	err = c.Recv(ctx, protocol.MsgLoginResult, &got)
	var pe *protocol.PeerError
	if !errors.As(err, &pe) || pe.Code != 2 || pe.Text != "ping back" {
		t.Fatalf("echo: %v", err)
	}
}

func TestFirstContactWrongPSKIsDropped(t *testing.T) {
	n := channeltest.NewNetwork()
	good := make([]byte, 32)
	server := newPeer(t, n, "relay-a:1", Config{
		Accept: func(ctx context.Context, h Hello) ([]byte, protocol.NoiseKey, error) {
			return good, protocol.NoiseKey{}, nil
		},
		Handle: echoHandler,
	})
	client := newPeer(t, n, "relay-a:1", Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	bad := make([]byte, 32)
	bad[0] = 1
	_, err := client.mux.Dial(ctx, DialConfig{To: server.net.Addr(), Flow: protocol.FlowQRLogin, PeerStatic: nk(server.static), PSK: bad})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial with wrong PSK: got %v, want the responder to stay silent (timeout)", err)
	}
	c, err := client.mux.Dial(ctx, DialConfig{To: server.net.Addr(), Flow: protocol.FlowQRLogin, PeerStatic: nk(server.static), PSK: good})
	if err != nil {
		t.Fatalf("dial with right PSK: %v", err)
	}
	c.Close()
}

func TestReplayedHelloDoesNotOpenSecondSession(t *testing.T) {
	n := channeltest.NewNetwork()
	var hellos [][]byte
	n.Tap = func(from, to protocol.PeerAddr, p []byte) []byte {
		if f, err := protocol.ParseE2EFrame(p); err == nil && f.Kind == protocol.E2EHello {
			hellos = append(hellos, append([]byte(nil), p...))
		}
		return p
	}
	accepted := make(chan struct{}, 4)
	var clientKey protocol.NoiseKey
	server := newPeer(t, n, "relay-a:1", Config{
		Accept: func(ctx context.Context, h Hello) ([]byte, protocol.NoiseKey, error) {
			return nil, clientKey, nil
		},
		Handle: func(ctx context.Context, c *Conn) {
			accepted <- struct{}{}
			var m protocol.ErrorMsg
			c.Recv(ctx, protocol.MsgError, &m) // wait until the client's message or close
		},
	})
	client := newPeer(t, n, "relay-a:1", Config{})
	clientKey = nk(client.static)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.mux.Dial(ctx, DialConfig{To: server.net.Addr(), Flow: protocol.FlowAudit, PeerStatic: nk(server.static)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	server.net.Inject(client.net.Addr(), hellos[0]) // same session id while live
	select {
	case <-accepted:
		t.Fatal("replayed hello opened a second session")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestReplyNotSentIsLogged: when the relay refuses a responder's handshake
// reply, the initiator it accepted waits in vain; the responder says so at
// Warn, with the reason.
func TestReplyNotSentIsLogged(t *testing.T) {
	n := channeltest.NewNetwork()
	n.Tap = func(from, to protocol.PeerAddr, p []byte) []byte {
		if f, err := protocol.ParseE2EFrame(p); err == nil && f.Kind == protocol.E2EHello {
			n.Leave(from) // the reply will find the initiator gone
		}
		return p
	}
	logs := &syncBuffer{}
	psk := make([]byte, 32)
	server := newPeer(t, n, "relay-a:1", Config{
		Accept: func(ctx context.Context, h Hello) ([]byte, protocol.NoiseKey, error) {
			return psk, protocol.NoiseKey{}, nil
		},
		Handle: echoHandler,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	client := newPeer(t, n, "relay-a:1", Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := client.mux.Dial(ctx, DialConfig{To: server.net.Addr(), Flow: protocol.FlowQRLogin, PeerStatic: nk(server.static), PSK: psk})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial: got %v, want a timeout", err)
	}
	want := `level=WARN msg="handshake reply not sent" flow=qr-login`
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l := logs.String()
		if strings.Contains(l, want) && strings.Contains(l, channeltest.ErrNotConnected.Error()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs lack %q with the reason:\n%s", want, l)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
