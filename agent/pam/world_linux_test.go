//go:build linux

package pam_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/accounts/linux"
	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/enroll"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

var debugLog = flag.Bool("debuglog", false, "log the relay, the agent and the phone at Debug level to stderr")

func testLog(component string) *slog.Logger {
	if !*debugLog {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", component)
}

// needRoot fails the test when not root: CI runs as root, and the
// sandbox (mount namespaces), sshd and sudo need it.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CI runs as root): the sandbox uses mount namespaces")
	}
}

// module is pam_jitkey.so as buildModule built it for this test binary.
var module struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildModule compiles pam_jitkey.so with c/build.sh (gcc, the same
// flags as make build) once per test binary and returns its path; the
// directory is readable by every user (sudo's caller loads it) and
// removed by TestMain.
func buildModule(t *testing.T) string {
	t.Helper()
	module.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		if module.dir, module.err = os.MkdirTemp("", "jitkey-pam-module-"); module.err != nil {
			return
		}
		if module.err = os.Chmod(module.dir, 0o755); module.err != nil {
			return
		}
		module.path = filepath.Join(module.dir, "pam_jitkey.so")
		cmd := exec.Command(filepath.Join(filepath.Dir(file), "c", "build.sh"), module.path)
		if b, err := cmd.CombinedOutput(); err != nil {
			module.err = fmt.Errorf("%w\n%s", err, b)
		}
	})
	if module.err != nil {
		t.Fatalf("build pam_jitkey.so: %v", module.err)
	}
	return module.path
}

// world is a relay, a console, and an agent enrolled with them that
// manages real accounts (shadow-utils) in a sandbox; login surfaces run in
// the same sandbox.
type world struct {
	relayAddr string
	pin       [32]byte
	stopRelay func()
	msp       *agenttest.MSP
	console   *agenttest.Console
	sb        *sandbox.Sandbox
	backend   *linux.Backend
	state     string
	sock      string
	info      daemon.Info
	module    string
	stopAgent func()
}

