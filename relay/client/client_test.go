package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
	"github.com/jitkey/jitkey/relay/relaytest"
)

// fakeRelay is a QUIC listener that reads a peer's Hello and answers with
// what welcome returns, after hold (if set) is closed.
type fakeRelay struct {
	addr   string
	pin    [32]byte
	hellos chan *protocol.RelayHello
	ended  chan struct{} // one send per connection the peer ended
}

func startFakeRelay(t *testing.T, hold <-chan struct{}, welcome func(h *protocol.RelayHello) protocol.RelayFrame) *fakeRelay {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.Listen(pc, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		NextProtos:   []string{protocol.RelayALPN},
	}, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRelay{addr: pc.LocalAddr().String(), pin: protocol.RelayPin(cert.RawSubjectPublicKeyInfo), hellos: make(chan *protocol.RelayHello, 16), ended: make(chan struct{}, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			str, err := conn.AcceptStream(ctx)
			if err != nil {
				continue
			}
			fr, err := protocol.ReadRelayFrame(str, nil)
			h, ok := fr.(*protocol.RelayHello)
			if err != nil || !ok {
				conn.CloseWithError(0, "")
				continue
			}
			f.hellos <- h
			if hold != nil {
				select {
				case <-hold:
				case <-ctx.Done():
					return
				}
			}
			if err := protocol.WriteRelayFrame(str, welcome(h)); err != nil {
				continue
			}
			go func() {
				var b [1]byte
				str.Read(b[:]) // returns once the peer closes the connection
				f.ended <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		pc.Close()
		<-done
	})
	return f
}

func welcomeFor(m protocol.MailboxID) protocol.RelayFrame {
	return &protocol.RelayWelcome{Mailbox: m, MaxPayload: protocol.MaxRelayPayload}
}

func newClient(t *testing.T, f *fakeRelay, log *relaytest.LogBuffer, tr *quic.Transport) *client.Client {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Identity: k, Home: f.addr, Pins: [][32]byte{f.pin}, MinBackoff: time.Hour, MaxBackoff: time.Hour,
		Logger: slog.New(slog.NewTextHandler(log, nil)), Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWelcomeMailbox(t *testing.T) {
	tests := []struct {
		name      string
		welcome   func(h *protocol.RelayHello) protocol.RelayFrame
		connected bool
	}{
		{"own mailbox", func(h *protocol.RelayHello) protocol.RelayFrame {
			return welcomeFor(protocol.MailboxFor(h.Identity[:]))
		}, true},
		{"another peer's mailbox", func(*protocol.RelayHello) protocol.RelayFrame {
			other, _, _ := ed25519.GenerateKey(nil)
			return welcomeFor(protocol.MailboxFor(other))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeRelay(t, nil, tt.welcome)
			c := newClient(t, f, &relaytest.LogBuffer{}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runErr := make(chan error, 1)
			go func() { runErr <- c.Run(ctx) }()
			<-f.hellos
			wctx, wcancel := context.WithTimeout(ctx, time.Second)
			err := c.WaitConnected(wctx)
			wcancel()
			if tt.connected {
				if err != nil {
					t.Fatalf("WaitConnected: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("client accepted a Welcome for another mailbox")
				}
				select {
				case <-f.ended:
				case <-time.After(5 * time.Second):
					t.Fatal("client kept the connection after a Welcome for another mailbox")
				}
			}
			c.Close()
			if err := <-runErr; !errors.Is(err, client.ErrClosed) {
				t.Fatalf("Run: %v, want ErrClosed", err)
			}
			checkNoClientGoroutines(t)
		})
	}
}

// TestCloseWhileDialling closes the client while Run's dial waits for the
// Welcome: the dial that completes afterwards must not start goroutines
// (a WaitGroup Add racing Close's Wait) nor install a home connection. The
// client dials from a shared transport, which Close leaves open (load
// programs); its own socket would fail the late dial anyway.
func TestCloseWhileDialling(t *testing.T) {
	hold := make(chan struct{})
	f := startFakeRelay(t, hold, func(h *protocol.RelayHello) protocol.RelayFrame {
		return welcomeFor(protocol.MailboxFor(h.Identity[:]))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	defer pc.Close()
	defer tr.Close()
	log := &relaytest.LogBuffer{}
	c := newClient(t, f, log, tr)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()
	<-f.hellos
	c.Close() // Run is still dialling: nothing to wait for yet
	closed := len(log.String())
	close(hold)
	select {
	case err := <-runErr:
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Run: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if s := clientGoroutines(); s != "" {
		t.Fatalf("client goroutines after Close and Run returned:\n%s", s)
	}
	if after := log.String()[closed:]; strings.Contains(after, "connected to home relay") {
		t.Fatalf("home connection installed after Close:\n%s", after)
	}
}

// clientGoroutines returns the stacks of goroutines running the client's
// connection reader.
func clientGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "client.(*relayConn).readLoop") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func checkNoClientGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := clientGoroutines()
		if s == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaked client goroutines:\n%s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
