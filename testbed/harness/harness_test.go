//go:build linux

package harness

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newBed(t *testing.T) *Bed {
	t.Helper()
	b, err := New(Config{Dir: t.TempDir(), Bin: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestProcWaitKillRestart(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := b.Proc("sh", "/bin/sh", "-c", `echo "pin=abcd"; echo "listening on 127.0.0.1:4242" >&2; exec sleep 60`)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	m, err := p.WaitFor(ctx, 0, regexp.MustCompile(`listening on (\S+)`))
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "127.0.0.1:4242" {
		t.Errorf("address = %q", m[1])
	}
	if m, err := p.WaitFor(ctx, 0, regexp.MustCompile(`pin=([0-9a-f]+)`)); err != nil || m[1] != "abcd" {
		t.Errorf("pin = %v, %v", m, err)
	}
	if err := p.Kill(); err != nil && !strings.Contains(err.Error(), "killed") {
		t.Fatalf("kill: %v", err)
	}
	if p.Running() {
		t.Fatal("still running after kill")
	}
	mark := p.Mark()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitFor(ctx, mark, regexp.MustCompile(`pin=`)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := p.Stop(5 * time.Second); err == nil {
		t.Error("stop of sleep by SIGTERM reported clean exit")
	}
	if !strings.Contains(b.Tail(100), "sh!") {
		t.Errorf("stderr not in log:\n%s", b.Tail(100))
	}
}

func TestWaitForExited(t *testing.T) {
	b := newBed(t)
	p := b.Proc("false", "/bin/sh", "-c", "echo nope; exit 3")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	_, err := p.WaitFor(context.Background(), 0, regexp.MustCompile(`ready`))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want exit status 3", err)
	}
}

func TestRunJSON(t *testing.T) {
	b := newBed(t)
	r := b.Run(context.Background(), "echo", "/bin/sh", "-c", `echo hello; echo '{"a":1}'; echo oops >&2; exit 4`)
	if r.Code != 4 || r.OK() || !strings.Contains(r.Stderr, "oops") {
		t.Fatalf("result %v", r)
	}
	var v struct{ A int }
	if err := r.JSON(&v); err != nil || v.A != 1 {
		t.Fatalf("json %+v, %v", v, err)
	}
}

// hostProbe listens on n's host end and returns ping, which connects
// there from inside the namespace, giving up after secs (bash and
// ip-netns start slowly on a loaded machine: a success is waited for
// generously, a failure after a cut is expected within 2 s), and
// reachable, which waits up to about 30 s for the link (a new or restored
// veth may take a moment to carry traffic).
func hostProbe(t *testing.T, n *Netns) (ping func(secs int) error, reachable func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", n.HostAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	ping = func(secs int) error {
		argv := n.Wrap("timeout", strconv.Itoa(secs), "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", n.HostAddr, port))
		return exec.Command(argv[0], argv[1:]...).Run()
	}
	reachable = func() error {
		var err error
		for range 6 {
			if err = ping(5); err == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return err
	}
	return ping, reachable
}

// liveNetns makes a namespace (NewNetns name, idx) that is removed when
// the test ends, checks that its host side answers from inside, and
// returns it with hostProbe's probes.
func liveNetns(t *testing.T, name string, idx int) (n *Netns, ping func(secs int) error, reachable func() error) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) missing: run make deps")
	}
	n, err := NewNetns(context.Background(), name, idx)
	t.Cleanup(func() { n.Close() })
	if err != nil {
		t.Fatal(err)
	}
	ping, reachable = hostProbe(t, n)
	if err := reachable(); err != nil {
		t.Fatalf("host side unreachable from namespace: %v", err)
	}
	return n, ping, reachable
}

func TestNetnsCut(t *testing.T) {
	ctx := context.Background()
	n, ping, reachable := liveNetns(t, "jk-harness-test", 250)
	if err := n.Cut(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ping(2); err == nil {
		t.Fatal("host side still reachable after cut")
	}
	if err := n.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	ok := reachable() == nil
	if !ok {
		t.Fatal("not reachable after restore")
	}
}

// TestNetnsConcurrentRuns: two testbed runs on one machine ask for the
// same namespace (the same name and index): each gets its own slot, and
// the second one's creation and removal leave the first one's link
// working (a run that removed another's namespace as leftovers once cut a
// live agent off for good).
func TestNetnsConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	a, _, reachable := liveNetns(t, "jk-harness-conc", 240)
	b, err := NewNetns(ctx, "jk-harness-conc", 240)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if b.Slot == a.Slot || b.Name == a.Name || b.HostDev == a.HostDev || b.HostAddr == a.HostAddr {
		b.Close()
		t.Fatalf("two live namespaces share a slot: %+v and %+v", a, b)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reachable(); err != nil {
		t.Fatalf("the first namespace lost its link to the second one's creation and removal: %v", err)
	}
}

func TestAccountsSandbox(t *testing.T) {
	ctx := context.Background()
	a, err := OpenAccounts(ctx, t.TempDir()+"/sb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sandbox().Run(ctx, nil, "useradd", "--", "jk-harness-probe"); err != nil {
		t.Fatal(err)
	}
	added, err := a.Added()
	if err != nil || len(added) != 1 || added[0] != "jk-harness-probe" {
		t.Fatalf("added = %v, %v", added, err)
	}
	on, err := a.Enabled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// useradd without a password leaves the account locked ('!').
	if len(on) != 0 {
		t.Errorf("enabled = %v, want none", on)
	}
	if out, _ := exec.Command("getent", "passwd", "jk-harness-probe").Output(); len(out) != 0 {
		t.Fatal("sandbox leaked the account to the host")
	}
}
