//go:build linux

package lifecycle_test

import (
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/linuxtest"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
)

// TestLinuxLifecycle drives the real Linux backend (shadow-utils) in a
// sandbox and proves with pamtester, through the real PAM stack, that the
// issued password logs in while the session is active and fails after it
// ends, after the maximum session length, and after a crash recovery. The
// host's /etc/shadow is compared before and after.
func TestLinuxLifecycle(t *testing.T) {
	hostShadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	e := newEnv(t)
	sb, be, newMgr := linuxManager(t, e)
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

// TestLinuxForeignAccount: with the real Linux backend in a sandbox, an
// account under a name jitkey holds that jitkey did not create is left as
// it is by every operation, even when it carries jitkey's full name: the
// uid differs from the one recorded. Proved with getent and pamtester.
func TestLinuxForeignAccount(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	sb, be, newMgr := linuxManager(t, e)
	m := newMgr()
	run := func(stdin string, name string, args ...string) string {
		t.Helper()
		out, err := sb.Run(ctx, []byte(stdin), name, args...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	pw := password.FromBytes([]byte("Customer-Admin-Pass-4711"))
	// adminCreates makes name as a customer administrator would, with a
	// password and uid of their choosing ("" for useradd's next one).
	adminCreates := func(name, uid, comment string) {
		t.Helper()
		args := []string{"--create-home", "--comment", comment}
		if uid != "" {
			args = append(args, "--uid", uid)
		}
		run("", "useradd", append(args, "--", name)...)
		run(name+":"+string(pw.Bytes())+"\n", "chpasswd")
	}
	state := func(name string) string {
		t.Helper()
		return run("", "getent", "passwd", name) + run("", "getent", "shadow", name) + run("", "getent", "group", "sudo")
	}

	// msp-nik: jitkey's, then deleted and re-created by an administrator
	// with another uid and even jitkey's full name.
	g, err := m.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	mine, err := be.Lookup(ctx, "msp-nik")
	if err != nil {
		t.Fatal(err)
	}
	run("", "userdel", "--remove", "--", "msp-nik")
	uid, _ := strconv.Atoi(mine.ID)
	adminCreates("msp-nik", strconv.Itoa(uid+500), accounts.JITFullNamePrefix+"nik")
	// msp-bob: reserved at LoginHello, then created by an administrator.
	if _, err := m.AccountFor(ctx, "id-bob", "bob", &e.policy); err != nil {
		t.Fatal(err)
	}
	adminCreates("msp-bob", "", "Bob from accounting")

	before := map[string]string{"msp-nik": state("msp-nik"), "msp-bob": state("msp-bob")}
	for _, u := range []string{"nik", "bob"} {
		if _, err := m.Begin(ctx, e.request(u)); !errors.Is(err, lifecycle.ErrForeign) {
			t.Fatalf("Begin %s = %v, want ErrForeign", u, err)
		}
	}
	if err := newMgr().Recover(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(31 * 24 * time.Hour)
	if err := m.DeleteInactive(ctx, 30); err != nil {
		t.Fatal(err)
	}
	for name, was := range before {
		if now := state(name); now != was {
			t.Errorf("%s changed:\n%s\nwas:\n%s", name, now, was)
		}
		if err := sb.Login(ctx, name, pw); err != nil {
			t.Errorf("%s: the administrator's password no longer logs in: %v", name, err)
		}
	}
}

// The daemon's Lockdown relies on the Linux backend listing jitkey's
// accounts.
var _ lifecycle.Lister = (*linux.Backend)(nil)

// TestLinuxEndKillsProcesses (F2): with the real Linux backend in a
// sandbox, a process the account runs (a plain one, and a shell that keeps
// forking) is killed when the session ends by End, by the maximum session
// length and by Recover after a restart; a new session of the same
// technician (unlock, sudo) leaves it running.
func TestLinuxEndKillsProcesses(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	_, be, newMgr := linuxManager(t, e)
	m := newMgr()
	// session begins one for nik and starts what a technician would
	// leave running in it.
	session := func() (lifecycle.Grant, []*exec.Cmd) {
		t.Helper()
		g, err := m.Begin(ctx, e.request("nik"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := be.Lookup(ctx, g.Account)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(info.ID)
		return g, []*exec.Cmd{
			linuxtest.StartAs(t, uid, "sleep", "600"),
			linuxtest.StartAs(t, uid, "sh", "-c", "while :; do sleep 1 & wait; done"),
		}
	}

	g, procs := session()
	if err := m.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	linuxtest.WantKilled(t, "End", procs...)

	_, procs = session()
	e.clock.Add(2 * time.Hour)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	linuxtest.WantKilled(t, "maximum session length", procs...)

	_, procs = session()
	g, err := m.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range procs {
		// Neither exited nor stopped.
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(c.Process.Pid, &ws, syscall.WNOHANG|syscall.WUNTRACED, nil); pid != 0 || err != nil {
			t.Fatalf("the same technician's new session ended %v: %v %v", c.Args, ws, err)
		}
	}
	if err := newMgr().Recover(ctx); err != nil {
		t.Fatal(err)
	}
	linuxtest.WantKilled(t, "Recover", procs...)
}

// linuxManager returns a sandbox, the real Linux backend on it and a
// function making a Manager of e's store on that backend (each call a new
// one, as after an agent restart).
func linuxManager(t *testing.T, e *env) (*sandbox.Sandbox, *linux.Backend, func() *lifecycle.Manager) {
	t.Helper()
	sb, be := linuxtest.Backend(t)
	return sb, be, func() *lifecycle.Manager {
		return lifecycle.New(lifecycle.Config{Backend: be, Store: e.agent.Store, Audit: e.agent.Audit, Rand: rand.Reader, Now: e.clock.Now, MaxNameLen: accounts.MaxNameLinux})
	}
}
