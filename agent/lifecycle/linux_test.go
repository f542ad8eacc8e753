//go:build linux

package lifecycle_test

import (
	"crypto/rand"
	"os"
	"slices"
	"testing"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
)

// TestLinuxLifecycle drives the real Linux backend (shadow-utils) in a
// sandbox and proves with pamtester, through the real PAM stack, that the
// issued password logs in while the session is active and fails after it
// ends, after the maximum session length, and after a crash recovery. The
// host's /etc/shadow is compared before and after.
func TestLinuxLifecycle(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root (CI runs as root): the sandbox uses mount namespaces")
	}
	hostShadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	sb, err := sandbox.Open(ctx, sandbox.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	be, err := linux.New(linux.Config{Runner: sb})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	newMgr := func() *lifecycle.Manager {
		return lifecycle.New(lifecycle.Config{Backend: be, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader, Now: e.clock.Now, MaxNameLen: accounts.MaxNameLinux})
	}
	m := newMgr()
	login := func(name string, g lifecycle.Grant) error { return sb.Login(ctx, name, g.Password) }

	g, err := m.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if err := login("msp-nik", g); err != nil {
		t.Fatalf("active session: pamtester refuses the issued password: %v", err)
	}
	if info, _ := be.Lookup(ctx, "msp-nik"); !info.Admin || !info.Enabled {
		t.Fatalf("lookup %+v", info)
	}
	if err := m.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	if err := login("msp-nik", g); err == nil {
		t.Fatal("ended session: pamtester accepts the old password")
	}

	// Maximum session length.
	g, err = m.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if err := login("msp-nik", g); err != nil {
		t.Fatalf("second session: %v", err)
	}
	e.clock.Add(2 * 3600e9)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if err := login("msp-nik", g); err == nil {
		t.Fatal("expired session: pamtester accepts the password")
	}

	// Crash: a manager enables an account and disappears; the next one
	// recovers it.
	g, err = m.Begin(ctx, e.request("ann"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2Recover(t, newMgr()); err != nil {
		t.Fatal(err)
	}
	if err := login("msp-ann", g); err == nil {
		t.Fatal("after recovery: pamtester accepts the password")
	}
	if info, _ := be.Lookup(ctx, "msp-ann"); info.Enabled {
		t.Fatal("enabled after recovery")
	}
	ev := e.events(t)
	for _, want := range []string{"account.created", "account.enabled", "session.ended", "session.expired", "agent.recovered", "account.disabled"} {
		if !slices.Contains(ev, want) {
			t.Errorf("audit lacks %s: %v", want, ev)
		}
	}
	after, err := os.ReadFile("/etc/shadow")
	if err != nil || string(after) != string(hostShadow) {
		t.Fatal("the host's /etc/shadow changed")
	}
}

func m2Recover(t *testing.T, m *lifecycle.Manager) error { return m.Recover(t.Context()) }
