package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/relaytest"
	"github.com/jitkey/jitkey/relay/server"
)

// metricSum adds up every series of a metric, labelled or not, whose
// labels contain match ("" matches all).
func (r *relay) metricSum(t *testing.T, name, match string) int64 {
	t.Helper()
	var sum int64
	for _, line := range strings.Split(r.metricsText(t), "\n") {
		series, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		if !strings.Contains(series, match) {
			continue
		}
		var v int64
		fmt.Sscan(val, &v)
		sum += v
	}
	return sum
}

// Refusals and Retries are decided per Initial packet, statelessly, and a
// quic-go client's first flight is often two Initial packets (its
// ClientHello carries a post-quantum key share), so one attempt may be
// counted twice: the tests check "at least one" where they expect some.

// wantRefused fails unless err is the relay's refusal before the
// handshake: a QUIC CONNECTION_REFUSED from the relay.
func wantRefused(t *testing.T, err error, what string) {
	t.Helper()
	var te *quic.TransportError
	if err == nil {
		t.Fatalf("%s: connection accepted", what)
	}
	if !errors.As(err, &te) || te.ErrorCode != quic.ConnectionRefused || !te.Remote {
		t.Fatalf("%s: %v, want CONNECTION_REFUSED from the relay", what, err)
	}
}

// dialEventually retries tryDial from local until it succeeds.
func dialEventually(t *testing.T, r *relay, local, what string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = tryDial(r, local); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

func TestLimitMaxConns(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{MaxConns: 2}}, "")
	a, _ := startClient(t, r, nil)
	startClient(t, r, nil)
	if got := r.metric(t, "jitkey_relay_connections"); got != 2 {
		t.Fatalf("connections gauge %d, want 2", got)
	}
	err := tryDial(r, "127.0.0.2:0")
	wantRefused(t, err, "third connection")
	if got := r.metricSum(t, "jitkey_relay_connections_refused_total", `reason="max_conns"`); got < 1 {
		t.Fatalf("max_conns refusals counted %d:\n%s", got, r.metricsText(t))
	}
	a.Close()
	dialEventually(t, r, "127.0.0.2:0", "connection after one closed")
}

func TestLimitMaxPending(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{MaxPending: 2, PendingPerAddr: 2}}, "")
	p1 := rawDial(t, r, "") // QUIC handshake done, no Hello yet
	rawDial(t, r, "")
	if got := r.metric(t, "jitkey_relay_connections_pending"); got != 2 {
		t.Fatalf("pending gauge %d, want 2", got)
	}
	err := tryDial(r, "127.0.0.2:0")
	wantRefused(t, err, "handshake while 2 connections are unauthenticated")
	if got := r.metricSum(t, "jitkey_relay_connections_refused_total", `reason="max_pending"`); got < 1 {
		t.Fatalf("max_pending refusals counted %d:\n%s", got, r.metricsText(t))
	}
	// An authenticated connection no longer counts as pending.
	p1.auth(t)
	if got := r.metric(t, "jitkey_relay_connections_pending"); got != 1 {
		t.Fatalf("pending gauge %d after authentication, want 1", got)
	}
	if err := tryDial(r, "127.0.0.2:0"); err != nil {
		t.Fatalf("handshake below MaxPending refused: %v", err)
	}
}

func TestRetryUnderPressure(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{RetryPending: 2}}, "")
	// Without pressure a peer connects without a Retry.
	startClient(t, r, nil)
	if got := r.metricSum(t, "jitkey_relay_retries_total", ""); got != 0 {
		t.Fatalf("%d Retries without pressure:\n%s", got, r.metricsText(t))
	}
	rawDial(t, r, "")
	startClient(t, r, nil) // one pending connection: still below
	if got := r.metricSum(t, "jitkey_relay_retries_total", ""); got != 0 {
		t.Fatalf("%d Retries below RetryPending:\n%s", got, r.metricsText(t))
	}
	// With RetryPending unauthenticated connections, a new peer must
	// validate its address first; the client follows the Retry.
	rawDial(t, r, "")
	c, _ := startClient(t, r, nil)
	if got := r.metricSum(t, "jitkey_relay_retries_total", `reason="pending"`); got < 1 {
		t.Fatalf("Retries counted %d:\n%s", got, r.metricsText(t))
	}
	if err := c.Send(ctxT(t), c.Addr(), []byte("after retry")); err != nil {
		t.Fatal(err)
	}
	relaytest.Recv(t, c)
	if got := r.metricSum(t, "jitkey_relay_connections_refused_total", ""); got != 0 {
		t.Fatalf("refusals: %d", got)
	}
}

