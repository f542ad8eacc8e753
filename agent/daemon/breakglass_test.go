package daemon_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// TestBreakGlassOffline (SPEC.md 11.15) over a real QUIC relay: the
// agent escrows its first recovery code at its first contact; with the
// relay (so console and phones) gone, the code typed at the login
// surface's offline prompt with the username breakglass opens
// msp-breakglass; the same code again is refused; back online, the
// console receives breakglass.used and then the next code, which differs.
func TestBreakGlassOffline(t *testing.T) {
	w := newWorld(t, server.Limits{})
	mb := w.info.Addr.Mailbox
	eventuallyWithin(t, "the first recovery code escrowed", 30*time.Second, func() bool {
		return len(w.console.Escrowed(mb)) == 1
	})
	first := w.console.Escrowed(mb)[0]
	if first.Generation != 1 {
		t.Fatalf("first escrow: generation %d", first.Generation)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	w.stopRelay()
	s := logon(t, ctx, w.sock)
	status(t, ctx, s, ipcserver.Status{Online: false, OTP: true})
	cred := codeCredential(t, ctx, s, protocol.BreakGlassUsername, first.Code.Text())
	if cred.Username != protocol.BreakGlassAccount {
		t.Fatalf("account %s", cred.Username)
	}
	w.useCredential(t, ctx, s, cred, "break-glass")

	again := logon(t, ctx, w.sock)
	status(t, ctx, again, ipcserver.Status{Online: false, OTP: true})
	if err := again.Code(ctx, protocol.BreakGlassUsername, first.Code.Text()); err != nil {
		t.Fatal(err)
	}
	if d := denied(t, again); d.Reason != "wrong or used recovery code" {
		t.Fatalf("second use: %+v", d)
	}

	// Back online: the use is reported, then the next code escrowed.
	w.relay, w.relayAddr, w.pin, w.stopRelay = startRelay(t, w.relayAddr, 1, server.Limits{})
	// The bound covers the relay client's back-off (at most 30 s) and a
	// shipping attempt caught by the restart: one whose session lost a
	// message with the old relay waits out audit.AttemptTimeout (1 min)
	// before the next attempt ships and escrows.
	eventuallyWithin(t, "the next recovery code escrowed", audit.AttemptTimeout+30*time.Second, func() bool {
		return len(w.console.Escrowed(mb)) == 2
	})
	next := w.console.Escrowed(mb)[1]
	if next.Generation != 2 || next.Code == first.Code {
		t.Fatalf("next escrow: generation %d, same code %v", next.Generation, next.Code == first.Code)
	}
	ev := agenttest.Events(w.console.Records(mb))
	used := slices.Index(ev, protocol.EventBreakGlassUsed)
	if used < 0 {
		t.Fatalf("no breakglass.used at the console: %v", ev)
	}
	for _, r := range w.console.Records(mb) {
		if r.Event == protocol.EventBreakGlassUsed && (r.Account != protocol.BreakGlassAccount || r.Method != protocol.MethodBreakGlass || r.Online) {
			t.Fatalf("breakglass.used record %+v", r)
		}
	}
}
