//go:build linux

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// World is the standard testbed: one relay, one console with two
// customer tenants (Contoso in named mode, Fabrikam in shared mode), two
// technicians (Nik, admin of both tenants; Sam, global admin) with their
// phones, and one Linux agent per tenant, each in its own account
// sandbox. The demo walks through its setup step by step; scenarios call
// Setup to get it in one go.
type World struct {
	*Bed
	Relay   *Relay
	Console *Console
	// Agents and their account sandboxes, by role.
	Contoso, Fabrikam       *Agent
	ContosoAcc, FabrikamAcc *Accounts
	// Phones.
	Nik, Sam *Phone
	// RelayListen is where the relay listens ("127.0.0.1:0" unless set
	// before Setup, e.g. to a network namespace's host address).
	RelayListen string
	// PhoneNetns, if set before Setup, runs both phones in this network
	// namespace (the relay must then listen on its HostAddr).
	PhoneNetns *Netns
	// PushGateway, if set before Setup, is the relay's push gateway
	// webhook URL (jitkey-relay --push-gateway): a phone waiting with
	// `listen --wake-gateway` serves it.
	PushGateway string
	// ContosoNetns, if set before Setup, runs the Contoso agent in this
	// network namespace (the relay must then listen on its HostAddr), so
	// a test can cut the computer off the relay.
	ContosoNetns *Netns
}

// Names used throughout the testbed.
const (
	OrgName         = "Acme IT Services"
	TenantContoso   = "contoso"
	TenantFabrikam  = "fabrikam"
	DeviceContoso   = "CONTOSO-WS1"
	DeviceFabrikam  = "FABRIKAM-SRV1"
	TechNik         = "nik"
	TechSam         = "sam"
	NamedAccountNik = "msp-nik"
	NamedAccountSam = "msp-sam"
)

// NewWorld returns an empty World on b.
func NewWorld(b *Bed) *World { return &World{Bed: b, RelayListen: "127.0.0.1:0"} }

// Step is one step of building a World, with a sentence for the demo.
type Step struct {
	Say string
	Do  func(ctx context.Context) error
}

// SetupSteps lists the steps that build the World, in order.
func (w *World) SetupSteps() []Step {
	return []Step{
		{"Start a relay on loopback (QUIC, stateless)", w.startRelay},
		{"Create the MSP console for " + OrgName + " (its MSP signing key is born here)", w.initConsole},
		{"Add customer tenant Contoso in named mode (each technician gets an own account)", func(ctx context.Context) error {
			_, err := w.Console.Must(ctx, "tenant", "add", TenantContoso, "--mode", "named")
			return err
		}},
		{"Add customer tenant Fabrikam in shared mode (technicians share one account)", func(ctx context.Context) error {
			_, err := w.Console.Must(ctx, "tenant", "add", TenantFabrikam, "--mode", "shared")
			return err
		}},
		{"Add technician Nik, admin of Contoso and Fabrikam", func(ctx context.Context) error {
			_, err := w.Console.Must(ctx, "tech", "add", TechNik, "--email", "nik@acme.example",
				"--role", TenantContoso+"=admin", "--role", TenantFabrikam+"=admin")
			return err
		}},
		{"Add technician Sam, global admin", func(ctx context.Context) error {
			_, err := w.Console.Must(ctx, "tech", "add", TechSam, "--email", "sam@acme.example", "--global-admin")
			return err
		}},
		{"Bring the console online on the relay", w.startConsole},
		{"Nik and Sam install the app (their phones make their keys)", w.initPhones},
		{"Nik pairs his phone with the console by scanning its pairing QR", func(ctx context.Context) error { return w.PairPhone(ctx, w.Nik) }},
		{"Sam pairs his phone the same way", func(ctx context.Context) error { return w.PairPhone(ctx, w.Sam) }},
		{"Enroll " + DeviceContoso + " (Contoso) with a one-time token and start its agent", func(ctx context.Context) error {
			return w.enroll(ctx, w.Contoso, TenantContoso)
		}},
		{"Enroll " + DeviceFabrikam + " (Fabrikam) and start its agent", func(ctx context.Context) error {
			return w.enroll(ctx, w.Fabrikam, TenantFabrikam)
		}},
		{"The phones sync and now list both computers", w.syncPhones},
	}
}

