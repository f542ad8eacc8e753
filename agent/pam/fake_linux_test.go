//go:build linux

package pam_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/ipc"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

// listenEnv makes the test binary listen on a Unix socket and print
// "listening" (see TestMain), to be run as another user.
const listenEnv = "JITKEY_PAM_TEST_LISTEN"

func TestMain(m *testing.M) {
	if path := os.Getenv(listenEnv); path != "" {
		os.Exit(listen(path))
	}
	if sock := os.Getenv(askpassEnv); sock != "" && len(os.Args) == 2 {
		os.Exit(askpass(sock, os.Args[1]))
	}
	code := m.Run()
	if module.dir != "" {
		os.RemoveAll(module.dir)
	}
	os.Exit(code)
}

// listen accepts connections on path and closes each after its first read.
func listen(path string) int {
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := os.Chmod(path, 0o666); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		_, _ = c.Read(make([]byte, 100))
		c.Close()
	}
}

// fakeAgent serves one connection on a root-only socket with script:
// it reads the surface's first message and writes the given bodies.
func fakeAgent(t *testing.T, bodies ...[]byte) (sock string, got <-chan []byte) {
	t.Helper()
	sock = filepath.Join(t.TempDir(), "run", "agent.sock")
	ln, err := ipc.Listen(t.Context(), ipc.Config{Path: sock})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []byte, 4)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(done)
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		b, err := c.ReadMessage(ctx)
		if err != nil {
			return
		}
		ch <- b
		for _, body := range bodies {
			if err := c.WriteMessage(ctx, body); err != nil {
				return
			}
		}
		for {
			b, err := c.ReadMessage(ctx)
			if err != nil {
				return
			}
			ch <- b
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	return sock, ch
}

func msg(t *testing.T, typ ipcserver.MsgType, v any) []byte {
	t.Helper()
	b, err := protocol.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(typ)}, b...)
}

// pamWrapper runs pamtester under pam_wrapper with a private service
// directory: no sandbox, no root-only namespace, nothing of the host's
// PAM configuration touched.
func pamWrapper(t *testing.T, module, args, user string, ops ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	svc := "auth [success=done ignore=ignore default=die] " + module + " " + args + "\nauth required pam_permit.so\naccount required pam_permit.so\n"
	if err := os.WriteFile(filepath.Join(dir, "jitkey-fake"), []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	lib, err := filepath.Glob("/usr/lib/*/libpam_wrapper.so*")
	if err != nil || len(lib) == 0 {
		t.Fatal("libpam_wrapper not installed (make deps)")
	}
	cmd := exec.CommandContext(t.Context(), "stdbuf", append([]string{"-oL", "pamtester", "-v", "jitkey-fake", user}, ops...)...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib[0], "PAM_WRAPPER=1", "PAM_WRAPPER_SERVICE_DIR="+dir)
	return start(t, cmd)
}

// TestQRInThePromptTurn: the QR picture and its payload line come in
// the same conversation call as the prompt (sshd shows text only with a
// prompt), a payload with every base45 character intact.
func TestQRInThePromptTurn(t *testing.T) {
	module := buildModule(t)
	text := "JK:ABC $%*+-./:" + strings.Repeat("Z", 280)
	term, err := qrcode.Terminal(text)
	if err != nil {
		t.Fatal(err)
	}
	sock, _ := fakeAgent(t,
		msg(t, ipcserver.MsgStatus, &ipcserver.Status{Online: true}),
		msg(t, ipcserver.MsgQR, &ipcserver.QR{Text: text, Terminal: term, Expires: 1}),
	)
	s := pamWrapper(t, module, "socket="+sock+" timeout=1", "msp-nik", "authenticate")
	s.expect(t, "Press Enter")
	if !strings.Contains(s.output(), term+"Code: "+text+"\n") {
		t.Fatalf("QR picture and payload not shown before the prompt:\n%s", s.output())
	}
	s.send(t, "\n")
	if err := s.wait(t); err == nil {
		t.Fatal("authenticated without a credential")
	}
	if !strings.Contains(s.output(), "jitkey: not approved in time") {
		t.Fatalf("output:\n%s", s.output())
	}
}

// TestWaitingForSecondApprover (SPEC.md 5.7.7): after the technician's
// approval the agent says it waits for a second approver; the module
// shows that, names nobody, shows the QR code no more (not even one that
// arrives after), and waits for the login's end without asking again.
func TestWaitingForSecondApprover(t *testing.T) {
	module := buildModule(t)
	sock, _ := fakeAgent(t,
		msg(t, ipcserver.MsgStatus, &ipcserver.Status{Online: true}),
		msg(t, ipcserver.MsgQR, &ipcserver.QR{Text: "JK:FIRST", Terminal: "#\n", Expires: 1}),
		msg(t, ipcserver.MsgStatus, &ipcserver.Status{Online: true, SecondApproval: true}),
		msg(t, ipcserver.MsgQR, &ipcserver.QR{Text: "JK:LATE", Terminal: "#\n", Expires: 1}),
	)
	s := pamWrapper(t, module, "socket="+sock+" timeout=2", "msp-nik", "authenticate")
	s.expect(t, "Press Enter")
	s.send(t, "\n")
	s.expect(t, "jitkey: Approved. Waiting for a second approver...")
	if err := s.wait(t); err == nil {
		t.Fatal("authenticated without a credential")
	}
	out := s.output()
	if strings.Count(out, "Press Enter") != 1 || strings.Contains(out, "JK:LATE") || strings.Contains(out, "not approved yet") ||
		!strings.Contains(out, "jitkey: not approved in time") {
		t.Fatalf("output:\n%s", out)
	}
}

// TestAgentDown: with no agent, failmode=closed (the default) fails the
// login with PAM_AUTHINFO_UNAVAIL and says why; failmode=open returns
// PAM_IGNORE, so the rest of the stack decides (here pam_permit).
func TestAgentDown(t *testing.T) {
	module := buildModule(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	s := pamWrapper(t, module, "socket="+sock, "msp-nik", "authenticate")
	if err := s.wait(t); err == nil {
		t.Fatal("failmode=closed: authenticated without an agent")
	}
	if out := s.output(); !strings.Contains(out, "jitkey: the jitkey agent is not running; jitkey logins are unavailable") ||
		!strings.Contains(out, "Authentication service cannot retrieve authentication info") {
		t.Fatalf("failmode=closed:\n%s", out)
	}
	s = pamWrapper(t, module, "socket="+sock+" failmode=open", "msp-nik", "authenticate")
	if err := s.wait(t); err != nil {
		t.Fatalf("failmode=open: the stack did not go on: %v\n%s", err, s.output())
	}
}

// TestIgnoresOtherUsers: users jitkey does not manage get PAM_IGNORE
// without the agent being contacted, so root and local users log in as
// if jitkey were not installed.
func TestIgnoresOtherUsers(t *testing.T) {
	module := buildModule(t)
	sock, got := fakeAgent(t)
	for _, user := range []string{"root", "alice", "msp-", "msp-Nik", "msp-nik/../x", "xmsp-nik", "msp-" + strings.Repeat("a", 29)} {
		s := pamWrapper(t, module, "socket="+sock, user, "authenticate")
		if err := s.wait(t); err != nil {
			t.Fatalf("%s: %v\n%s", user, err, s.output())
		}
		if strings.Contains(s.output(), "jitkey:") {
			t.Fatalf("%s: jitkey spoke:\n%s", user, s.output())
		}
	}
	select {
	case b := <-got:
		t.Fatalf("the agent was contacted: %x", b)
	default:
	}
	// The longest managed name is contacted (and the fake agent's
	// silence then fails it).
	s := pamWrapper(t, module, "socket="+sock+" timeout=1", "msp-"+strings.Repeat("a", 28), "authenticate")
	_ = s.wait(t)
	if b := <-got; ipcserver.MsgType(b[0]) != ipcserver.MsgBegin {
		t.Fatalf("first message %x, want Begin", b)
	}
}

// TestAgentNotRoot: a socket served by a process that is not root is
// refused (SO_PEERCRED), whatever it would say.
func TestAgentNotRoot(t *testing.T) {
	needRoot(t)
	module := buildModule(t)
	dir, err := os.MkdirTemp("", "jitkey-pam-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s is not traversable by others; cannot listen as nobody", d)
		}
	}
	// nobody listens (this test binary, see TestMain); it would accept
	// and answer nothing.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "listener")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	listener := exec.CommandContext(t.Context(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin)
	listener.Env = []string{listenEnv + "=" + sock}
	lp := start(t, listener)
	lp.expect(t, "listening\n")
	s := pamWrapper(t, module, "socket="+sock, "msp-nik", "authenticate")
	if err := s.wait(t); err == nil {
		t.Fatal("authenticated against a non-root agent")
	}
	if !strings.Contains(s.output(), "jitkey: the jitkey agent is not running") {
		t.Fatalf("output:\n%s", s.output())
	}
}

