//go:build linux

package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/jitkey/jitkey/agent/accounts/linux/sandbox"
	"github.com/jitkey/jitkey/agent/ipcserver"
)

// pamStack is the PAM service of a PAMLogin, in the agent's sandbox:
// pam_jitkey.so decides and hands the account's password on (authtok),
// pam_unix checks it against the sandbox's /etc/shadow and checks lock
// and expiry; the session is pam_jitkey's (close ends the JIT session)
// and then HOLD, which stands for the user's shell: it blocks in
// open_session until Logout.
const pamStack = `# jitkey testbed login (written by testbed/harness)
auth     requisite pam_jitkey_path socket=SOCKET timeout=120 authtok
auth     required  pam_unix.so use_first_pass nodelay
account  required  pam_jitkey_path socket=SOCKET
account  required  pam_unix.so
session  required  pam_jitkey_path socket=SOCKET
session  required  pam_exec.so stdout HOLD
`

// holdScript runs from pam_exec in open_session and close_session; in
// open_session it says so and waits for a line on the FIFO ($1).
const holdScript = `#!/bin/sh
[ "$PAM_TYPE" = open_session ] || exit 0
echo "testbed: session open as $PAM_USER (held until logout)"
read -r line < "$1"
`

// PAMLogin is a login through the real pam_jitkey.so: pamtester runs
// authenticate, acct_mgmt, open_session and close_session of a PAM
// service in the agent's sandbox (so pam_unix reads the sandbox's
// accounts, never the host's), as a console login or sshd would. The
// session stays open from open_session until Logout.
type PAMLogin struct {
	*Proc
	User string
	fifo string
}

var (
	pamPayload = regexp.MustCompile(`Code: (JK:[0-9A-Z $%*+./:-]+)$`)
	pamOffline = regexp.MustCompile(`^jitkey: scan this code .*\(this computer is offline\)`)
	pamSession = regexp.MustCompile(`^testbed: session open as (\S+)`)
	pamClosed  = regexp.MustCompile(`session has successfully been closed`)
	// pamFailed finds the module's messages and pamtester's failures; a
	// message may follow a prompt on the same line (prompts end in no
	// newline).
	pamFailed   = regexp.MustCompile(`(jitkey: .*|pamtester: .*(failure|error|Error).*)$`)
	pamAuthDone = regexp.MustCompile(`successfully authenticated`)
	pamAcctDone = regexp.MustCompile(`account management done`)
)

// StartPAMLogin starts a PAM login as user (an account name such as
// msp-nik) at agent a's computer. The module is ModuleFile in the Bed's
// binaries directory.
func (a *Agent) StartPAMLogin(ctx context.Context, user string) (*PAMLogin, error) {
	if strings.HasPrefix(user, "-") {
		return nil, fmt.Errorf("harness: pam login: bad user %q", user)
	}
	module := a.bed.path(ModuleFile)
	if !filepath.IsAbs(module) {
		return nil, fmt.Errorf("harness: pam login: no %s in %s", ModuleFile, a.bed.Bin)
	}
	sb, err := sandbox.Open(ctx, sandbox.Config{Dir: a.Sandbox})
	if err != nil {
		return nil, fmt.Errorf("harness: pam login: %w", err)
	}
	a.surfaces++
	dir := a.bed.StateDir(fmt.Sprintf("agent-%s/pam%d", a.Name, a.surfaces))
	l := &PAMLogin{User: user, fifo: filepath.Join(dir, "logout")}
	if err := syscall.Mkfifo(l.fifo, 0o600); err != nil {
		return nil, fmt.Errorf("harness: pam login: %w", err)
	}
	hold := filepath.Join(dir, "hold.sh")
	if err := os.WriteFile(hold, []byte(holdScript), 0o700); err != nil {
		return nil, fmt.Errorf("harness: pam login: %w", err)
	}
	service := fmt.Sprintf("jitkey-testbed-%d", a.surfaces)
	text := strings.NewReplacer("pam_jitkey_path", module, "SOCKET", a.IPC, "HOLD", hold+" "+l.fifo).Replace(pamStack)
	if err := os.WriteFile(sb.Path("/etc/pam.d/"+service), []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("harness: pam login: %w", err)
	}
	// pamtester prints the conversation to a fully buffered stdout:
	// stdbuf makes it line buffered, so the QR shows before the prompt
	// is answered.
	cmd := sb.Command(ctx, "stdbuf", "-oL", "pamtester", "-v", service, user,
		"authenticate", "acct_mgmt", "open_session", "close_session")
	l.Proc = a.bed.Proc(fmt.Sprintf("pam-%s#%d", a.Name, a.surfaces), cmd.Args[0], cmd.Args[1:]...)
	l.Proc.Unshare = cmd.SysProcAttr.Unshareflags
	l.Proc.Interactive = true
	return l, l.Start()
}

// WaitQR waits until the module shows its QR code and returns the
// payload printed under it (what the phone's camera reads).
func (l *PAMLogin) WaitQR(ctx context.Context) (string, error) {
	m, err := l.WaitFor(ctx, 0, pamPayload)
	if err != nil {
		return "", l.failed(err)
	}
	return m[1], nil
}

// Enter presses Enter at the prompt ("Press Enter after approving on
// your phone").
func (l *PAMLogin) Enter() error { return l.Send("\n") }

