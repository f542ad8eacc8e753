//go:build linux

package testbed

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/testbed/harness"
)

// readable reports whether a failed phone command told the person what
// happened: a message on stderr from jitkey-phone, and no Go panic.
func readable(r harness.Result) bool {
	out := r.Stdout + r.Stderr
	return strings.Contains(r.Stderr, "jitkey-phone: ") && !strings.Contains(out, "goroutine ") && !strings.Contains(out, "panic:")
}

var requestShown = regexp.MustCompile(`^Log in to (\S+) .* as (\S+)`)

// startInteractiveScan starts `jitkey-phone scan` without a decision: the
// phone shows the request and waits for the technician's tap (stdin).
func startInteractiveScan(t *testing.T, ctx context.Context, p *harness.Phone, s *harness.Surface, extra ...string) *harness.Proc {
	t.Helper()
	pr, err := p.Start("scan", append(extra, "scan", "--image", s.QRPNG)...)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := pr.WaitFor(wctx, 0, requestShown); err != nil {
		t.Fatalf("phone did not show the request: %v", err)
	}
	return pr
}

// loginAgain proves the system recovered: a fresh login works and ends.
func loginAgain(t *testing.T, ctx context.Context, w *harness.World, a *harness.Agent, p *harness.Phone) {
	t.Helper()
	s, acct, err := w.Login(ctx, a, p)
	if err != nil {
		t.Fatalf("login after recovery: %v", err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatalf("logout after recovery (%s): %v", acct, err)
	}
}

// TestFaultRelayRestartMidApproval: the relay is killed (-9) while Nik's
// phone shows the request, and restarted (same address and key) before
// he approves. Either the approval still arrives after every peer
// reconnected, or his phone shows a readable error; never is an account
// left enabled, and once the relay is back, logins work again.
func TestFaultRelayRestartMidApproval(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	s := showLoginQR(t, ctx, w.Contoso)
	scan := startInteractiveScan(t, ctx, w.Nik, s, "--timeout", "20s")
	agentMark, consoleMark := w.Contoso.Proc.Mark(), w.Console.Serve.Mark()
	if err := w.Relay.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := w.Relay.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := scan.Send("y\n"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	scanErr := scan.Wait(wctx)
	out := scan.Output()
	if scanErr == nil {
		t.Logf("approval survived the relay restart: %s", out)
		if _, err := s.WaitLoggedIn(wctx); err != nil {
			t.Fatalf("phone says approved, surface did not log in: %v", err)
		}
		if err := s.Logout(ctx); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("approval lost with the relay: %v: %s", scanErr, out)
		if !strings.Contains(out, "jitkey-phone: ") || strings.Contains(out, "panic:") {
			t.Errorf("phone shows no readable error: %q", out)
		}
		_ = s.Stop(5 * time.Second)
	}
	mustNoneEnabled(t, ctx, w)
	// A relay killed with -9 sends no goodbye: peers notice when QUIC
	// gives up on the old connection, then reconnect.
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 90*time.Second)
	defer rcancel()
	for _, p := range []*harness.Proc{w.Contoso.Proc, w.Console.Serve} {
		from := agentMark
		if p == w.Console.Serve {
			from = consoleMark
		}
		if err := harness.WaitRelay(rctx, p, from); err != nil {
			t.Fatalf("%s did not reconnect to the restarted relay: %v", p.Name, err)
		}
	}
	t.Logf("agent and console reconnected %v after the relay restart", time.Since(start).Round(100*time.Millisecond))
	loginAgain(t, ctx, w, w.Contoso, w.Nik)
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w, "login.approved="+harness.NamedAccountNik, "account.disabled="+harness.NamedAccountNik)
}

// TestFaultAgentKilledWhileEnabled: the agent dies (kill -9) while Nik's
// account is enabled and in use. The surface reports the lost agent;
// the account stays enabled only until the agent starts again, whose
// crash recovery disables it and audits that; the audit trail has no gap.
func TestFaultAgentKilledWhileEnabled(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	s, acct, err := w.Login(ctx, w.Contoso, w.Nik)
	if err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if err := w.Contoso.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true) // nobody disabled it yet: that is the fault
	// The user logs out while the agent is down: the surface says so.
	_ = s.Signal(15)
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	if err := s.Wait(wctx); err == nil {
		t.Error("surface reported a clean logout with its agent dead")
	}
	if out := s.Output(); !strings.Contains(out, "jitkey-agent: ") {
		t.Errorf("surface shows no readable error: %q", out)
	}
	if err := w.Contoso.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, false)
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w, "account.enabled="+acct, "agent.recovered")
	loginAgain(t, ctx, w, w.Contoso, w.Nik)
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w)
}