// TestMalformedAgentMessage: a message the decoder refuses fails the
// login (closed) rather than being guessed at.
func TestMalformedAgentMessage(t *testing.T) {
	module := buildModule(t)
	for name, body := range map[string][]byte{
		"status with a text key": {7, 0xa2, 0x61, 'a', 0xf4, 0x02, 0xf4},
		"unknown type":           {9, 0xa0},
		"qr cut short":           {2, 0xa4, 0x01, 0x78, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			sock, _ := fakeAgent(t, body)
			s := pamWrapper(t, module, "socket="+sock, "msp-nik", "authenticate")
			if err := s.wait(t); err == nil {
				t.Fatal("authenticated")
			}
			if !strings.Contains(s.output(), "jitkey: the jitkey agent does not answer") {
				t.Fatalf("output:\n%s", s.output())
			}
		})
	}
}

// TestCredential: a credential for the right account succeeds
// with no End sent by authentication, and the session id lands in the
// PAM environment for the session hooks (sshd passes only that on).
func TestCredential(t *testing.T) {
	module := buildModule(t)
	sess := protocol.SessionID{0xab, 0xcd}
	sock, got := fakeAgent(t,
		msg(t, ipcserver.MsgStatus, &ipcserver.Status{Online: true}),
		msg(t, ipcserver.MsgQR, &ipcserver.QR{Text: "JK:X", Terminal: "#\n", Expires: 1}),
		msg(t, ipcserver.MsgCredential, &ipcserver.Credential{Username: "msp-nik", Password: []byte("secret-password-never-shown"), Session: sess, Deadline: 2}),
	)
	s := pamWrapper(t, module, "socket="+sock, "msp-nik", "authenticate")
	s.expect(t, "Press Enter")
	s.send(t, "\n")
	if err := s.wait(t); err != nil {
		t.Fatalf("%v\n%s", err, s.output())
	}
	if strings.Contains(s.output(), "secret-password") {
		t.Fatal("the password was shown")
	}
	if b := <-got; ipcserver.MsgType(b[0]) != ipcserver.MsgBegin {
		t.Fatalf("first message %x", b)
	}
	select {
	case b := <-got:
		t.Fatalf("unexpected message after the credential: %x", b)
	default:
	}
}
