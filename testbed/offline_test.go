//go:build linux

package testbed

import (
	"context"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// otpShown is `jitkey-phone --json otp DEVICE`.
type otpShown struct {
	Device      string `json:"device"`
	Username    string `json:"username"`
	Code        string `json:"code"`
	SecondsLeft int    `json:"seconds_left"`
	Mode        string `json:"mode"`
}

// phoneCode asks the phone for its offline code for device, waiting for a
// fresh one if fewer than 5 seconds are left on it (so the code is still
// valid when typed).
func phoneCode(t *testing.T, ctx context.Context, p *harness.Phone, device string) otpShown {
	t.Helper()
	for {
		var o otpShown
		if err := p.Run(ctx, "--json", "otp", device).JSON(&o); err != nil {
			t.Fatalf("jitkey-phone otp %s: %v", device, err)
		}
		if o.SecondsLeft >= 5 {
			return o
		}
		time.Sleep(time.Duration(o.SecondsLeft+1) * time.Second)
	}
}

// TestOfflineCode (SPEC.md 11.6, named mode): Nik logs in once online on
// CONTOSO-WS1, which gives his phone an offline key for it. The computer
// is then cut off the network (its agent runs in a network namespace):
// the login screen switches to "username + code" by itself, Nik types
// the code his phone shows and is logged in with a fresh password; the
// same code is refused. Back on the network, the offline journal reaches
// the console, and the key used offline is retired: the phone gets a new
// one at the next online login.
func TestOfflineCode(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	ns, err := harness.NewNetns(ctx, "jk-testbed-agent", 8)
	t.Cleanup(func() { ns.Close() })
	if err != nil {
		t.Fatal(err)
	}
	w := harness.NewWorld(newBed(t))
	w.RelayListen = ns.HostAddr + ":0"
	w.ContosoNetns = ns
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if res := w.Nik.Run(ctx, "otp", harness.DeviceContoso); res.OK() {
		t.Fatalf("the phone shows a code before any online login there: %s", res)
	}
	loginAgain(t, ctx, w, w.Contoso, w.Nik)
	before := phoneCode(t, ctx, w.Nik, harness.DeviceContoso)
	if before.Username != harness.TechNik || len(before.Code) != 6 {
		t.Fatalf("phone shows %+v", before)
	}

	start := time.Now()
	if err := ns.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := w.Contoso.StartSurface("logon", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code := phoneCode(t, ctx, w.Nik, harness.DeviceContoso)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.EnterCode(wctx, code.Username, code.Code); err != nil {
		t.Fatalf("the login screen never asked for a code: %v", err)
	}
	t.Logf("the login screen asked for a code %v after the cut", time.Since(start).Round(time.Millisecond))
	acct, err := s.WaitLoggedIn(wctx)
	if err != nil {
		t.Fatalf("offline login: %v", err)
	}
	if acct != harness.NamedAccountNik {
		t.Fatalf("logged in as %s", acct)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)

	// The same code again: refused.
	again, err := w.Contoso.StartSurface("logon", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.EnterCode(wctx, code.Username, code.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := again.WaitFor(wctx, 0, regexpDenied); err != nil {
		t.Fatalf("a used code was not refused: %v", err)
	}
	mustNoneEnabled(t, ctx, w)

	// Back online: the journal arrives, the key is retired, and the next
	// online login gives the phone a new one.
	if err := ns.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	// The bound: during the cut each relay dial waits its 10 s handshake
	// (the link drops packets) and the back-off between dials doubles
	// from 0.25 s, so the agent is connected again at most 30 s (the
	// back-off's cap, relay/client MaxBackoff) plus a handshake after the
	// link is back; the shipper ships at once then (shipOnReconnect in
	// agent/daemon), and the acknowledgement's contact writes
	// offline.key.replaced, which goes in the same run. The rest is
	// margin for a loaded machine.
	restored := time.Now()
	log := mustAuditWithin(t, ctx, w, 60*time.Second, "offline.key.replaced")
	t.Logf("offline.key.replaced at the console %v after the link came back", time.Since(restored).Round(time.Millisecond))
	offline := false
	for _, r := range log.Records(harness.DeviceContoso) {
		if r.Event == "login.approved" && r.Method == "otp" && !r.Online && r.Username == harness.TechNik {
			offline = true
		}
	}
	if !offline {
		t.Fatalf("no offline login.approved in the console's trail:\n%s", log.Summary())
	}
	// Compare the phone's code just before and just after the next online
	// login, within one 30 s step: a new key gives another code.
	var old otpShown
	for {
		old = phoneCode(t, ctx, w.Nik, harness.DeviceContoso)
		if old.SecondsLeft >= 20 {
			break
		}
		time.Sleep(time.Duration(old.SecondsLeft+1) * time.Second)
	}
	fetched := time.Now()
	loginAgain(t, ctx, w, w.Contoso, w.Nik)
	var fresh otpShown
	if err := w.Nik.Run(ctx, "--json", "otp", harness.DeviceContoso).JSON(&fresh); err != nil {
		t.Fatal(err)
	}
	if time.Since(fetched) < time.Duration(old.SecondsLeft-1)*time.Second && fresh.Code == old.Code {
		t.Fatalf("the phone still shows the retired key's code %s in the same step", old.Code)
	}
	mustNoneEnabled(t, ctx, w)
}
