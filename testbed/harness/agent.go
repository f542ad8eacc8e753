//go:build linux

package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Agent is one computer: a jitkey-agent with its state directory, account
// sandbox and login-surface socket.
type Agent struct {
	bed     *Bed
	Name    string // device name shown on phones
	State   string
	Sandbox string
	IPC     string
	// Netns, if set, runs the agent inside this network namespace.
	Netns *Netns
	Proc  *Proc
	// Addr and DeviceID are read from the agent's ready line.
	Addr, DeviceID string
	// EnrollArgs and RunArgs, if set before Enroll and the first Start,
	// are added to jitkey-agent enroll and run (e.g. --domain-joined,
	// --dc; --role dc with its directory flags, --domain).
	EnrollArgs, RunArgs []string

	surfaces int
}

// NewAgent prepares directories for an agent named name (its device name)
// and opens its account sandbox.
func (b *Bed) NewAgent(ctx context.Context, name string) (*Agent, *Accounts, error) {
	dir := b.StateDir("agent-" + name)
	a := &Agent{bed: b, Name: name, State: filepath.Join(dir, "state"), Sandbox: filepath.Join(dir, "sandbox"),
		IPC: filepath.Join(dir, "agent.sock")}
	acc, err := OpenAccounts(ctx, a.Sandbox)
	if err != nil {
		return nil, nil, err
	}
	return a, acc, nil
}

func (a *Agent) argv(args ...string) []string {
	argv := append([]string{a.bed.path(AgentBin)}, args...)
	if a.Netns != nil {
		argv = a.Netns.Wrap(argv...)
	}
	return argv
}

// Enroll runs jitkey-agent enroll --token-file -, the token on stdin (an
// argument would be readable by every local user).
func (a *Agent) Enroll(ctx context.Context, token string) Result {
	argv := a.argv(append([]string{"enroll", "--token-file", "-", "--state", a.State, "--name", a.Name, "--os", "linux"}, a.EnrollArgs...)...)
	return a.bed.RunIn(ctx, []byte(token+"\n"), "enroll-"+a.Name, argv[0], argv[1:]...)
}

var agentReady = regexp.MustCompile(`^ready ipc=(\S+) addr=(\S+) device=([0-9a-f]+)`)

// Start starts (or restarts) jitkey-agent run and waits for its ready line.
func (a *Agent) Start(ctx context.Context) error {
	if a.Proc == nil {
		argv := a.argv(append([]string{"run", "--state", a.State, "--sandbox", a.Sandbox, "--ipc", a.IPC}, a.RunArgs...)...)
		a.Proc = a.bed.Proc("agent-"+a.Name, argv[0], argv[1:]...)
	}
	mark := a.Proc.Mark()
	if err := a.Proc.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := a.Proc.WaitFor(ctx, mark, agentReady)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.Name, err)
	}
	a.Addr, a.DeviceID = m[2], m[3]
	return nil
}

// Surface is a simulated login screen (jitkey-agent surface) in front of
// an agent; the QR it shows is written to QRPNG and QRText.
type Surface struct {
	*Proc
	QRPNG, QRText string
}

// StartSurface starts a login surface for action (logon, unlock, elevate,
// sudo) that proves the credential through PAM in the agent's sandbox and
// holds the session for hold.
func (a *Agent) StartSurface(action string, hold time.Duration) (*Surface, error) {
	return a.startSurface(action, hold, true)
}

// StartSurfaceNoProof is StartSurface without the PAM proof: for a
// credential of an account the sandbox does not hold (a domain account,
// SPEC.md 11.7).
func (a *Agent) StartSurfaceNoProof(action string, hold time.Duration) (*Surface, error) {
	return a.startSurface(action, hold, false)
}

