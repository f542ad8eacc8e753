//go:build linux

package linux_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/linuxtest"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
)

// wantRunning checks that cmd has not exited.
func wantRunning(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG|syscall.WSTOPPED, nil)
	if err != nil || pid != 0 {
		t.Fatalf("%v (pid %d): wait4 = %d %v, status %v; want it still running", cmd.Args, cmd.Process.Pid, pid, err, ws)
	}
	state, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Stopped processes show T; a process left alone sleeps (S).
	if f := strings.Fields(string(state[strings.LastIndexByte(string(state), ')')+1:])); f[0] != "S" && f[0] != "R" {
		t.Fatalf("%v: state %s, want running", cmd.Args, f[0])
	}
}

// pidsOf lists the live (not zombie) processes whose status shows uid in
// any of its Uid fields, for checking from outside the backend.
func pidsOf(t *testing.T, uid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var zombie, match bool
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "State:"); ok {
				zombie = strings.HasPrefix(strings.TrimSpace(v), "Z")
			}
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				match = slices.Contains(strings.Fields(v), strconv.Itoa(uid))
			}
		}
		if match && !zombie {
			pids = append(pids, pid)
		}
	}
	return pids
}

func uidOf(t *testing.T, b *linux.Backend, name string) int {
	t.Helper()
	info, err := b.Lookup(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := strconv.Atoi(info.ID)
	if err != nil || uid <= 0 {
		t.Fatalf("uid %q", info.ID)
	}
	return uid
}

// TestEndSessionsKills: EndSessions kills every process of the account,
// a plain one, a shell that keeps forking, and a daemon that left its
// parent (setsid); processes of another account and of root run on. It
// runs loginctl only for a uid that logind tracks, and a failing loginctl
// (no logind here) does not stop the kill. A second call finds nothing.
func TestEndSessionsKills(t *testing.T) {
	sb, _, _ := newSandbox(t)
	ctx := t.Context()
	logind := t.TempDir()
	rec := &recorder{Runner: sb}
	b, err := linux.New(linux.Config{Runner: rec, LogindDir: logind})
	if err != nil {
		t.Fatal(err)
	}
	const name, other = "msp-procs", "msp-bystander"
	for _, n := range []string{name, other} {
		if err := b.Create(ctx, n, accounts.JITFullNamePrefix+n, newPassword(t)); err != nil {
			t.Fatal(err)
		}
	}
	uid, otherUID := uidOf(t, b, name), uidOf(t, b, other)
	// logind (were it running) would track the account.
	if err := os.WriteFile(filepath.Join(logind, strconv.Itoa(uid)), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	victims := []*exec.Cmd{
		linuxtest.StartAs(t, uid, "sleep", "600"),
		linuxtest.StartAs(t, uid, "sh", "-c", "while :; do sleep 1 & wait; done"),
		linuxtest.StartAs(t, uid, "sh", "-c", "while :; do sleep 0.01 & done"),
		linuxtest.StartAs(t, uid, "sh", "-c", "setsid sleep 600 & exec sleep 600"),
	}
	bystanders := []*exec.Cmd{
		linuxtest.StartAs(t, otherUID, "sleep", "600"),
		linuxtest.StartAs(t, 0, "sleep", "600"),
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(pidsOf(t, uid)) < len(victims)+2 { // + the setsid daemon and a loop's child
		if time.Now().After(deadline) {
			t.Fatalf("processes of uid %d: %v", uid, pidsOf(t, uid))
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	if err := b.EndSessions(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("EndSessions with %d processes took %v", len(victims)+2, time.Since(start))
	if left := pidsOf(t, uid); len(left) != 0 {
		t.Fatalf("processes of %s left: %v", name, left)
	}
	linuxtest.WantKilled(t, "EndSessions", victims...)
	for _, c := range bystanders {
		wantRunning(t, c)
	}
	if err := b.EndSessions(ctx, name); err != nil {
		t.Fatalf("second EndSessions: %v", err)
	}
	var loginctl [][]string
	for _, argv := range rec.argv {
		if argv[0] == "loginctl" {
			loginctl = append(loginctl, argv)
		}
	}
	want := []string{"loginctl", "terminate-user", strconv.Itoa(uid)}
	if len(loginctl) != 2 || !slices.Equal(loginctl[0], want) {
		t.Fatalf("loginctl calls %q, want two of %q", loginctl, want)
	}
	// An account that logind does not track: no loginctl.
	n := len(rec.argv)
	if err := b.EndSessions(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, argv := range rec.argv[n:] {
		if argv[0] == "loginctl" {
			t.Fatalf("loginctl for an untracked uid: %q", argv)
		}
	}
	for _, c := range bystanders[1:] {
		wantRunning(t, c)
	}
	linuxtest.WantKilled(t, "EndSessions of an untracked uid", bystanders[0])

	if err := b.EndSessions(ctx, "msp-absent"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("EndSessions of an absent account: %v, want ErrNotFound", err)
	}
}

// TestEndSessionsRefusesHostUID: a sandbox account whose uid the host
// gives to another user (here games, uid 5) must not have that user's
// processes killed: EndSessions refuses.
func TestEndSessionsRefusesHostUID(t *testing.T) {
	sb, b, _ := newSandbox(t)
	ctx := t.Context()
	games, err := user.Lookup("games")
	if err != nil {
		t.Skipf("host has no games user: %v", err)
	}
	const name = "msp-clash"
	if _, err := sb.Run(ctx, nil, "useradd", "--non-unique", "--uid", games.Uid, "--", name); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(games.Uid)
	c := linuxtest.StartAs(t, uid, "sleep", "600")
	err = b.EndSessions(ctx, name)
	if err == nil || !strings.Contains(err.Error(), `"games"`) {
		t.Fatalf("EndSessions = %v, want a refusal naming games", err)
	}
	wantRunning(t, c)
}

// TestEndSessionsMany measures EndSessions against many processes.
func TestEndSessionsMany(t *testing.T) {
	_, b, _ := newSandbox(t)
	ctx := t.Context()
	const name = "msp-many"
	if err := b.Create(ctx, name, "", newPassword(t)); err != nil {
		t.Fatal(err)
	}
	uid := uidOf(t, b, name)
	n := 200
	if testing.Short() {
		n = 20
	}
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = linuxtest.StartAs(t, uid, "sleep", "600")
	}
	start := time.Now()
	if err := b.EndSessions(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("EndSessions with %d processes took %v", n, time.Since(start))
	linuxtest.WantKilled(t, "EndSessions", cmds...)
}

// TestEndSessionsTimeout: a process still running when EndTimeout has
// passed is reported with ErrStillRunning. The timeout here is so short
// that nothing is signalled at all.
func TestEndSessionsTimeout(t *testing.T) {
	sb, _, _ := newSandbox(t)
	ctx := t.Context()
	b, err := linux.New(linux.Config{Runner: sb, EndTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	const name = "msp-slow"
	if err := b.Create(ctx, name, "", newPassword(t)); err != nil {
		t.Fatal(err)
	}
	c := linuxtest.StartAs(t, uidOf(t, b, name), "sleep", "600")
	if err := b.EndSessions(ctx, name); !errors.Is(err, linux.ErrStillRunning) {
		t.Fatalf("EndSessions = %v, want ErrStillRunning", err)
	}
	wantRunning(t, c)
}

// leaderExits is a C program whose main thread exits while another thread
// runs on: /proc shows the process as a zombie ("Z") though it still runs.
const leaderExits = `#include <pthread.h>
#include <unistd.h>
static void *run(void *arg) { for (;;) pause(); return arg; }
int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_exit(0); }
`

// TestEndSessionsLeaderZombie: a process whose main thread has exited
// looks like a zombie in /proc but still runs its other threads;
// EndSessions kills it too. Needs a C compiler (skipped without one).
func TestEndSessionsLeaderZombie(t *testing.T) {
	_, b, _ := newSandbox(t)
	ctx := t.Context()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lz.c"), []byte(leaderExits), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "lz")
	if out, err := exec.Command(cc, "-o", bin, filepath.Join(dir, "lz.c"), "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v: %s", err, out)
	}
	const name = "msp-zombie"
	if err := b.Create(ctx, name, "", newPassword(t)); err != nil {
		t.Fatal(err)
	}
	c := linuxtest.StartAs(t, uidOf(t, b, name), bin)
	status := "/proc/" + strconv.Itoa(c.Process.Pid) + "/status"
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := os.ReadFile(status)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(s), "State:\tZ") && strings.Contains(string(s), "Threads:\t2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader did not exit:\n%s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.EndSessions(ctx, name); err != nil {
		t.Fatal(err)
	}
	linuxtest.WantKilled(t, "EndSessions", c)
}

// TestSandboxUIDRange: a sandbox numbers its accounts from a range of its
// own, picked by Config.Rand, above the host's users; so EndSessions in
// one sandbox (or test) never hits the processes of another's accounts.
func TestSandboxUIDRange(t *testing.T) {
	needRoot(t)
	t.Parallel()
	ctx := t.Context()
	for _, c := range []struct {
		rand byte
		want int
	}{{0, sandbox.MinUID}, {1, -1}} {
		sb, err := sandbox.Open(ctx, sandbox.Config{Dir: t.TempDir(), Rand: bytes.NewReader(bytes.Repeat([]byte{c.rand}, 64))})
		if err != nil {
			t.Fatal(err)
		}
		b, err := linux.New(linux.Config{Runner: sb})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Create(ctx, "msp-range", "", newPassword(t)); err != nil {
			t.Fatal(err)
		}
		uid := uidOf(t, b, "msp-range")
		if uid < sandbox.MinUID || uid >= sandbox.MaxUID || (c.want >= 0 && uid != c.want) {
			t.Fatalf("rand %d: uid %d, want %d in [%d, %d)", c.rand, uid, c.want, sandbox.MinUID, sandbox.MaxUID)
		}
		if c.want < 0 && uid == sandbox.MinUID {
			t.Fatalf("rand %d: uid %d, the same as another sandbox's", c.rand, uid)
		}
		// The admin group stays a system group.
		out, err := sb.Run(ctx, nil, "getent", "group", "sudo")
		if err != nil {
			t.Fatal(err)
		}
		if gid, _ := strconv.Atoi(strings.Split(string(out), ":")[2]); gid >= 1000 {
			t.Fatalf("sudo group gid %d", gid)
		}
	}
}
