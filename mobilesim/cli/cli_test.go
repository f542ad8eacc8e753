package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

const pin = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// world is a fake MSP with two tenants, a second MSP, and their agents.
type world struct {
	t       *testing.T
	net     *channeltest.Network
	acme    *peertest.Console // "Acme MSP": tenants acme, globex
	other   *peertest.Console // "Globex IT": tenant globex-internal
	w11     *peertest.Agent   // acme, shared with everyone
	secret  *peertest.Agent   // acme, shared with alice only
	dj      *peertest.Agent   // acme, domain-joined, offers local/domain
	gx      *peertest.Agent   // globex (nik is not delegated)
	otherPC *peertest.Agent   // Globex IT's device
	env     *cli.Env
	state   string
}

func connector(n *channeltest.Network) cli.Connector {
	return func(ctx context.Context, cfg cli.LinkConfig) (*cli.Link, error) {
		mux, stop := peertest.JoinMemory(n, cfg.Phone.Addr(), cfg.Phone.Noise(), cfg.Accept, cfg.Handle)
		return &cli.Link{Mux: mux, Close: stop}, nil
	}
}

func newWorld(t *testing.T) *world {
	n := channeltest.NewNetwork()
	w := &world{t: t, net: n, state: filepath.Join(t.TempDir(), "phone")}
	w.acme = must(peertest.NewConsole(peertest.Memory{Net: n}, "Acme MSP", "relay-a:4433"))
	w.other = must(peertest.NewConsole(peertest.Memory{Net: n}, "Globex IT", "relay-b:4433"))
	t.Cleanup(w.acme.Close)
	t.Cleanup(w.other.Close)
	agent := func(c *peertest.Console, name, tenant string, dj bool) *peertest.Agent {
		a := must(peertest.NewAgent(peertest.Memory{Net: n}, "relay-a:4433"))
		t.Cleanup(a.Close)
		c.Enroll(a, name, tenant, dj)
		return a
	}
	w.w11 = agent(w.acme, "W11-L-PASSWORD", "acme", false)
	w.secret = agent(w.acme, "W11-SECRET", "acme", false)
	w.dj = agent(w.acme, "W11-DOMAIN", "acme", true)
	w.gx = agent(w.acme, "GX-SRV", "globex", false)
	w.otherPC = agent(w.other, "OTHER-PC", "globex-internal", false)

	acme := peertest.DefaultPolicy("acme", 1)
	acme.Shares = []protocol.DeviceShare{{DeviceID: w.secret.Cert.DeviceID, Entries: []string{"alice"}}}
	w.acme.SetPolicy(acme)
	w.acme.SetPolicy(peertest.DefaultPolicy("globex", 1))
	w.other.SetPolicy(peertest.DefaultPolicy("globex-internal", 1))
	for _, a := range []*peertest.Agent{w.w11, w.secret, w.gx} {
		a.Configure(w.acme.Policy(a.Cert.Tenant), nil)
	}
	w.dj.Configure(w.acme.Policy("acme"), []uint8{protocol.AccountLocal, protocol.AccountDomain})
	w.otherPC.Configure(w.other.Policy("globex-internal"), nil)
	w.env = &cli.Env{Connect: connector(n), Stdin: strings.NewReader("")}
	return w
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type result struct {
	out, err string
	code     int
}

func (w *world) run(stdin string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := *w.env
	env.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	full := append([]string{"--state", w.state, "--timeout", "2s"}, args...)
	code := env.Run(ctx, full, &out, &errb)
	return result{out.String(), errb.String(), code}
}

// step is one line of a script: a command line (built when the step runs,
// since codes are fresh), its exit code, and patterns its output matches.
type step struct {
	name  string
	stdin string
	args  func(w *world) []string
	code  int
	out   string // regexp on stdout
	err   string // regexp on stderr
	check func(t *testing.T, w *world, r result)
}

func fixed(args ...string) func(*world) []string { return func(*world) []string { return args } }

func (w *world) script(steps []step) {
	for _, s := range steps {
		w.t.Run(s.name, func(t *testing.T) {
			r := w.run(s.stdin, s.args(w)...)
			if r.code != s.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, s.code, r.out, r.err)
			}
			if s.out != "" && !regexp.MustCompile(s.out).MatchString(r.out) {
				t.Errorf("stdout %q does not match %q", r.out, s.out)
			}
			if s.err != "" && !regexp.MustCompile(s.err).MatchString(r.err) {
				t.Errorf("stderr %q does not match %q", r.err, s.err)
			}
			if s.check != nil {
				s.check(t, w, r)
			}
		})
	}
}