func (a *Agent) startSurface(action string, hold time.Duration, proof bool) (*Surface, error) {
	a.surfaces++
	dir := a.bed.StateDir(fmt.Sprintf("agent-%s/surface%d", a.Name, a.surfaces))
	s := &Surface{QRPNG: filepath.Join(dir, "qr.png"), QRText: filepath.Join(dir, "qr.txt")}
	args := []string{"surface", "--ipc", a.IPC, "--action", action, "--qr-png", s.QRPNG, "--qr-text", s.QRText,
		"--hold", hold.String(), "--timeout", "2m"}
	if proof {
		args = append(args, "--sandbox", a.Sandbox)
	}
	s.Proc = a.bed.Proc(fmt.Sprintf("surface-%s#%d", a.Name, a.surfaces), AgentBin, args...)
	// The surface reads "USERNAME CODE" on stdin when the agent asks for
	// an offline code (Surface.EnterCode).
	s.Proc.Interactive = true
	return s, s.Start()
}

// StartPushSurface starts a logon surface that asks for a push login to
// the technician with email (SPEC.md 11.5) besides showing its QR code;
// WaitPushNumber returns the number it shows.
func (a *Agent) StartPushSurface(email string, hold time.Duration) (*Surface, error) {
	a.surfaces++
	dir := a.bed.StateDir(fmt.Sprintf("agent-%s/surface%d", a.Name, a.surfaces))
	s := &Surface{QRPNG: filepath.Join(dir, "qr.png"), QRText: filepath.Join(dir, "qr.txt")}
	s.Proc = a.bed.Proc(fmt.Sprintf("surface-%s#%d", a.Name, a.surfaces), AgentBin, "surface",
		"--ipc", a.IPC, "--action", "logon", "--qr-png", s.QRPNG, "--qr-text", s.QRText,
		"--sandbox", a.Sandbox, "--hold", hold.String(), "--timeout", "2m", "--push", email)
	return s, s.Start()
}

var surfacePushNumber = regexp.MustCompile(`^push number=(\d+)`)

// WaitPushNumber waits for the number a push surface shows.
func (s *Surface) WaitPushNumber(ctx context.Context) (string, error) {
	m, err := s.WaitFor(ctx, 0, surfacePushNumber)
	if err != nil {
		return "", err
	}
	return m[1], nil
}

var surfaceAsksCode = regexp.MustCompile(`^status online=false otp=true`)

// EnterCode waits until the surface says the agent is offline and asks
// for a code, then types username and code.
func (s *Surface) EnterCode(ctx context.Context, username, code string) error {
	if _, err := s.WaitFor(ctx, 0, surfaceAsksCode); err != nil {
		return err
	}
	return s.Send(username + " " + code + "\n")
}

var (
	surfaceQR       = regexp.MustCompile(`^qr expires=`)
	surfaceLoggedIn = regexp.MustCompile(`^logged in as (\S+)`)
	surfaceEnded    = regexp.MustCompile(`^session ended`)
)

// WaitQR waits until the surface shows a (new) QR code after line from.
func (s *Surface) WaitQR(ctx context.Context, from int) error {
	if _, err := s.WaitFor(ctx, from, surfaceQR); err != nil {
		return err
	}
	if _, err := os.Stat(s.QRPNG); err != nil {
		return fmt.Errorf("harness: surface said it shows a QR but %s: %w", s.QRPNG, err)
	}
	return nil
}

// WaitLoggedIn waits for the PAM login with the issued credential and
// returns the account name.
func (s *Surface) WaitLoggedIn(ctx context.Context) (string, error) {
	m, err := s.WaitFor(ctx, 0, surfaceLoggedIn)
	if err != nil {
		return "", err
	}
	return m[1], nil
}

// WaitEnded waits for "session ended" (the agent confirmed the logout).
func (s *Surface) WaitEnded(ctx context.Context) error {
	_, err := s.WaitFor(ctx, 0, surfaceEnded)
	return err
}

// Logout ends the held session now (SIGTERM makes the surface stop
// holding, end the session and exit) and waits for the agent's answer.
func (s *Surface) Logout(ctx context.Context) error {
	if err := s.Signal(sigterm); err != nil {
		return err
	}
	if err := s.WaitEnded(ctx); err != nil {
		return err
	}
	return s.Wait(ctx)
}

var relayConnected = regexp.MustCompile(`connected to (home )?relay`)

// WaitRelay waits until p logs that it (re)connected to its home relay
// after line from.
func WaitRelay(ctx context.Context, p *Proc, from int) error {
	_, err := p.WaitFor(ctx, from, relayConnected)
	return err
}