// EnterCode waits until the module says the computer is offline, then
// types the technician's username and offline code at its prompts.
func (l *PAMLogin) EnterCode(ctx context.Context, username, code string) error {
	if _, err := l.WaitFor(ctx, 0, pamOffline); err != nil {
		return l.failed(err)
	}
	return l.Send(username + "\n" + code + "\n")
}

// WaitSession waits until PAM authenticated the user (pam_unix checked
// the account's password), passed account management and opened the
// session; it returns the account name the session is for.
func (l *PAMLogin) WaitSession(ctx context.Context) (string, error) {
	for _, re := range []*regexp.Regexp{pamAuthDone, pamAcctDone} {
		if _, err := l.WaitFor(ctx, 0, re); err != nil {
			return "", l.failed(err)
		}
	}
	m, err := l.WaitFor(ctx, 0, pamSession)
	if err != nil {
		return "", l.failed(err)
	}
	return m[1], nil
}

// Logout ends the held session: PAM closes it (pam_jitkey tells the agent,
// which disables the account) and pamtester exits with success.
func (l *PAMLogin) Logout(ctx context.Context) error {
	// O_RDWR does not wait for the reader; the line stays in the FIFO
	// until the hold script reads it, so the descriptor stays open until
	// pamtester has ended.
	f, err := os.OpenFile(l.fifo, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("harness: pam logout: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString("logout\n"); err != nil {
		return fmt.Errorf("harness: pam logout: %w", err)
	}
	if _, err := l.WaitFor(ctx, 0, pamClosed); err != nil {
		return l.failed(err)
	}
	return l.Wait(ctx)
}

// Failure waits for pamtester to end and returns the module's and
// pamtester's messages; an error if it succeeded.
func (l *PAMLogin) Failure(ctx context.Context) (string, error) {
	if err := l.Wait(ctx); err == nil {
		return "", errors.New("harness: pam login succeeded")
	}
	return l.messages(), nil
}

// failed adds what the module and pamtester said to err.
func (l *PAMLogin) failed(err error) error {
	if msgs := l.messages(); msgs != "" {
		return fmt.Errorf("%w (%s)", err, msgs)
	}
	return err
}

// messages returns the module's messages other than its QR text, and
// pamtester's failures.
func (l *PAMLogin) messages() string {
	var msgs []string
	for _, line := range l.Lines() {
		if m := pamFailed.FindString(line); m != "" && !strings.HasPrefix(m, "jitkey: scan this code") {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

// WaitOffline waits until the agent tells login surfaces that it is off
// the relay and takes offline codes.
func (a *Agent) WaitOffline(ctx context.Context) error {
	c, err := ipcserver.Dial(ctx, a.IPC)
	if err != nil {
		return fmt.Errorf("harness: wait offline: %w", err)
	}
	defer c.Close()
	if err := c.Begin(ctx, "logon", 0); err != nil {
		return fmt.Errorf("harness: wait offline: %w", err)
	}
	for c.Status() != (ipcserver.Status{Online: false, OTP: true}) {
		if _, err := c.Next(ctx); err != nil {
			return fmt.Errorf("harness: wait offline: %w", err)
		}
	}
	return nil
}

// ScanPayload has phone p scan a login QR's payload (as PAMLogin.WaitQR
// returns it) and approve (or deny) the request.
func (w *World) ScanPayload(ctx context.Context, p *Phone, payload string, approve bool, extra ...string) Scan {
	dec := "--deny"
	if approve {
		dec = "--approve"
	}
	args := append([]string{"--json", "scan", dec}, extra...)
	return w.scan(ctx, p, append(args, "--", payload))
}

// PAMLogin runs a complete QR login as user on agent a's computer through
// the real PAM module: the module shows its QR, the phone scans and
// approves, Enter is pressed, and PAM authenticates, checks the account
// and opens the session. It returns the login (holding the session; call
// Logout).
func (w *World) PAMLogin(ctx context.Context, a *Agent, p *Phone, user string) (*PAMLogin, error) {
	l, err := a.StartPAMLogin(ctx, user)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	payload, err := l.WaitQR(ctx)
	if err != nil {
		return l, err
	}
	sc := w.ScanPayload(ctx, p, payload, true)
	if !sc.OK() || sc.Status != "approved" {
		_ = l.Stop(5 * time.Second)
		return l, fmt.Errorf("phone scan: %s %s %s", sc.Status, sc.Message, sc.Result)
	}
	if sc.Account != user {
		_ = l.Stop(5 * time.Second)
		return l, fmt.Errorf("the phone approved %s, not %s", sc.Account, user)
	}
	if err := l.Enter(); err != nil {
		return l, err
	}
	acct, err := l.WaitSession(ctx)
	if err != nil {
		return l, err
	}
	if acct != user {
		return l, fmt.Errorf("harness: pam session for %s, not %s", acct, user)
	}
	return l, nil
}

// SharedAccount returns the shared account of a shared-mode tenant, as
// the console shows it (the name technicians type at a login prompt).
func (w *World) SharedAccount(ctx context.Context, tenant string) (string, error) {
	out, err := w.Console.Must(ctx, "tenant", "show", tenant)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "shared account:"); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("harness: tenant show %s names no shared account: %q", tenant, out)
}