// Setup runs every SetupStep.
func (w *World) Setup(ctx context.Context) error {
	for _, s := range w.SetupSteps() {
		if err := s.Do(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.Say, err)
		}
	}
	return nil
}

func (w *World) startRelay(ctx context.Context) error {
	var extra []string
	if w.PushGateway != "" {
		extra = []string{"--push-gateway", w.PushGateway}
	}
	r, err := w.StartRelay(ctx, "relay", w.RelayListen, extra...)
	w.Relay = r
	return err
}

func (w *World) initConsole(ctx context.Context) error {
	c, err := w.InitConsole(ctx, OrgName, w.Relay)
	w.Console = c
	return err
}

func (w *World) startConsole(ctx context.Context) error { return w.Console.Start(ctx) }

func (w *World) initPhones(ctx context.Context) error {
	w.Nik, w.Sam = w.NewPhone(TechNik), w.NewPhone(TechSam)
	w.Nik.Netns, w.Sam.Netns = w.PhoneNetns, w.PhoneNetns
	for _, p := range []*Phone{w.Nik, w.Sam} {
		if res := p.Run(ctx, "init", "--relay", w.Relay.Addr, "--relay-pin", w.Relay.Pin); !res.OK() {
			return fmt.Errorf("phone init: %s", res)
		}
	}
	var err error
	if w.Contoso, w.ContosoAcc, err = w.NewAgent(ctx, DeviceContoso); err != nil {
		return err
	}
	w.Contoso.Netns = w.ContosoNetns
	w.Fabrikam, w.FabrikamAcc, err = w.NewAgent(ctx, DeviceFabrikam)
	return err
}

// PairPhone pairs p with the console through a pairing QR picture.
func (w *World) PairPhone(ctx context.Context, p *Phone) error {
	png, err := w.Console.Pair(ctx, p.Name)
	if err != nil {
		return err
	}
	res := p.Run(ctx, "--json", "pair", "--image", png)
	if !res.OK() {
		return fmt.Errorf("phone pair: %s", res)
	}
	return nil
}

func (w *World) enroll(ctx context.Context, a *Agent, tenant string) error {
	tok, err := w.Console.Token(ctx, tenant)
	if err != nil {
		return err
	}
	if res := a.Enroll(ctx, tok); !res.OK() {
		return fmt.Errorf("agent enroll: %s", res)
	}
	return a.Start(ctx)
}

func (w *World) syncPhones(ctx context.Context) error {
	for _, p := range []*Phone{w.Nik, w.Sam} {
		if err := w.SyncUntil(ctx, p, 2); err != nil {
			return err
		}
	}
	return nil
}