func TestLimitAcceptRatePerAddr(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{AcceptRatePerAddr: 0.001, AcceptBurstPerAddr: 2}}, "")
	for i := range 2 {
		if err := tryDial(r, "127.0.0.1:0"); err != nil {
			t.Fatalf("connection %d within the burst: %v", i, err)
		}
	}
	// The churning address must validate itself, and is then refused.
	err := tryDial(r, "127.0.0.1:0")
	wantRefused(t, err, "third connection from one address")
	retries := r.metricSum(t, "jitkey_relay_retries_total", `reason="addr_rate"`)
	if retries < 1 {
		t.Fatalf("no addr_rate Retry counted:\n%s", r.metricsText(t))
	}
	if got := r.metricSum(t, "jitkey_relay_connections_refused_total", `reason="addr_rate"`); got < 1 {
		t.Fatalf("addr_rate refusals counted %d:\n%s", got, r.metricsText(t))
	}
	// Another address is neither refused nor asked for a Retry.
	if err := tryDial(r, "127.0.0.2:0"); err != nil {
		t.Fatalf("connection from another address: %v", err)
	}
	if got := r.metricSum(t, "jitkey_relay_retries_total", ""); got != retries {
		t.Fatalf("Retries counted %d, want still %d", got, retries)
	}
}

// holdPending completes a QUIC handshake from local and keeps the
// connection open, without a Hello, until the end of the test.
func holdPending(t *testing.T, r *relay, local string) error {
	t.Helper()
	ua, _ := net.ResolveUDPAddr("udp", local)
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close() })
	ra, _ := net.ResolveUDPAddr("udp", r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, ra, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}}, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return nil
}

// TestOneSourceCannotFillPending checks that connections from one source
// that never send Hello cannot fill MaxPending (RL-28): a peer from
// another source still connects and authenticates.
func TestOneSourceCannotFillPending(t *testing.T) {
	const maxPending = 32
	r := startRelay(t, server.Config{Limits: server.Limits{MaxPending: maxPending, RetryPending: maxPending}}, "")
	held := 0
	for range maxPending {
		if holdPending(t, r, "127.0.0.2:0") == nil {
			held++
		}
	}
	if held == 0 || held >= maxPending {
		t.Fatalf("one source holds %d unauthenticated connections, want some and fewer than MaxPending %d", held, maxPending)
	}
	if got := r.metricSum(t, "jitkey_relay_connections_refused_total", `reason="addr_pending"`); got < 1 {
		t.Fatalf("addr_pending refusals counted %d:\n%s", got, r.metricsText(t))
	}
	p := rawDial(t, r, "127.0.0.3:0")
	p.auth(t)
}

// TestBusyHandshakeTimeout checks that under handshake pressure a
// connection gets BusyHandshakeTimeout, not HandshakeTimeout, to send its
// Hello (RL-29).
func TestBusyHandshakeTimeout(t *testing.T) {
	r := startRelay(t, server.Config{Limits: server.Limits{RetryPending: 1, HandshakeTimeout: time.Minute, BusyHandshakeTimeout: 500 * time.Millisecond}}, "")
	c := rawDialNoStream(t, r) // counts as pending itself: pressure
	select {
	case <-c.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection without Hello not closed under pressure")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote || protocol.RelayCloseCode(ae.ErrorCode) != protocol.RelayCloseAuthFailed {
		t.Fatalf("connection ended with %v, want the relay's auth-failed close", err)
	}
	if got := r.metric(t, "jitkey_relay_auth_failures_total"); got != 1 {
		t.Fatalf("auth failures %d, want 1", got)
	}
}
