//go:build linux

package pam_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/channel"
)

// askpassEnv makes the test binary act as ssh's SSH_ASKPASS program (see
// TestMain): it sends its prompt to the test over a Unix socket and
// prints the test's answer.
const askpassEnv = "JITKEY_PAM_TEST_ASKPASS"

// askpass is the SSH_ASKPASS program: prompt NUL, then one answer line.
func askpass(sock, prompt string) int {
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "askpass:", err)
		return 1
	}
	defer c.Close()
	if _, err := c.Write(append([]byte(prompt), 0)); err != nil {
		return 1
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 1
	}
	fmt.Print(answer)
	return 0
}

// prompts serves askpass connections: each prompt is sent on the channel
// with a function that answers it.
type prompt struct {
	text   string
	answer func(string)
}

func askpassServer(t *testing.T) (string, <-chan prompt) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "askpass.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan prompt)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			text, err := bufio.NewReader(c).ReadString(0)
			if err != nil {
				c.Close()
				continue
			}
			answered := make(chan struct{})
			select {
			case ch <- prompt{text: strings.TrimSuffix(text, "\x00"), answer: func(a string) {
				fmt.Fprintln(c, a)
				c.Close()
				close(answered)
			}}:
				<-answered
			case <-t.Context().Done():
				c.Close()
				return
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return sock, ch
}

const sshStack = `auth     [success=done ignore=ignore default=die] MODULE socket=SOCKET timeout=60
auth     required pam_deny.so
account  required MODULE socket=SOCKET
account  required pam_unix.so
session  required MODULE socket=SOCKET
session  required pam_unix.so
`

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sshd starts OpenSSH's sshd in the sandbox (so it sees the agent's
// accounts and the sandbox's /etc/pam.d/sshd) on a loopback port, with
// keyboard-interactive through PAM as the only method. /run is a private
// tmpfs in its namespace (privilege separation directory), so nothing
// outside the test's directories is written.
//
// extra sshd_config lines come first, so they win (sshd keeps the first
// value of each keyword).
func (w *world) sshd(t *testing.T, extra string) int {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "host_ed25519")
	if out, err := w.sb.Command(t.Context(), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	conf := extra + fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile %s
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication no
AuthenticationMethods keyboard-interactive
PermitRootLogin no
PrintMotd no
LogLevel VERBOSE
`, port, key, filepath.Join(dir, "sshd.pid"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	w.service(t, "sshd", sshStack)
	d := start(t, w.sb.Command(t.Context(), "/bin/sh", "-c",
		`mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"`, "sh", cfg))
	d.expect(t, fmt.Sprintf("Server listening on 127.0.0.1 port %d", port))
	return port
}

// ssh runs the OpenSSH client as root in a namespace of its own where
// /root is a private tmpfs (the client creates ~/.ssh), answering prompts
// through SSH_ASKPASS.
func (w *world) ssh(t *testing.T, port int, user, askSock string, command string, opts ...string) *proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// opts come first: ssh keeps the first value of each option.
	args := append([]string{"-c", `mount -t tmpfs -o mode=700 tmpfs /root && exec "$@"`, "sh", "ssh"}, opts...)
	args = append(args, "-F", "/dev/null", "-p", fmt.Sprint(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PreferredAuthentications=keyboard-interactive", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
		"-o", "UpdateHostKeys=no", "-o", "LogLevel=ERROR", "-n", user+"@127.0.0.1", command)
	cmd := w.sb.Command(t.Context(), "/bin/sh", args...)
	cmd.Env = append(os.Environ(), "SSH_ASKPASS="+self, "SSH_ASKPASS_REQUIRE=force", askpassEnv+"="+askSock)
	return start(t, cmd)
}

var payloadRE = regexp.MustCompile(qrPayload)

// firstLogin runs a whole pamtester login of user so that its account
// exists (sshd looks accounts up when the connection starts) and is
// disabled again.
func (w *world) firstLogin(t *testing.T, user string, p *agenttest.Phone, mux *channel.Mux) {
	t.Helper()
	w.service(t, "jitkey-test", stack)
	_, res, err := w.login(t, "jitkey-test", user, p, mux, agenttest.Scan{}, "authenticate", "acct_mgmt", "open_session", "close_session")
	if !res.OK || err != nil {
		t.Fatalf("first login of %s: %s %v", user, result(res), err)
	}
	if w.enabled(t, user) {
		t.Fatalf("%s enabled after its first login ended", user)
	}
}