// SyncUntil runs `phone sync` until the phone lists at least n devices.
func (w *World) SyncUntil(ctx context.Context, p *Phone, n int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := p.Run(ctx, "sync")
		if res.OK() {
			var d struct{ Devices []map[string]any }
			if r := p.Run(ctx, "--json", "devices"); r.OK() && r.JSON(&d) == nil && len(d.Devices) >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("phone %s does not list %d devices after sync: %s", p.Name, n, res)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Scan is the outcome of a phone scanning a login QR.
type Scan struct {
	Result
	Status  string `json:"status"`
	Message string `json:"message"`
	Account string `json:"account"`
	Error   string `json:"error"`
	Kind    string `json:"kind"`
}

// ScanQR has phone p scan the QR that surface s shows and approve
// (or deny) the request, as --json.
func (w *World) ScanQR(ctx context.Context, p *Phone, s *Surface, approve bool, extra ...string) Scan {
	dec := "--deny"
	if approve {
		dec = "--approve"
	}
	return w.scan(ctx, p, append([]string{"--json", "scan", "--image", s.QRPNG, dec}, extra...))
}

// scan runs jitkey-phone with args (a --json scan) and reads its answer.
func (w *World) scan(ctx context.Context, p *Phone, args []string) Scan {
	res := p.Run(ctx, args...)
	var sc Scan
	if err := res.JSON(&sc); err != nil {
		// No result a check could mistake for an outcome: the error says
		// what the phone printed instead of its --json answer.
		sc = Scan{Status: "no-json", Error: err.Error(), Kind: "no-json"}
	}
	// The JSON has a "code" (the agent's result code); the embedded
	// Result's Code is the exit status: set it last.
	sc.Result = res
	return sc
}

// Login runs a complete QR login on agent a with phone p: a login surface
// starts, shows its QR, the phone scans and approves, and the surface
// logs in through PAM. It returns the surface (holding the session; call
// Logout) and the account name.
func (w *World) Login(ctx context.Context, a *Agent, p *Phone) (*Surface, string, error) {
	s, err := a.StartSurface("logon", time.Hour)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.WaitQR(ctx, 0); err != nil {
		return s, "", err
	}
	sc := w.ScanQR(ctx, p, s, true)
	if !sc.OK() {
		return s, "", fmt.Errorf("phone scan: %s", sc.Result)
	}
	acct, err := s.WaitLoggedIn(ctx)
	return s, acct, err
}

// Share changes a device's share list ("Share device" in the console),
// waits until the device's agent acknowledged the new policy, and
// returns the console's answer.
func (w *World) Share(ctx context.Context, device string, args ...string) (string, error) {
	out, err := w.Console.Must(ctx, append([]string{"share", device}, args...)...)
	if err != nil {
		return "", err
	}
	return out, w.waitPolicy(ctx, device, out)
}

// TenantSet changes a tenant's settings (`tenant set`), waits until the
// agent of device acknowledged the new policy, and returns the console's
// answer.
func (w *World) TenantSet(ctx context.Context, tenant, device string, args ...string) (string, error) {
	out, err := w.Console.Must(ctx, append([]string{"tenant", "set", tenant}, args...)...)
	if err != nil {
		return "", err
	}
	return out, w.waitPolicy(ctx, device, out)
}

// waitPolicy waits until the agent of device acknowledged the policy
// version the console's answer out names.
func (w *World) waitPolicy(ctx context.Context, device, out string) error {
	var version int
	if i := strings.Index(out, "policy version "); i >= 0 {
		fmt.Sscanf(out[i:], "policy version %d", &version)
	}
	if version == 0 {
		return fmt.Errorf("the console printed no policy version: %q", out)
	}
	want := fmt.Sprintf("v%d", version)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := w.Console.Run(ctx, "devices")
		for _, l := range strings.Split(res.Stdout, "\n") {
			f := strings.Fields(l)
			if len(f) > 1 && f[1] == device && slices.Contains(f, want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent of %s did not acknowledge policy %s: %s", device, want, res.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitAudit polls the console's audit trail until check accepts it
// (records ship asynchronously) and returns the last trail read.
func (w *World) WaitAudit(ctx context.Context, d time.Duration, check func(AuditLog) error) (AuditLog, error) {
	deadline := time.Now().Add(d)
	for {
		log, err := w.Console.Audit(ctx)
		if err == nil {
			if err = check(log); err == nil {
				return log, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return log, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// NoneEnabled returns an error naming every JIT account still enabled
// on either agent.
func (w *World) NoneEnabled(ctx context.Context) error {
	for _, a := range []struct {
		name string
		acc  *Accounts
	}{{DeviceContoso, w.ContosoAcc}, {DeviceFabrikam, w.FabrikamAcc}} {
		on, err := a.acc.Enabled(ctx)
		if err != nil {
			return err
		}
		if len(on) > 0 {
			return fmt.Errorf("%s: accounts still enabled: %v", a.name, on)
		}
	}
	return nil
}

// IsEnabled reports whether account is enabled in acc.
func IsEnabled(ctx context.Context, acc *Accounts, account string) (bool, error) {
	info, err := acc.Lookup(ctx, account)
	if err != nil {
		return false, err
	}
	return info.Enabled, nil
}

// PushShown is what a listening phone (listen --json) printed for a push
// login: the request and the three numbers.
type PushShown struct {
	Request struct {
		Device  string `json:"device"`
		Tenant  string `json:"tenant"`
		Account string `json:"account"`
		Action  string `json:"action"`
	} `json:"request"`
	Numbers []int `json:"numbers"`
}

var (
	phoneListening  = regexp.MustCompile(`"event":"(listening|waiting-for-wake)"`)
	phonePushShown  = regexp.MustCompile(`^(\{.*"event":"push".*)$`)
	phonePushResult = regexp.MustCompile(`^(\{.*"event":"push-result".*)$`)
)

// PushLogin runs a push login (SPEC.md 11.5) on agent a: phone p listens
// (`listen --json --once`), a login surface asks for a push to email and
// shows a number, the phone shows the request, and the technician types
// the screen's number on the phone. It returns the surface (holding the
// session; call Logout), the account, the number the screen showed and
// what the phone showed. The tenant must have push login on. listen are
// more arguments of the phone's listen (--wake-token, --wake-gateway).
func (w *World) PushLogin(ctx context.Context, a *Agent, p *Phone, email string, listen ...string) (*Surface, string, int, PushShown, error) {
	var shown PushShown
	l, err := p.Start("listen", append([]string{"--json", "listen", "--once"}, listen...)...)
	if err != nil {
		return nil, "", 0, shown, err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := l.WaitFor(ctx, 0, phoneListening); err != nil {
		return nil, "", 0, shown, err
	}
	s, err := a.StartPushSurface(email, time.Hour)
	if err != nil {
		return nil, "", 0, shown, err
	}
	num, err := s.WaitPushNumber(ctx)
	if err != nil {
		return s, "", 0, shown, err
	}
	n, _ := strconv.Atoi(num)
	m, err := l.WaitFor(ctx, 0, phonePushShown)
	if err != nil {
		return s, "", n, shown, err
	}
	if err := json.Unmarshal([]byte(m[1]), &shown); err != nil {
		return s, "", n, shown, err
	}
	if err := l.Send(num + "\n"); err != nil {
		return s, "", n, shown, err
	}
	acct, err := s.WaitLoggedIn(ctx)
	if err != nil {
		return s, "", n, shown, err
	}
	if m, err := l.WaitFor(ctx, 0, phonePushResult); err != nil || !strings.Contains(m[1], `"status":"approved"`) {
		return s, acct, n, shown, fmt.Errorf("phone result %v: %v", m, err)
	}
	return s, acct, n, shown, nil
}

// PushReport has phone p answer the next push login "this was not me"
// (`listen --json --once --report`) and a surface on a ask for it: the
// surface shows the denial.
func (w *World) PushReport(ctx context.Context, a *Agent, p *Phone, email string) error {
	l, err := p.Start("report", "--json", "listen", "--once", "--report")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := l.WaitFor(ctx, 0, phoneListening); err != nil {
		return err
	}
	s, err := a.StartPushSurface(email, time.Hour)
	if err != nil {
		return err
	}
	if _, err := s.WaitPushNumber(ctx); err != nil {
		return err
	}
	if m, err := l.WaitFor(ctx, 0, phonePushResult); err != nil || !strings.Contains(m[1], `"status":"reported"`) {
		return fmt.Errorf("phone result %v: %v", m, err)
	}
	if _, err := s.WaitFor(ctx, 0, surfaceDenied); err != nil {
		return fmt.Errorf("surface did not show the denial: %w", err)
	}
	_ = s.Wait(ctx) // a denied login exits with status 1
	return nil
}

var surfaceDenied = regexp.MustCompile(`^denied: `)
