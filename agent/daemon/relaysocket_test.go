package daemon_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/relay/server"
)

// wsaioctlError is the error Go's UDP socket setup returns under Wine 8
// (WSAIoctl SIO_UDP_CONNRESET unimplemented, WSAEOPNOTSUPP 10045) as the
// relay client wraps it: a socket error.
func wsaioctlError() error {
	return fmt.Errorf("client: open udp socket: %w",
		&net.OpError{Op: "listen", Net: "udp", Err: os.NewSyscallError("wsaioctl", syscall.Errno(10045))})
}

// TestRelaySocketFails: an agent whose relay transport cannot start
// (its UDP socket fails: UDP blocked, or Wine 8) still serves its login
// surfaces: they are told it is offline, and the phone's offline code
// makes the account ready. In the background the agent builds the
// transport again; once the socket works it comes online and the
// surfaces are told so.
func TestRelaySocketFails(t *testing.T) {
	w := newWorld(t, server.Limits{})
	p, mux := w.phone(t, "nik")
	pol, key := w.offlineKey(t, p, mux)
	w.stopAgent()

	var blocked atomic.Bool
	blocked.Store(true)
	var failed atomic.Int32
	w.tweak = func(c *daemon.Config) {
		c.RelayRetry = time.Millisecond
		c.Relay = func(id ed25519.PrivateKey, home string, pins [][32]byte, log *slog.Logger) (daemon.Relay, error) {
			if blocked.Load() {
				failed.Add(1)
				return nil, wsaioctlError()
			}
			return daemon.PersistentRelay(id, home, pins, log)
		}
	}
	w.startAgent(t)
	if failed.Load() == 0 {
		t.Fatal("the relay factory was not called before the agent served")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	s := logon(t, ctx, w.sock)
	_, cred := offlineCode(t, ctx, s, pol, key)
	if cred.Username != "msp-nik" {
		t.Fatalf("credential for %q, want msp-nik", cred.Username)
	}
	w.useCredential(t, ctx, s, cred, "offline")

	// The socket works again: the agent connects by itself, and a
	// waiting surface is told it is online (a QR code follows).
	on := logon(t, ctx, w.sock)
	status(t, ctx, on, ipcserver.Status{Online: false, OTP: true})
	blocked.Store(false)
	var qr bool
	for !on.Status().Online || !qr {
		m, err := on.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the agent online with a QR code: %v (status %+v, QR %v)", err, on.Status(), qr)
		}
		_, isQR := m.(*ipcserver.QR)
		qr = qr || isQR
	}
}

// TestRelayConfigErrorStops: a relay factory failing for another reason
// than a socket (a configuration that cannot heal) still stops the
// agent with the error.
func TestRelayConfigErrorStops(t *testing.T) {
	w := newWorld(t, server.Limits{})
	w.stopAgent()
	bad := errors.New("client: no relay pins")
	err := daemon.Run(t.Context(), daemon.Config{
		StateDir: w.state, Backend: w.backend, IPCPath: w.sock, Logger: testLog("agent"),
		Relay: func(ed25519.PrivateKey, string, [][32]byte, *slog.Logger) (daemon.Relay, error) { return nil, bad },
		Ready: func(daemon.Info) { t.Error("the agent served without a relay configuration") },
	})
	if !errors.Is(err, bad) || !strings.HasPrefix(err.Error(), "daemon: relay: ") {
		t.Fatalf("Run = %v, want daemon: relay: %v", err, bad)
	}
}