func pairQR(c func(*world) *peertest.Console, user string, grants []protocol.Grant, age time.Duration) func(*world) []string {
	return func(w *world) []string {
		return []string{"pair", c(w).PairingQR(user, grants, time.Now().Add(-age))}
	}
}

func acmeOf(w *world) *peertest.Console  { return w.acme }
func otherOf(w *world) *peertest.Console { return w.other }

func scanOf(a func(*world) *peertest.Agent, age time.Duration, extra ...string) func(*world) []string {
	return func(w *world) []string {
		return append([]string{"scan", a(w).LoginQR(protocol.ActionLogon, time.Now().Add(-age))}, extra...)
	}
}

func w11(w *world) *peertest.Agent     { return w.w11 }
func secret(w *world) *peertest.Agent  { return w.secret }
func dj(w *world) *peertest.Agent      { return w.dj }
func gx(w *world) *peertest.Agent      { return w.gx }
func otherPC(w *world) *peertest.Agent { return w.otherPC }

// event returns the agent's record of its last login.
func event(t *testing.T, a *peertest.Agent) peertest.Event {
	t.Helper()
	select {
	case ev := <-a.Events:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("agent saw no login")
		return peertest.Event{}
	}
}

func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), &m); err != nil {
		t.Fatalf("not one JSON object: %q: %v", s, err)
	}
	return m
}

var nik = []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}}

