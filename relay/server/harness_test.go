package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

// TestMain fails the package if relay or quic-go goroutines outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitNoLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedStacks returns the stacks of goroutines running relay, client or
// quic-go code, excluding this checker.
func leakedStacks() string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "leakedStacks") {
			continue
		}
		if strings.Contains(g, "jitkey/relay/") || strings.Contains(g, "quic-go") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func waitNoLeaks(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		s := leakedStacks()
		if s == "" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seededRand is a deterministic reader for reproducible keys.
type seededRand struct{ r *rand.ChaCha8 }

func newSeeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return &seededRand{rand.NewChaCha8(s)}
}

func (s *seededRand) Read(p []byte) (int, error) { return s.r.Read(p) }

// relay is a running test relay.
type relay struct {
	*server.Server
	addr string
	done chan error
	logs *relaytest.LogBuffer
}

// startRelay starts a relay on listen (default 127.0.0.1:0) and stops it
// at the end of the test.
func startRelay(t testing.TB, cfg server.Config, listen string) *relay {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var pc net.PacketConn
	var err error
	for range 50 { // a restarted relay may wait for its port
		if pc, err = net.ListenPacket("udp", listen); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return startRelayOn(t, cfg, pc)
}

// startRelayOn starts a relay serving on pc and stops it at the end of
// the test.
func startRelayOn(t testing.TB, cfg server.Config, pc net.PacketConn) *relay {
	t.Helper()
	logs := &relaytest.LogBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := server.New(cfg)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	r := &relay{Server: s, addr: pc.LocalAddr().String(), done: make(chan error, 1), logs: logs}
	go func() { r.done <- s.Serve(context.Background(), pc) }()
	<-s.Ready()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop shuts the relay down (idempotent) and checks that Serve returned.
func (r *relay) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.Shutdown(ctx)
	select {
	case <-r.done:
		r.done <- server.ErrServerClosed
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after Shutdown")
	}
}

func (r *relay) pin() [32]byte { return r.Pin() }

// metric scrapes one metric line's value from the relay's handler.
func (r *relay) metric(t *testing.T, name string) int64 {
	t.Helper()
	return relaytest.Metric(t, r.MetricsHandler(), name)
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startClient runs a client homed at r until the end of the test and
// waits until it is connected.
func startClient(t testing.TB, home *relay, mod func(*client.Config), pins ...[32]byte) (*client.Client, chan error) {
	t.Helper()
	cfg := client.Config{Identity: newKey(t), Home: home.addr, Pins: append([][32]byte{home.pin()}, pins...), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		c.Close()
		select {
		case <-runErr:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after Close")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("client did not connect: %v", err)
	}
	return c, runErr
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// raw is a hand-driven relay connection for negative tests.
type raw struct {
	conn *quic.Conn
	str  *quic.Stream
	tr   *quic.Transport
	key  ed25519.PrivateKey
}

// rawDial opens a QUIC connection and stream to r without authenticating.
func rawDial(t testing.TB, r *relay, local string) *raw {
	t.Helper()
	if local == "" {
		local = "127.0.0.1:0"
	}
	ua, _ := net.ResolveUDPAddr("udp", local)
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	return rawDialConfig(t, r, pc, &quic.Config{MaxIdleTimeout: 30 * time.Second})
}

// rawDialConfig is rawDial from socket pc with a QUIC configuration.
func rawDialConfig(t testing.TB, r *relay, pc net.PacketConn, conf *quic.Config) *raw {
	t.Helper()
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close() })
	ra, _ := net.ResolveUDPAddr("udp", r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, ra, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}, MinVersion: tls.VersionTLS13}, conf)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return &raw{conn: conn, str: str, tr: tr, key: newKey(t)}
}

func (c *raw) exporter(t testing.TB) []byte {
	st := c.conn.ConnectionState().TLS
	e, err := st.ExportKeyingMaterial(protocol.RelayExporterLabel, nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// hello builds a Hello for identity key, signing exporter with signer.
func hello(key, signer ed25519.PrivateKey, exporter []byte) *protocol.RelayHello {
	h := &protocol.RelayHello{}
	copy(h.Identity[:], key.Public().(ed25519.PublicKey))
	copy(h.Signature[:], ed25519.Sign(signer, protocol.RelayAuthMessage(exporter)))
	return h
}

func (c *raw) write(t testing.TB, f protocol.RelayFrame) {
	t.Helper()
	if err := protocol.WriteRelayFrame(c.str, f); err != nil {
		t.Fatalf("write %T: %v", f, err)
	}
}

func (c *raw) writeBytes(t testing.TB, b []byte) {
	t.Helper()
	if _, err := c.str.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// auth authenticates and reads the Welcome.
func (c *raw) auth(t testing.TB) *protocol.RelayWelcome {
	t.Helper()
	c.write(t, hello(c.key, c.key, c.exporter(t)))
	f := c.read(t)
	w, ok := f.(*protocol.RelayWelcome)
	if !ok {
		t.Fatalf("want Welcome, got %T", f)
	}
	return w
}

func (c *raw) read(t testing.TB) protocol.RelayFrame {
	t.Helper()
	c.str.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := protocol.ReadRelayFrame(c.str, nil)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *raw) mailbox() protocol.MailboxID {
	return protocol.MailboxFor(c.key.Public().(ed25519.PublicKey))
}

// closedWith waits for the relay to close the connection and returns the
// application error code.
func (c *raw) closedWith(t *testing.T) protocol.RelayCloseCode {
	t.Helper()
	select {
	case <-c.conn.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not close the connection")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.conn.Context()); errors.As(err, &ae) && ae.Remote {
		return protocol.RelayCloseCode(ae.ErrorCode)
	} else {
		t.Fatalf("connection ended without a relay close code: %v", err)
	}
	return 0
}
