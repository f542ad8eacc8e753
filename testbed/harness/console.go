//go:build linux

package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Console is the MSP console: a state directory that command-line calls
// work on, and a `serve` process that keeps it online on the relay.
type Console struct {
	bed   *Bed
	State string
	Serve *Proc
	// Addr is the console's relay address (from init).
	Addr string
	// ServeArgs are further arguments of serve (e.g. --web 127.0.0.1:0),
	// read when Start first makes the process.
	ServeArgs []string
}

var consoleAddr = regexp.MustCompile(`(?m)^addr=(\S+)`)

// InitConsole runs jitkey-console init against relay.
func (b *Bed) InitConsole(ctx context.Context, org string, relay *Relay) (*Console, error) {
	c := &Console{bed: b, State: filepath.Join(b.StateDir("console"), "state")}
	res := c.Run(ctx, "init", "--relay", relay.Addr, "--relay-pin", relay.Pin, "--org", org)
	if !res.OK() {
		return nil, fmt.Errorf("console init: %s", res)
	}
	m := consoleAddr.FindStringSubmatch(res.Stdout)
	if m == nil {
		return nil, fmt.Errorf("console init printed no addr=: %s", res)
	}
	c.Addr = m[1]
	return c, nil
}

// Run runs jitkey-console ARGS... --state STATE.
func (c *Console) Run(ctx context.Context, args ...string) Result {
	args = append(append([]string(nil), args...), "--state", c.State)
	return c.bed.Run(ctx, "console", ConsoleBin, args...)
}

// Must runs a console command and returns its stdout, or an error
// carrying everything it printed.
func (c *Console) Must(ctx context.Context, args ...string) (string, error) {
	res := c.Run(ctx, args...)
	if !res.OK() {
		return "", fmt.Errorf("jitkey-console %s: %s", strings.Join(args, " "), res)
	}
	return res.Stdout, nil
}

var consoleReady = regexp.MustCompile(`^ready$`)

// Start starts (or restarts) jitkey-console serve and waits until it is
// connected to the relay.
func (c *Console) Start(ctx context.Context) error {
	if c.Serve == nil {
		args := append([]string{"serve", "--state", c.State, "--poll", "200ms", "--retry", "1s"}, c.ServeArgs...)
		c.Serve = c.bed.Proc("console-serve", ConsoleBin, args...)
	}
	mark := c.Serve.Mark()
	if err := c.Serve.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := c.Serve.WaitFor(ctx, mark, consoleReady)
	return err
}

// Token issues an enrollment token for tenant.
func (c *Console) Token(ctx context.Context, tenant string) (string, error) {
	out, err := c.Must(ctx, "token", tenant)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(out)
	if !strings.HasPrefix(tok, "jk-enroll-") {
		return "", fmt.Errorf("console token printed %q, want jk-enroll-…", tok)
	}
	return tok, nil
}

// Pair shows a pairing QR for username as a PNG in dir and returns its path.
func (c *Console) Pair(ctx context.Context, username string) (string, error) {
	png := filepath.Join(c.bed.StateDir("console"), "pair-"+username+".png")
	if _, err := c.Must(ctx, "pair", username, "--png", png); err != nil {
		return "", err
	}
	return png, nil
}

// Audit returns the console's audit trail (audit --json).
func (c *Console) Audit(ctx context.Context, args ...string) (AuditLog, error) {
	res := c.Run(ctx, append([]string{"audit", "--json"}, args...)...)
	if !res.OK() {
		return nil, fmt.Errorf("console audit: %s", res)
	}
	lines, err := res.JSONLines()
	if err != nil {
		return nil, err
	}
	var log AuditLog
	for _, m := range lines {
		log = append(log, AuditLine{
			Type: str(m["type"]), Time: str(m["time"]), Tenant: str(m["tenant"]), Device: str(m["device"]),
			DeviceID: str(m["device_id"]), Seq: uint64(num(m["seq"])), Event: str(m["event"]),
			Username: str(m["username"]), Account: str(m["account"]), Method: str(m["method"]),
			Online: m["online"] == true, Action: str(m["action"]), Reason: str(m["reason"]),
			Detail: str(m["detail"]), Kind: str(m["kind"]), Text: str(m["text"]), FromRemoved: m["from_removed"] == true,
		})
	}
	return log, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