// TestFaultConsoleOffline: the console is down while Nik logs in and
// out. The agent decides alone from its cached signed policy, keeps its
// audit records, and ships every one of them, without a gap, once the
// console is back.
func TestFaultConsoleOffline(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	before, err := w.Console.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Console.Serve.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s, acct, err := w.Login(ctx, w.Contoso, w.Nik)
	if err != nil {
		t.Fatalf("login with the console offline: %v", err)
	}
	mustEnabled(t, ctx, w.ContosoAcc, acct, true)
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	mustNoneEnabled(t, ctx, w)
	mid, err := w.Console.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(mid.Records("")) != len(before.Records("")) {
		t.Fatalf("console offline but its audit grew: %d -> %d", len(before.Records("")), len(mid.Records("")))
	}
	if err := w.Console.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	log := mustAuditWithin(t, ctx, w, 45*time.Second, "login.approved="+acct, "account.enabled="+acct, "account.disabled="+acct)
	t.Logf("records made while the console was offline arrived %v after it came back", time.Since(start).Round(100*time.Millisecond))
	if len(log.Records(harness.DeviceContoso)) <= len(before.Records(harness.DeviceContoso)) {
		t.Fatal("no new records after the console came back")
	}
}

// TestFaultPhoneClockSkew: Nik's phone clock runs 10 minutes ahead. The
// login is refused (stale or future-dated approval or code) with a
// readable message; no account is enabled. With the clock right again,
// he gets in.
func TestFaultPhoneClockSkew(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	w := newWorld(t, ctx)
	for _, skew := range []string{"10m", "-10m"} {
		s := showLoginQR(t, ctx, w.Contoso)
		w.Nik.ClockOffset = skew
		sc := w.ScanQR(ctx, w.Nik, s, true)
		w.Nik.ClockOffset = ""
		if sc.OK() || sc.Status == "approved" {
			t.Fatalf("skew %s: login approved: %s", skew, sc.Result)
		}
		if !readable(sc.Result) && sc.Message == "" {
			t.Errorf("skew %s: no readable message: %s", skew, sc.Result)
		}
		t.Logf("skew %s: phone says: %s%s", skew, sc.Error, sc.Message)
		mustNoneEnabled(t, ctx, w)
		_ = s.Stop(5 * time.Second)
	}
	loginAgain(t, ctx, w, w.Contoso, w.Nik)
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w)
}

// TestFaultPhoneCutOff: Nik's phone sits in its own network namespace,
// joined to the machine by a veth pair (a 10.214.x.0/30; the relay listens
// on the host end). The link goes down while the phone shows the
// request; his approval cannot leave. The phone says it could not reach
// the computer, nothing is enabled, and after the link is back he logs in.
func TestFaultPhoneCutOff(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	ns, err := harness.NewNetns(ctx, "jk-testbed-phone", 7)
	t.Cleanup(func() { ns.Close() })
	if err != nil {
		t.Fatal(err)
	}
	w := harness.NewWorld(newBed(t))
	w.RelayListen = ns.HostAddr + ":0"
	w.PhoneNetns = ns
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	s := showLoginQR(t, ctx, w.Contoso)
	scan := startInteractiveScan(t, ctx, w.Nik, s, "--timeout", "10s")
	if err := ns.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := scan.Send("y\n"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	if err := scan.Wait(wctx); err == nil {
		t.Fatalf("phone claims success with its network cut: %s", scan.Output())
	}
	if out := scan.Output(); !strings.Contains(out, "jitkey-phone: ") || strings.Contains(out, "panic:") {
		t.Errorf("phone shows no readable error: %q", out)
	} else {
		t.Logf("phone says: %s", out[strings.LastIndex(out, "jitkey-phone: "):])
	}
	mustNoneEnabled(t, ctx, w)
	_ = s.Stop(5 * time.Second)
	if err := ns.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	loginAgain(t, ctx, w, w.Contoso, w.Nik)
	mustNoneEnabled(t, ctx, w)
	mustAudit(t, ctx, w)
}
