//go:build linux

package lifecycle_test

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/linux/linuxtest"
	"golang.org/x/sys/unix"
)

// TestLinuxHardCap (SPEC.md 11.13): with the real Linux backend in a
// sandbox, a terminal the account owns (a real pseudo-terminal) gets the
// warning WarnBefore ahead of the cap; at the cap the account's processes
// are killed, the account is disabled and out of the sudo group (the
// group file says so, and the signed receipt), and the password no
// longer logs in through PAM.
func TestLinuxHardCap(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	e.policy.MaxSession, e.policy.WarnBefore = 3600, 300
	sb, be, newMgr := linuxManager(t, e)
	m := newMgr()
	g, err := m.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := be.Lookup(ctx, g.Account)
	if err != nil || !info.Admin {
		t.Fatalf("in the session: %+v %v, want a member of the sudo group", info, err)
	}
	uid, _ := strconv.Atoi(info.ID)
	master := ptyOwnedBy(t, uid)
	procs := []*exec.Cmd{linuxtest.StartAs(t, uid, "sleep", "600"), linuxtest.StartAs(t, uid, "sh", "-c", "while :; do sleep 1 & wait; done")}

	e.clock.Add(3300 * time.Second)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, master, "Save your work now."); !strings.Contains(got, "jitkey: the technician session of msp-nik ends at") {
		t.Fatalf("terminal got %q", got)
	}
	if err := sb.Login(ctx, g.Account, g.Password); err != nil {
		t.Fatalf("the warning ended the session early: %v", err)
	}
	e.clock.Add(300 * time.Second)
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := be.Lookup(ctx, g.Account); err != nil || info.Enabled || info.Admin {
		t.Fatalf("after the cap: %+v %v, want disabled and out of the sudo group", info, err)
	}
	// The group file itself, not only Lookup's reading of it.
	out, err := sb.Run(ctx, nil, "getent", "group", "sudo")
	if err != nil {
		t.Fatal(err)
	}
	if members := strings.Split(strings.TrimSpace(string(out)), ":")[3]; slices.Contains(strings.Split(members, ","), g.Account) {
		t.Fatalf("after the cap: %s still in the sudo group: %s", g.Account, out)
	}
	if rc := e.agent.LastReceipt(t, g.Account); !rc.Disabled || !rc.PasswordRotated || !rc.ProcessesEnded || !rc.AdminRemoved {
		t.Fatalf("receipt %+v, want every action stated", rc)
	}
	if err := sb.Login(ctx, g.Account, g.Password); err == nil {
		t.Fatal("after the cap: pamtester accepts the password")
	}
	linuxtest.WantKilled(t, "hard cap", procs...)
}

// ptyOwnedBy opens a pseudo-terminal whose terminal side uid owns, as
// login makes the terminal of a session, and returns its master side. The
// test holds the terminal side open, as a shell would.
func ptyOwnedBy(t *testing.T, uid int) *os.File {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	name := "/dev/pts/" + strconv.Itoa(n)
	if err := os.Chown(name, uid, -1); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close(); master.Close() })
	return master
}

// readUntil reads the master side until want appears or 5 s pass.
func readUntil(t *testing.T, f *os.File, want string) string {
	t.Helper()
	if err := f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(b.String(), want) {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			t.Fatalf("terminal: %v after %q", err, b.String())
		}
	}
	return b.String()
}