// TestSSH: a real sshd with keyboard-interactive PAM: the client sees the
// QR code and the prompt before anything is approved (in one prompt:
// sshd shows PAM text only with a prompt); after the phone's approval it
// logs in as msp-nik and runs a command; when the connection closes, the
// account is disabled.
func TestSSH(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	w.firstLogin(t, "msp-nik", p, mux)
	port := w.sshd(t, "")
	askSock, prompts := askpassServer(t)
	c := w.ssh(t, port, "msp-nik", askSock, "id -un; echo jitkey-ssh-ok")

	var pr prompt
	select {
	case pr = <-prompts:
	case <-c.done:
		t.Fatalf("ssh ended before prompting: %v", c.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no prompt from ssh")
	}
	m := payloadRE.FindStringSubmatch(pr.text)
	if m == nil || !strings.Contains(pr.text, "Press Enter after approving on your phone") || !strings.Contains(pr.text, "▀") {
		pr.answer("")
		t.Fatalf("prompt without the QR code:\n%s", pr.text)
	}
	t.Logf("ssh prompt before approval:\n%s", pr.text)
	if w.enabled(t, "msp-nik") {
		t.Fatal("msp-nik enabled before the approval")
	}
	if res := scan(t, p, mux, m[1], agenttest.Scan{}); !res.OK {
		pr.answer("")
		t.Fatalf("phone: %s", result(res))
	}
	pr.answer("")
	if err := c.wait(t); err != nil {
		t.Fatalf("ssh: %v\n%s", err, c.output())
	}
	if out := c.output(); !strings.Contains(out, "msp-nik\njitkey-ssh-ok\n") {
		t.Fatalf("ssh output:\n%s", out)
	}
	t.Logf("ssh output:\n%s", c.output())
	// sshd closes the PAM session after the client has gone.
	deadline := time.Now().Add(30 * time.Second)
	for w.enabled(t, "msp-nik") {
		if time.Now().After(deadline) {
			t.Fatal("msp-nik still enabled after the ssh connection closed")
		}
		time.Sleep(100 * time.Millisecond) // polling the account's state
	}
}

// TestBreakGlassSSH: with the agent stopped, root still logs in with its
// SSH key through the same sshd and PAM stack (pam_jitkey ignores users
// it does not manage without contacting the agent), while msp-nik is
// refused (failmode=closed).
func TestBreakGlassSSH(t *testing.T) {
	w := newWorld(t)
	p, mux := w.phone(t, "nik")
	w.firstLogin(t, "msp-nik", p, mux)
	w.stopAgent()

	dir := t.TempDir()
	key := filepath.Join(dir, "root_ed25519")
	if out, err := w.sb.Command(t.Context(), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	port := w.sshd(t, fmt.Sprintf("StrictModes no\nPermitRootLogin prohibit-password\nAuthorizedKeysFile %s.pub\nPubkeyAuthentication yes\nAuthenticationMethods publickey keyboard-interactive\n", key))
	askSock, prompts := askpassServer(t)
	root := w.ssh(t, port, "root", askSock, "id -un", "-i", key, "-o", "PreferredAuthentications=publickey", "-o", "PubkeyAuthentication=yes")
	if err := root.wait(t); err != nil || !strings.Contains(root.output(), "root\n") {
		t.Fatalf("break-glass root login: %v\n%s", err, root.output())
	}

	nik := w.ssh(t, port, "msp-nik", askSock, "id -un")
	select {
	case pr := <-prompts:
		pr.answer("")
		t.Fatalf("msp-nik prompted with the agent down:\n%s", pr.text)
	case <-nik.done:
	case <-time.After(30 * time.Second):
		t.Fatal("ssh as msp-nik did not end")
	}
	if nik.err == nil {
		t.Fatal("msp-nik logged in with the agent down")
	}
}