func startRelay(t *testing.T, listen string) (string, [32]byte, func()) {
	t.Helper()
	srv, err := server.New(server.Config{Listen: listen, Rand: mrand.NewChaCha8([32]byte{1}), Logger: testLog("relay")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ListenAndServe(ctx) }()
	select {
	case <-srv.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("relay not ready")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(sctx)
			scancel()
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return srv.Addr().String(), srv.Pin(), stop
}

func relayClient(t *testing.T, id ed25519.PrivateKey, home string, pin [32]byte) daemon.Relay {
	rl, err := daemon.QUICRelay(id, home, [][32]byte{pin}, testLog("relay-client"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return rl
}

// hostUnchanged fails the test at its end if the host's accounts or PAM
// configuration changed, or if a surface left a directory behind on the
// host (sshd's /run/sshd, ssh's ~/.ssh, sudo's /run/sudo).
func hostUnchanged(t *testing.T) {
	t.Helper()
	files := []string{"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/pam.d/sshd", "/etc/pam.d/sudo"}
	dirs := []string{"/run/sshd", "/root/.ssh", "/run/sudo"}
	snapshot := func() string {
		var b strings.Builder
		for _, f := range files {
			data, err := os.ReadFile(f)
			fmt.Fprintf(&b, "%s %x %v\n", f, data, err != nil)
		}
		for _, d := range dirs {
			_, err := os.Stat(d)
			fmt.Fprintf(&b, "%s exists=%v\n", d, err == nil)
		}
		return b.String()
	}
	before := snapshot()
	t.Cleanup(func() {
		if snapshot() != before {
			t.Error("the test changed the host's accounts, PAM configuration or directories")
		}
	})
}

func newWorld(t *testing.T) *world {
	needRoot(t)
	hostUnchanged(t)
	w := &world{msp: agenttest.NewMSP(t, "acme"), module: buildModule(t)}
	w.relayAddr, w.pin, w.stopRelay = startRelay(t, "127.0.0.1:0")
	id, nk := agenttest.NewConsoleKeys(t)
	crl := relayClient(t, id, w.relayAddr, w.pin)
	w.console = agenttest.NewConsole(t, w.msp, id, nk, crl, w.msp.Policy(1))
	// The sandbox and the socket live under one root-owned directory
	// that others may traverse (sudo's target user needs the module).
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	w.sb, err = sandbox.Open(t.Context(), sandbox.Config{Dir: filepath.Join(base, "sandbox"), Logger: testLog("sandbox")})
	if err != nil {
		t.Fatal(err)
	}
	w.backend, err = linux.New(linux.Config{Runner: w.sb, Logger: testLog("backend")})
	if err != nil {
		t.Fatal(err)
	}
	w.state = filepath.Join(base, "state")
	w.sock = filepath.Join(base, "run", "agent.sock")
	_, err = enroll.Enroll(t.Context(), enroll.Config{
		StateDir: w.state, Token: w.console.Token(t, [][32]byte{w.pin}, time.Now().Add(time.Hour), 1), Name: "LNX-PAM", OS: "linux",
		Dial: func(id ed25519.PrivateKey, home string, pins [][32]byte) (enroll.Relay, error) {
			return daemon.QUICRelay(id, home, pins, slog.New(slog.DiscardHandler))
		},
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	ready := make(chan daemon.Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{
			StateDir: w.state, Backend: w.backend, MaxNameLen: accounts.MaxNameLinux, IPCPath: w.sock, Relay: daemon.QUICRelay,
			Rotation: time.Minute, ShipInterval: 200 * time.Millisecond, Ready: func(i daemon.Info) { ready <- i }, Logger: testLog("agent"),
		})
	}()
	select {
	case w.info = <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
	var once sync.Once
	w.stopAgent = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		})
	}
	t.Cleanup(w.stopAgent)
	return w
}

// phone is a technician's phone on the relay.
func (w *world) phone(t *testing.T, username string) (*agenttest.Phone, *channel.Mux) {
	p := w.msp.NewPhone(t, username, protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	rl := relayClient(t, p.Identity, w.relayAddr, w.pin)
	mux := channel.New(channel.Config{Relay: rl, Static: p.Noise, Logger: testLog("phone")})
	agenttest.Pump(t, mux, rl.Recv)
	return p, mux
}

// scan has the phone scan the payload and decide, retrying while the
// phone's relay connection comes up (the relay refuses at once then).
// Each attempt may take long: under load a handshake that a short
// attempt gave up on may already have spent the code at the agent, and
// the retry would then be refused.
func scan(t *testing.T, p *agenttest.Phone, mux *channel.Mux, payload string, s agenttest.Scan) protocol.LoginResult {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		res, err := p.Login(ctx, mux, payload, s)
		cancel()
		if err == nil {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("phone: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the phone's relay link comes up
	}
}

// service installs a PAM service in the sandbox's /etc/pam.d. Lines may
// use MODULE for the module's path and SOCKET for the agent's socket.
func (w *world) service(t *testing.T, name, text string) {
	t.Helper()
	text = strings.NewReplacer("MODULE", w.module, "SOCKET", w.sock).Replace(text)
	if err := os.WriteFile(w.sb.Path("/etc/pam.d/"+name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// enabled reports whether the sandbox account is enabled.
func (w *world) enabled(t *testing.T, name string) bool {
	t.Helper()
	i, err := w.backend.Lookup(t.Context(), name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return i.Enabled
}

// proc is a running login surface whose merged output the test reads as
// it comes (an expect-like driver).
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	more  chan struct{} // closed and replaced on every read
	done  chan struct{}
	err   error
}

// start starts cmd with its stdin, stdout and stderr on pipes.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = wr, wr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
			if err != nil {
				r.Close()
				return
			}
		}
	}()
	go func() {
		<-readDone
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Args[len(cmd.Args)-1]), p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits until the output matches re and returns the submatches.
func (p *proc) expect(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		p.mu.Lock()
		m := rx.FindStringSubmatch(p.out.String())
		more := p.more
		p.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-more:
		case <-p.done:
			if m := rx.FindStringSubmatch(p.output()); m != nil {
				return m
			}
			t.Fatalf("exited (%v) before %q", p.err, re)
		case <-timeout:
			t.Fatalf("timed out waiting for %q", re)
		}
	}
}

func (p *proc) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("write to the surface: %v", err)
	}
}

// wait waits for the process to end and returns its error.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(60 * time.Second):
		t.Fatal("surface did not exit")
		return nil
	}
}

// qrPayload is the line the module prints under the QR picture.
const qrPayload = `Code: (JK:[0-9A-Z $%*+./:-]+)\n`

func (w *world) pamtester(t *testing.T, service, user string, ops ...string) *proc {
	// pamtester's conversation prints text to a fully buffered stdout:
	// stdbuf makes it line buffered, so the QR reaches the test before
	// the prompt is answered.
	args := append([]string{"-oL", "pamtester", "-v", service, user}, ops...)
	return start(t, w.sb.Command(t.Context(), "stdbuf", args...))
}

// push has the console push pol to the agent, retrying while the agent's
// relay connection comes up.
func (w *world) push(t *testing.T, pol protocol.Policy) {
	t.Helper()
	signed := w.console.SetPolicy(t, pol)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		ack, err := w.console.PushPolicy(ctx, w.info.Addr, signed)
		cancel()
		if err == nil && len(ack.Versions) == 1 && ack.Versions[0].Version == pol.Version {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("push policy %d: %+v %v", pol.Version, ack, err)
		}
		time.Sleep(200 * time.Millisecond) // the agent's relay link comes up
	}
}

// result describes a login result without its offline secret.
func result(r protocol.LoginResult) string {
	return fmt.Sprintf("ok=%v code=%d account=%s", r.OK, r.Code, r.Account)
}
