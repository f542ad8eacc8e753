package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/jitkey/jitkey/console/internal/consoletest"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeOverRealRelay runs `serve` against a real relay on loopback and
// enrols a fake agent, pairs a fake phone, ships audit and checks what the
// command line then shows.
func TestServeOverRealRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	relay := consoletest.StartRelay(t)
	relayAddr, pin := relay.Addr, relay.Pin

	work := t.TempDir()
	state := filepath.Join(work, "state")
	jk := func(args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Run(ctx, args, Env{Stdout: &out, Stderr: &errb, DefaultState: state, Now: time.Now, Rand: rand.Reader}); code != 0 {
			t.Fatalf("jitkey-console %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	jk("init", "--relay", relayAddr, "--relay-pin", hex.EncodeToString(pin[:]), "--org", "Acme MSP")
	jk("tenant", "add", "acme")
	jk("tech", "add", "nik", "--email", "nik@example.com", "--role", "acme=admin")
	tok, _ := jk("token", "acme", "--uses", "1")
	pairOut, _ := jk("pair", "nik")
	qr := regexp.MustCompile(`(?m)^qr=(.*)$`).FindStringSubmatch(pairOut)[1]

	// serve
	var serveOut, serveErr syncBuf
	sctx, scancel := context.WithCancel(ctx)
	serveDone := make(chan int, 1)
	go func() {
		serveDone <- Run(sctx, []string{"serve", "--poll", "50ms", "--retry", "100ms"}, Env{Stdout: &serveOut, Stderr: &serveErr, DefaultState: state, Now: time.Now, Rand: rand.Reader})
	}()
	defer func() {
		scancel()
		if code := <-serveDone; code != 0 {
			t.Errorf("serve exited %d: %s", code, serveErr.String())
		}
	}()
	waitFor(t, func() bool { return strings.Contains(serveOut.String(), "ready\n") }, "serve to connect:\n"+serveErr.String())
	if !regexp.MustCompile(`^addr=[a-z2-7]{52}@` + regexp.QuoteMeta(relayAddr) + `\n`).MatchString(serveOut.String()) {
		t.Fatalf("serve printed %q", serveOut.String())
	}

	connect := func() *fakepeer.Peer {
		id, kp, ap := fakepeer.Keys()
		return startPeer(t, ctx, relayAddr, pin, id, kp, ap)
	}
	agent := connect()
	if _, err := agent.Enroll(ctx, strings.TrimSpace(tok), "W11-L-PASSWORD", func() int64 { return time.Now().Unix() }); err != nil {
		t.Fatalf("enroll over the relay: %v\n%s", err, serveErr.String())
	}
	// The token had one use.
	other := connect()
	_, err := other.Enroll(ctx, strings.TrimSpace(tok), "second", func() int64 { return time.Now().Unix() })
	if pe, ok := err.(*protocol.PeerError); !ok || pe.Code != protocol.CodeExpired {
		t.Fatalf("second use of a one-use token: %v, want CodeExpired", err)
	}

	phone := connect()
	_, tc, err := phone.Pair(ctx, qr)
	if err != nil {
		t.Fatalf("pair over the relay: %v\n%s", err, serveErr.String())
	}
	if tc.Username != "nik" {
		t.Fatalf("tech cert for %q", tc.Username)
	}
	// Pairing changed the roster: the agent gets version 2 pushed.
	select {
	case <-agent.Pushes:
	case <-time.After(10 * time.Second):
		t.Fatalf("no policy push to the agent\n%s", serveErr.String())
	}
	rec := agent.Record(protocol.AuditRecord{Time: time.Now().UnixMilli(), Event: "login.approved", TechID: tc.TechID,
		Username: "nik", Account: "msp-nik", Method: protocol.MethodQR, Online: true, Action: protocol.ActionLogon})
	acks, err := agent.Ship(ctx, protocol.AuditBatch{Records: []protocol.Signed{rec}, PolicyVersion: agent.Held("acme"), Name: "W11-L-PASSWORD", OS: "linux"})
	if err != nil || acks[0].UpTo != 1 {
		t.Fatalf("audit over the relay: %v %+v", err, acks)
	}

	out, _ := jk("audit", "--tenant", "acme", "--tech", "nik")
	if !strings.Contains(out, "nik logged into W11-L-PASSWORD with account msp-nik (QR, online)") {
		t.Fatalf("audit shows:\n%s", out)
	}
	out, _ = jk("devices")
	if !regexp.MustCompile(`acme +W11-L-PASSWORD +linux +no .* v2 +all-admins,all-users`).MatchString(out) {
		t.Fatalf("devices shows:\n%s", out)
	}
	out, _ = jk("tech", "list")
	if !strings.Contains(out, "serial ") {
		t.Fatalf("tech list shows:\n%s", out)
	}
}

func startPeer(t *testing.T, ctx context.Context, relay string, pin [32]byte, id ed25519.PrivateKey, kp noise.DHKey, ap *ecdsa.PrivateKey) *fakepeer.Peer {
	t.Helper()
	rc, err := client.New(client.Config{Identity: id, Home: relay, Pins: [][32]byte{pin}})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rc.Run(pctx) }()
	p := fakepeer.New(id, kp, ap, rc)
	go func() {
		defer wg.Done()
		p.Mux.Pump(pctx, func(ctx context.Context) (protocol.PeerAddr, []byte, error) {
			m, err := rc.Recv(ctx)
			return m.From, m.Payload, err
		})
	}()
	t.Cleanup(func() { cancel(); rc.Close(); wg.Wait() })
	if err := rc.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
