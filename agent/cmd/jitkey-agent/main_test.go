//go:build linux

package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// TestKill9 builds the real binary, makes it enable an account in a
// sandbox through a QR login, kills it with SIGKILL in the middle of the
// session, and restarts it: the account is disabled again, pamtester
// refuses the issued password, and the audit chain is whole with
// agent.recovered.
func TestKill9(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root (CI runs as root)")
	}
	ctx := t.Context()
	bin := filepath.Join(t.TempDir(), "jitkey-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = srv.ListenAndServe(rctx) }()
	t.Cleanup(func() { rcancel(); <-rdone })
	<-srv.Ready()
	relayAddr, pin := srv.Addr().String(), srv.Pin()

	msp := agenttest.NewMSP(t, "acme")
	pol := msp.Policy(1)
	a := agenttest.NewAgent(t, msp, &pol, store.Config{})
	if err := a.Store.Update(ctx, func(tx *store.Tx) error {
		e := a.Enrollment
		e.Relay, e.RelayPins = relayAddr, [][32]byte{pin}
		e.Console = protocol.PeerAddr{Relay: relayAddr, Mailbox: protocol.MailboxID{1}}.String()
		e.ConsoleNoise = a.Keys.NoisePublic()
		return tx.SetEnrollment(e)
	}); err != nil {
		t.Fatal(err)
	}
	a.Store.Close()
	sbDir := t.TempDir()
	sock := filepath.Join(t.TempDir(), "run", "agent.sock") // the agent creates run/ 0700

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--state", a.Dir, "--sandbox", sbDir, "--ipc", sock)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "ready ipc="+sock) {
			t.Fatalf("agent start: %q %v", line, err)
		}
		go io.Copy(io.Discard, out)
		return cmd
	}
	cmd := start()

	phone := msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	rl, err := daemon.QUICRelay(phone.Identity, relayAddr, [][32]byte{pin}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { defer close(pdone); _ = rl.Run(pctx) }()
	t.Cleanup(func() { pcancel(); <-pdone })
	mux := channel.New(channel.Config{Relay: rl, Static: phone.Noise})
	agenttest.Pump(t, mux, rl.Recv)

	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	// Each attempt is a new login request with its own code: a scan whose
	// handshake was lost (the agent's relay connection still coming up,
	// or a slow machine) may have spent its code.
	var c *ipcserver.Client
	var res protocol.LoginResult
	var loginErr error
	for {
		c, err = ipcserver.Dial(ctx, sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Begin(t.Context(), "logon", 0); err != nil {
			t.Fatal(err)
		}
		m, err := c.Next(wctx)
		for err == nil {
			if _, ok := m.(*ipcserver.Status); !ok {
				break
			}
			m, err = c.Next(wctx) // the agent's relay connection comes up
		}
		if err != nil {
			t.Fatal(err)
		}
		actx, acancel := context.WithTimeout(wctx, 10*time.Second)
		res, loginErr = phone.Login(actx, mux, m.(*ipcserver.QR).Text, agenttest.Scan{})
		acancel()
		if loginErr == nil || wctx.Err() != nil {
			break
		}
		t.Logf("scan: %v", loginErr)
		c.Close()
		time.Sleep(200 * time.Millisecond)
	}
	if loginErr != nil || !res.OK {
		t.Fatalf("login: %+v %v", res, loginErr)
	}
	var cred *ipcserver.Credential
	for cred == nil {
		m, err := c.Next(wctx)
		if err != nil {
			t.Fatal(err)
		}
		cred, _ = m.(*ipcserver.Credential)
	}
	pw := password.FromBytes(cred.Password)
	sb, err := sandbox.Open(ctx, sandbox.Config{Dir: sbDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Login(ctx, cred.Username, pw); err != nil {
		t.Fatalf("issued password refused during the session: %v", err)
	}

	// kill -9 in the middle of the session.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	be, _ := linux.New(linux.Config{Runner: sb})
	if info, err := be.Lookup(ctx, cred.Username); err != nil || !info.Enabled {
		t.Fatalf("before restart: %+v %v (the crash should have left it enabled)", info, err)
	}
	cmd = start()
	if info, err := be.Lookup(ctx, cred.Username); err != nil || info.Enabled {
		t.Fatalf("after restart: %+v %v", info, err)
	}
	if err := sb.Login(ctx, cred.Username, pw); err == nil {
		t.Fatal("issued password still works after recovery")
	}
	st, err := store.Open(ctx, filepath.Join(a.Dir, "agent.db"), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev := agenttest.Events(agenttest.Records(t, st, a.Keys.IdentityPublic()))
	want := []string{"login.approved", "account.created", "account.enabled", "agent.recovered", "account.disabled"}
	if !slices.Equal(ev, want) {
		t.Fatalf("audit %v, want %v", ev, want)
	}
	// Idle footprint of the running agent (BENCHMARKS.md).
	time.Sleep(3 * time.Second)
	rss, cpu := footprint(t, cmd.Process.Pid)
	t.Logf("idle agent: VmRSS %d kB, CPU %v since start", rss, cpu)
	if rss > 30*1024 {
		t.Errorf("idle RSS %d kB > 30 MB", rss)
	}
}

func footprint(t *testing.T, pid int) (rssKB int, cpu time.Duration) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKB, _ = strconv.Atoi(f[1])
		}
	}
	st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	stt, _ := strconv.Atoi(f[12])
	return rssKB, time.Duration(ut+stt) * 10 * time.Millisecond
}
