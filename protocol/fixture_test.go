package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// testNow is the fixed clock of the unit tests: 2026-01-01T00:00:00Z.
var testNow = time.Unix(1767225600, 0)

const (
	testTenant     = "acme"
	testRelayA     = "relay-a.example:4433"
	testRelayB     = "relay-b.example:4433"
	testDeviceName = "W11-L-FRONTDESK"
)

// fixture holds deterministic keys and documents for the unit tests.
type fixture struct {
	msp        ed25519.PrivateKey
	mspPub     IdentityKey
	approval   *detrand.Signer
	approvalPK ApprovalKey
	phone      noise.DHKey
	agent      noise.DHKey
	console    noise.DHKey
	tech       TechCert
	device     DeviceCert
	policy     Policy
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{msp: detrand.Ed25519("msp")}
	var err error
	f.mspPub, err = IdentityKeyOf(f.msp.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	f.approval = detrand.P256("tech-approval")
	f.approvalPK, err = ApprovalKeyOf(&f.approval.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		dst  *noise.DHKey
		seed string
	}{{&f.phone, "phone-noise"}, {&f.agent, "agent-noise"}, {&f.console, "console-noise"}} {
		*k.dst, err = CipherSuite.GenerateKeypair(detrand.New(k.seed))
		if err != nil {
			t.Fatal(err)
		}
	}
	f.tech = TechCert{
		Serial:    42,
		TechID:    "tech-nik",
		Username:  "nik",
		Email:     "nik@msp.example",
		Grants:    []Grant{{Tenant: testTenant, Role: RoleAdmin}},
		Relay:     testRelayB,
		NotBefore: testNow.Add(-24 * time.Hour).Unix(),
		NotAfter:  testNow.Add(365 * 24 * time.Hour).Unix(),
	}
	copy(f.tech.NoiseKey[:], f.phone.Public)
	copy(f.tech.IdentityKey[:], detrand.Ed25519("phone-identity").Public().(ed25519.PublicKey))
	f.tech.ApprovalKey = f.approvalPK
	f.device = DeviceCert{
		Serial:    7,
		Name:      testDeviceName,
		Tenant:    testTenant,
		OS:        "linux",
		Relay:     testRelayA,
		NotBefore: testNow.Add(-24 * time.Hour).Unix(),
		NotAfter:  testNow.Add(365 * 24 * time.Hour).Unix(),
	}
	copy(f.device.DeviceID[:], detrand.Bytes("device-id", 16))
	copy(f.device.NoiseKey[:], f.agent.Public)
	copy(f.device.IdentityKey[:], detrand.Ed25519("agent-identity").Public().(ed25519.PublicKey))
	f.policy = validPolicy()
	return f
}

func validPolicy() Policy {
	return Policy{
		Tenant:    testTenant,
		Version:   3,
		IssuedAt:  testNow.Unix(),
		LoginMode: ModeNamed,
		Offline: OfflineParams{
			Digits: 6, Period: 30, Skew: 1, MaxFailures: 5, LockoutBase: 30, LockoutLimit: 3600,
		},
		MaxSession:     8 * 3600,
		InactivityDays: 30,
		Revoked:        []uint64{3, 9},
		Console:        PeerAddr{Relay: testRelayA, Mailbox: MailboxID{0xaa}}.String(),
	}
}

// chanTransport is one end of an in-memory, in-order message pipe.
type chanTransport struct {
	in, out chan []byte
}

func transportPair() (a, b *chanTransport) {
	x, y := make(chan []byte, 8), make(chan []byte, 8)
	return &chanTransport{in: x, out: y}, &chanTransport{in: y, out: x}
}

func (c *chanTransport) WriteMessage(ctx context.Context, msg []byte) error {
	select {
	case c.out <- bytes.Clone(msg):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *chanTransport) ReadMessage(ctx context.Context) ([]byte, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handshake runs both sides of a handshake over an in-memory pipe. The
// responder's error is reported first: it is the side that must drop a
// peer that has not seen the code.
func handshake(t testing.TB, ini, resp HandshakeConfig) (is, rs *Session, ierr, rerr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, b := transportPair()
	type result struct {
		s   *Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Initiate(ctx, ini, a)
		done <- result{s, err}
	}()
	rs, rerr = Respond(ctx, resp, b)
	if rerr != nil {
		cancel()
	}
	r := <-done
	return r.s, rs, r.err, rerr
}

// wantErr fails unless err matches want (nil meaning success).
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	}
}