func TestScript(t *testing.T) {
	w := newWorld(t)
	w.script([]step{
		{name: "pair before init", args: pairQR(acmeOf, "nik", nik, 0), code: cli.ExitError, err: `not initialised`},
		{name: "init needs relay", args: fixed("init"), code: cli.ExitUsage, err: `--relay`},
		{name: "init with failing biometrics", args: fixed("init", "--relay", "relay-a:4433", "--relay-pin", pin, "--biometric", "fail"), code: cli.ExitBiometric, err: `biometric: check failed`},
		{name: "init", args: fixed("init", "--relay", "relay-a:4433", "--relay-pin", pin), out: `(?s)phone initialised in .*approval key: \S+ \(behind biometrics\)`,
			check: func(t *testing.T, w *world, r result) {
				for name, want := range map[string]os.FileMode{"": 0o700, "phone.json": 0o600, "approval.p8": 0o600, "orgs": 0o700} {
					fi, err := os.Stat(filepath.Join(w.state, name))
					if err != nil || fi.Mode().Perm() != want {
						t.Errorf("%s: mode %v, want %v (%v)", name, fi.Mode().Perm(), want, err)
					}
				}
			}},
		{name: "init twice", args: fixed("init", "--relay", "relay-a:4433", "--relay-pin", pin), code: cli.ExitError, err: `already initialised`},
		{name: "orgs before pairing", args: fixed("orgs"), out: `not paired`},
		{name: "devices before pairing json", args: fixed("devices", "--json"), code: cli.ExitError, out: `"kind":"no-org"`},
		{name: "scan before pairing", args: scanOf(w11, 0, "--approve"), code: cli.ExitError, err: `not paired with any organisation`},
		{name: "pair with a login code", args: func(w *world) []string {
			return []string{"pair", w.w11.LoginQR(protocol.ActionLogon, time.Now())}
		}, code: cli.ExitQR, err: `this is a login code; use scan`},
		{name: "pair with an expired code", args: pairQR(acmeOf, "nik", nik, 11*time.Minute), code: cli.ExitQR, err: `^jitkey-phone: this code has expired \(made 11m[01]s ago\); ask for a new pairing code\n$`},
		{name: "pair with a malformed code", args: fixed("pair", "JK:NOT-BASE45!", "--json"), code: cli.ExitQR, out: `"kind":"qr-malformed"`, err: `^jitkey-phone: this is not a jitkey code, or it is damaged; scan the code on the screen again\n$`},
		{name: "pair biometric cancelled", args: func(w *world) []string {
			return append(pairQR(acmeOf, "nik", nik, 0)(w), "--biometric", "cancel")
		}, code: cli.ExitBiometric, err: `cancelled by the user`},
		{name: "pair", args: pairQR(acmeOf, "nik", nik, 0), out: `(?s)paired with Acme MSP \(org acme-msp\) as nik\ntenants: acme \(admin, policy v1\)\ndevices: 3\ncurrent organisation: acme-msp`},
		{name: "pair second org json", args: func(w *world) []string {
			return append(pairQR(otherOf, "nik", []protocol.Grant{{Role: protocol.RoleGlobalAdmin}}, 0)(w), "--json")
		}, out: `"id":"globex-it"`, check: func(t *testing.T, w *world, r result) {
			m := jsonOf(t, r.out)
			if m["current"] != "acme-msp" {
				t.Errorf("current = %v, want acme-msp (the first paired)", m["current"])
			}
		}},
		{name: "orgs", args: fixed("orgs"), out: `(?m)^\* acme-msp  "Acme MSP"  as nik  tenants: acme \(admin, policy v1\)  devices: 3\n  globex-it  "Globex IT"  as nik  tenants: globex-internal \(global-admin, policy v1\)  devices: 1\n$`},
		{name: "orgs json", args: fixed("orgs", "--json"), out: `^\{"current":"acme-msp","orgs":\[\{"id":"acme-msp","name":"Acme MSP","username":"nik","serial":\d+,"tenants":\[\{"tenant":"acme","role":"admin","policy_version":1,"login_mode":"named"\}\],"devices":3,"current":true\}`},
		{name: "devices", args: fixed("devices"), out: `(?s)W11-DOMAIN +acme +linux +- +[0-9a-f]{32} domain-joined\nW11-L-PASSWORD .*W11-SECRET`},
		{name: "devices search", args: fixed("devices", "password", "--json"), out: `^\{"devices":\[\{"name":"W11-L-PASSWORD","tenant":"acme","os":"linux","device_id":"[0-9a-f]{32}","domain_joined":false,"dc":false,"relay":"relay-a:4433","offline_codes":false\}\],"org":"acme-msp"\}`},
		{name: "use unknown org", args: fixed("use", "nope", "--json"), code: cli.ExitError, out: `"kind":"unknown-org"`},
		{name: "scan approve", args: scanOf(w11, 0, "--approve"),
			out: "^Log in to W11-L-PASSWORD \\(tenant acme\\) as msp-nik — action: logon\napproved: msp-nik is ready on W11-L-PASSWORD\n$",
			check: func(t *testing.T, w *world, r result) {
				ev := event(t, w.w11)
				if !ev.Result.OK || ev.Approval == nil || ev.Approval.Decision != protocol.DecisionApprove || ev.Err != nil {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "scan with reason and ticket", args: scanOf(w11, 0, "--approve", "--reason", "printer queue stuck", "--ticket", "INC-4711"),
			out: `approved: msp-nik is ready`,
			check: func(t *testing.T, w *world, r result) {
				ev := event(t, w.w11)
				if ev.Approval == nil || ev.Approval.Reason != "printer queue stuck" || ev.Approval.Ticket != "INC-4711" {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "scan deny", args: scanOf(w11, 0, "--deny"), out: `(?m)^denied$`,
			check: func(t *testing.T, w *world, r result) {
				ev := event(t, w.w11)
				if ev.Approval == nil || ev.Approval.Decision != protocol.DecisionDeny || ev.Result.OK || ev.Err != nil {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "scan json", args: scanOf(w11, 0, "--approve", "--json"),
			out:   `^\{"account":"msp-nik","account_choice":"default","code":0,"decision":"approve","message":"approved: msp-nik is ready on W11-L-PASSWORD","request":\{"org":"acme-msp","username":"nik","device":"W11-L-PASSWORD","device_id":"[0-9a-f]{32}","tenant":"acme","account":"msp-nik","action":"logon","choices":\[\],"summary":"Log in to W11-L-PASSWORD \(tenant acme\) as msp-nik — action: logon"\},"status":"approved","text":""\}\n$`,
			check: func(t *testing.T, w *world, r result) { event(t, w.w11) }},
		{name: "scan interactive yes", stdin: "y\n", args: scanOf(w11, 0), out: `(?s)approve\? \[y/N\] approved: msp-nik`,
			check: func(t *testing.T, w *world, r result) { event(t, w.w11) }},
		{name: "scan interactive no", stdin: "\n", args: scanOf(w11, 0), out: `(?s)approve\? \[y/N\] denied`,
			check: func(t *testing.T, w *world, r result) { event(t, w.w11) }},
		{name: "scan json needs a decision", args: scanOf(w11, 0, "--json"), code: cli.ExitUsage, out: `"kind":"usage"`},
		{name: "scan expired code", args: scanOf(w11, 2*time.Minute, "--approve"), code: cli.ExitQR, err: `^jitkey-phone: this code has expired \(made 2m[01]s ago\); scan the code now on the screen\n$`},
		{name: "scan a code the agent answers no more", args: scanOf(w11, 75*time.Second, "--approve", "--json"), code: cli.ExitQR,
			out: `"kind":"qr-expired"`, err: `^jitkey-phone: this code has expired \(made 1m1[56]s ago\); scan the code now on the screen\n$`},
		{name: "scan with the phone clock skewed", args: scanOf(w11, 0, "--approve", "--clock-offset", "-5m", "--json"), code: cli.ExitQR,
			out: `"kind":"qr-expired"`, err: `in the future by the phone's clock`},
		{name: "scan malformed", args: fixed("scan", "hello", "--approve"), code: cli.ExitQR, err: `^jitkey-phone: this is not a jitkey code, or it is damaged; scan the code on the screen again\n$`},
		{name: "scan a pairing code", args: func(w *world) []string { return []string{"scan", w.acme.PairingQR("x", nil, time.Now()), "--deny"} },
			code: cli.ExitQR, err: `this is a pairing code; use pair`},
		{name: "scan used code", args: func(w *world) []string {
			qr := w.w11.LoginQR(protocol.ActionLogon, time.Now())
			if r := w.run("", "scan", qr, "--approve"); r.code != 0 {
				w.t.Errorf("first scan: %+v", r)
			}
			event(w.t, w.w11)
			return []string{"scan", qr, "--approve", "--json"}
		}, code: cli.ExitUnreachable, out: `"kind":"unreachable"`,
			err: `^jitkey-phone: the computer did not answer: the code may have been replaced on screen or already used, or the computer is offline; scan the code now on the screen\n$`},
		{name: "policy denies", args: scanOf(secret, 0, "--approve"), code: cli.ExitRefused,
			err: `the policy does not allow this login: nik on W11-SECRET \(tenant acme\): the device is not shared with you`},
		{name: "agent refuses after hello", args: scanOf(secret, 0, "--approve", "--skip-policy-check"), code: cli.ExitRefused,
			out: `^refused by the device: not allowed on this device\n$`,
			check: func(t *testing.T, w *world, r result) {
				if ev := event(t, w.secret); ev.Approval != nil || ev.Result.Code != protocol.CodeRefused {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "agent refuses unlisted tenant", args: scanOf(gx, 0, "--approve", "--json"), code: cli.ExitRefused,
			out:   `^\{"account":"","code":1,"message":"refused by the device: not allowed on this device","status":"refused","text":"not allowed on this device"\}`,
			check: func(t *testing.T, w *world, r result) { event(t, w.gx) }},
		{name: "device of another org", args: scanOf(otherPC, 0, "--approve"), code: cli.ExitRefused,
			err: `device belongs to another organisation: OTHER-PC is a device of Globex IT \(tenant globex-internal\); switch with: use globex-it`},
		{name: "selective login domain", args: scanOf(dj, 0, "--approve", "--account", "domain"),
			out: `(?s)account: domain \(offered: local, domain\)\napproved`,
			check: func(t *testing.T, w *world, r result) {
				if ev := event(t, w.dj); ev.Approval == nil || ev.Approval.Account != protocol.AccountDomain || !ev.Result.OK {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "account not offered", args: scanOf(w11, 0, "--approve", "--account", "local"), code: cli.ExitUsage,
			err: `account choice not offered by the device: local`,
			check: func(t *testing.T, w *world, r result) {
				if ev := event(t, w.w11); ev.Approval != nil || ev.Err == nil {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "biometric fails on approve", args: scanOf(w11, 0, "--approve", "--biometric", "fail", "--json"), code: cli.ExitBiometric,
			out: `"kind":"biometric-failed".*"request":\{`,
			check: func(t *testing.T, w *world, r result) {
				ev := event(t, w.w11)
				var pe *protocol.PeerError
				if ev.Approval != nil || !asPeerError(ev.Err, &pe) || pe.Code != protocol.CodeDenied {
					t.Errorf("agent saw %+v", ev)
				}
			}},
		{name: "use", args: fixed("use", "Globex IT"), out: `current organisation: globex-it \(Globex IT\)`},
		{name: "scan in the other org", args: scanOf(otherPC, 0, "--approve"), out: `approved: msp-nik is ready on OTHER-PC`,
			check: func(t *testing.T, w *world, r result) { event(t, w.otherPC) }},
		{name: "use back", args: fixed("use", "acme-msp", "--json"), out: `^\{"current":"acme-msp","name":"Acme MSP"\}\n$`},
		{name: "otp", args: fixed("otp", "W11-L-PASSWORD"), code: cli.ExitRefused, err: `^jitkey-phone: log in online on W11-L-PASSWORD once with the QR code to get offline codes for it\n$`},
		{name: "unknown command", args: fixed("fly"), code: cli.ExitUsage, err: `unknown command "fly"`},
		{name: "-h prints usage", args: fixed("-h"), code: cli.ExitOK, err: `usage: jitkey-phone`},
	})
}

func asPeerError(err error, pe **protocol.PeerError) bool {
	p, ok := err.(*protocol.PeerError)
	*pe = p
	return ok
}

// TestOtherTenantInDirectory: a directory entry of a tenant the technician
// is not delegated to (a console bug or a stale directory) is refused by
// the phone before it contacts the device.
func TestOtherTenantInDirectory(t *testing.T) {
	w := newWorld(t)
	if r := w.run("", "init", "--relay", "relay-a:4433", "--relay-pin", pin); r.code != 0 {
		t.Fatal(r)
	}
	if r := w.run("", pairQR(acmeOf, "nik", nik, 0)(w)...); r.code != 0 {
		t.Fatal(r)
	}
	wal, err := wallet.Open(w.state)
	if err != nil {
		t.Fatal(err)
	}
	o, err := wal.Current()
	if err != nil {
		t.Fatal(err)
	}
	o.Directory = append(o.Directory, w.acme.Sign(protocol.DocDeviceCert, &w.gx.Cert))
	if err := wal.SaveOrg(o); err != nil {
		t.Fatal(err)
	}
	r := w.run("", scanOf(gx, 0, "--approve", "--json")(w)...)
	if r.code != cli.ExitRefused || !strings.Contains(r.out, `"kind":"other-tenant"`) ||
		!strings.Contains(r.err, "GX-SRV belongs to tenant globex, which nik is not delegated to") {
		t.Fatalf("%+v", r)
	}
	select {
	case ev := <-w.gx.Events:
		t.Fatalf("the agent was contacted: %+v", ev)
	default:
	}
}

// TestListenAndSync: a listening phone takes the console's pushes (newer
// policies, directory) and acknowledges; sync fetches the same on demand.
func TestListenAndSync(t *testing.T) {
	w := newWorld(t)
	for _, args := range [][]string{
		{"init", "--relay", "relay-a:4433", "--relay-pin", pin},
		pairQR(acmeOf, "nik", nik, 0)(w),
	} {
		if r := w.run("", args...); r.code != 0 {
			t.Fatal(r)
		}
	}
	tech := w.acme.Phones()[0]

	done := make(chan result, 1)
	outR, outW, _ := os.Pipe()
	go func() {
		env := *w.env
		var errb bytes.Buffer
		code := env.Run(context.Background(), []string{"--state", w.state, "--json", "listen", "--for", "4s"}, outW, &errb)
		outW.Close()
		done <- result{"", errb.String(), code}
	}()
	lines := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		var acc string
		for {
			n, err := outR.Read(buf)
			acc += string(buf[:n])
			for {
				i := strings.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- acc[:i]
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	next := func() map[string]any {
		t.Helper()
		select {
		case l := <-lines:
			return jsonOf(t, l)
		case <-time.After(5 * time.Second):
			t.Fatal("no output from listen")
			return nil
		}
	}
	if m := next(); m["event"] != "listening" || !strings.HasSuffix(m["address"].(string), "@relay-a:4433") {
		t.Fatalf("first line %v", m)
	}

	p := w.acme.Policy("acme")
	p.Version = 2
	w.acme.SetPolicy(p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := w.acme.PushTo(ctx, tech)
	if err != nil {
		t.Fatal(err)
	}
	if len(ack.Versions) != 1 || ack.Versions[0] != (protocol.TenantVersion{Tenant: "acme", Version: 2}) {
		t.Fatalf("ack %+v", ack)
	}
	m := next()
	if m["event"] != "update" || m["org"] != "acme-msp" || m["devices"] != float64(3) {
		t.Fatalf("update %v", m)
	}
	if a := m["applied"].([]any); len(a) != 1 || a[0].(map[string]any)["version"] != float64(2) {
		t.Fatalf("applied %v", m["applied"])
	}

	// A push from anyone but the organisation's console is not answered.
	imp := must(peertest.NewConsole(peertest.Memory{Net: w.net}, "Impostor", "relay-a:4433"))
	defer imp.Close()
	ictx, icancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer icancel()
	if _, err := imp.PushTo(ictx, tech); err == nil {
		t.Fatal("impostor push accepted")
	}

	// An older policy pushed again is ignored.
	p.Version = 1
	w.acme.SetPolicy(p)
	ack, err = w.acme.PushTo(ctx, tech)
	if err != nil || ack.Versions[0].Version != 2 {
		t.Fatalf("downgrade: ack %+v, %v", ack, err)
	}
	next()

	r := <-done
	if r.code != 0 {
		t.Fatalf("listen: %+v", r)
	}
	if m := next(); m["event"] != "stopped" {
		t.Fatalf("last line %v", m)
	}

	// Sync: a newer policy and a device removed from the directory.
	p.Version = 3
	w.acme.SetPolicy(p)
	w.acme.Unlist(w.secret.Cert.DeviceID)
	r = w.run("", "sync")
	if r.code != 0 || r.out != "synced acme-msp: policies acme v3; 2 devices\n" {
		t.Fatalf("sync: %+v", r)
	}
	if r := w.run("", "devices", "secret"); r.out != "no devices\n" {
		t.Fatalf("devices after sync: %+v", r)
	}
}

// TestImages: a login code rendered by qrcode.PNG and by the qrencode tool
// decode to the same payload, and scan --image logs in with either.
func TestImages(t *testing.T) {
	if _, err := exec.LookPath("qrencode"); err != nil {
		t.Fatal("qrencode is required (apt-get install qrencode): ", err)
	}
	w := newWorld(t)
	for _, args := range [][]string{
		{"init", "--relay", "relay-a:4433", "--relay-pin", pin},
		pairQR(acmeOf, "nik", nik, 0)(w),
	} {
		if r := w.run("", args...); r.code != 0 {
			t.Fatal(r)
		}
	}
	dir := t.TempDir()
	for i, render := range []func(text, file string) error{
		func(text, file string) error {
			b, err := qrcode.PNG(text, 6)
			if err != nil {
				return err
			}
			return os.WriteFile(file, b, 0o600)
		},
		func(text, file string) error {
			out, err := exec.Command("qrencode", "-o", file, text).CombinedOutput()
			if err != nil {
				t.Logf("qrencode: %s", out)
			}
			return err
		},
	} {
		text := w.w11.LoginQR(protocol.ActionLogon, time.Now())
		file := filepath.Join(dir, []string{"own.png", "qrencode.png"}[i])
		if err := render(text, file); err != nil {
			t.Fatal(err)
		}
		r := w.run("", "decode", "--image", file, "--json")
		if r.code != 0 || jsonOf(t, r.out)["payload"] != text || jsonOf(t, r.out)["kind"] != "login" {
			t.Fatalf("%s: decode %+v", file, r)
		}
		r = w.run("", "scan", "--image", file, "--approve")
		if r.code != 0 || !strings.Contains(r.out, "approved: msp-nik is ready on W11-L-PASSWORD") {
			t.Fatalf("%s: scan %+v", file, r)
		}
		event(t, w.w11)
	}
	blank, _ := qrcode.PNG("x", 4)
	empty := filepath.Join(dir, "blank.png")
	os.WriteFile(empty, blank[:len(blank)/2], 0o600)
	if r := w.run("", "scan", "--image", empty, "--approve", "--json"); r.code != cli.ExitQR || !strings.Contains(r.out, `"kind":"qr-malformed"`) {
		t.Fatalf("broken picture: %+v", r)
	}
}

// TestRemovedDevice (SPEC.md 11.10, R-46): after the MSP removed
// W11-L-PASSWORD, sync says so, devices no longer lists it, and scanning
// its code is refused with a clear message (text and --json) without the
// device being contacted, also with --skip-policy-check. The device
// itself never learned of its removal (a stolen computer).
func TestRemovedDevice(t *testing.T) {
	w := newWorld(t)
	for _, args := range [][]string{
		{"init", "--relay", "relay-a:4433", "--relay-pin", pin},
		pairQR(acmeOf, "nik", nik, 0)(w),
	} {
		if r := w.run("", args...); r.code != 0 {
			t.Fatal(r)
		}
	}
	p := w.acme.Policy("acme")
	p.Version, p.RevokedDevices = 2, []uint64{w.w11.Cert.Serial}
	w.acme.SetPolicy(p)
	w.acme.Unlist(w.w11.Cert.DeviceID)
	w.script([]step{
		{name: "sync", args: fixed("sync"),
			out: "^synced acme-msp: policies acme v2; 2 devices\nW11-L-PASSWORD was removed by the MSP: no longer listed, its login codes are refused\n$"},
		{name: "sync again json", args: fixed("sync", "--json"), out: `"removed":\[\]`},
		{name: "devices", args: fixed("devices"), out: `W11-DOMAIN`, check: func(t *testing.T, w *world, r result) {
			if strings.Contains(r.out, "W11-L-PASSWORD") {
				t.Errorf("devices lists the removed device:\n%s", r.out)
			}
		}},
		{name: "devices search", args: fixed("devices", "password"), out: "^no devices\n$"},
		{name: "scan", args: scanOf(w11, 0, "--approve"), code: cli.ExitRefused,
			err: `^jitkey-phone: device removed by the MSP: W11-L-PASSWORD \(tenant acme\); this phone no longer logs in to it\n$`},
		{name: "scan json", args: scanOf(w11, 0, "--approve", "--json"), code: cli.ExitRefused,
			out: `^\{"error":"device removed by the MSP: W11-L-PASSWORD \(tenant acme\); this phone no longer logs in to it","exit":3,"kind":"device-removed"\}\n$`},
		{name: "scan skipping the policy check", args: scanOf(w11, 0, "--approve", "--skip-policy-check", "--json"), code: cli.ExitRefused,
			out: `"kind":"device-removed"`},
		{name: "other devices still work", args: scanOf(dj, 0, "--approve", "--account", "local"), out: `approved: msp-nik is ready on W11-DOMAIN`,
			check: func(t *testing.T, w *world, r result) { event(t, w.dj) }},
	})
	select {
	case ev := <-w.w11.Events:
		t.Fatalf("the removed device was contacted: %+v", ev)
	default:
	}
}
