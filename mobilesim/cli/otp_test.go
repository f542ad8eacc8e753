package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/mobilesim/cli"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// phoneClock is the phone's clock: real time while it scans (QR codes are
// made with the real time), a fixed time while it shows codes.
type phoneClock struct {
	mu    sync.Mutex
	fixed time.Time // zero: real time
}

func (c *phoneClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now()
	}
	return c.fixed
}

func (c *phoneClock) set(t time.Time) { c.mu.Lock(); c.fixed = t; c.mu.Unlock() }

// otpWorld is an MSP with a named-mode tenant (acme), a shared-mode one
// (globex) whose secret the console holds, a shared-mode one whose secret
// it does not hand out (initech), and their agents.
type otpWorld struct {
	*world
	clock          *phoneClock
	w11, w12, gone *peertest.Agent // acme; w12 is shared with alice only
	gx, gxp, in    *peertest.Agent // globex (gxp shared with alice only), initech
	globexSecret   []byte
	acmeP, globexP protocol.OfflineParams
	named1, named2 []byte    // W11's offline keys, first and replaced
	goneKey        []byte    // GONE's offline key
	t0             time.Time // a time step start of both periods
}

func newOTPWorld(t *testing.T) *otpWorld {
	n := channeltest.NewNetwork()
	w := &otpWorld{world: &world{t: t, net: n, state: filepath.Join(t.TempDir(), "phone")}, clock: &phoneClock{}}
	w.acme = must(peertest.NewConsole(peertest.Memory{Net: n}, "Acme MSP", "relay-a:4433"))
	t.Cleanup(w.acme.Close)
	agent := func(name, tenant string) *peertest.Agent {
		a := must(peertest.NewAgent(peertest.Memory{Net: n}, "relay-a:4433"))
		t.Cleanup(a.Close)
		w.acme.Enroll(a, name, tenant, false)
		return a
	}
	w.w11, w.w12, w.gone = agent("W11-L-PASSWORD", "acme"), agent("W12", "acme"), agent("GONE", "acme")
	w.gx, w.gxp, w.in = agent("GX-SRV", "globex"), agent("GX-PRIVATE", "globex"), agent("IN-1", "initech")

	acme := peertest.DefaultPolicy("acme", 1)
	acme.Shares = []protocol.DeviceShare{{DeviceID: w.w12.Cert.DeviceID, Entries: []string{"alice"}}}
	globex := peertest.DefaultPolicy("globex", 1)
	globex.LoginMode, globex.SharedAccount = protocol.ModeShared, "msp-0042"
	globex.Shares = []protocol.DeviceShare{{DeviceID: w.gxp.Cert.DeviceID, Entries: []string{"alice"}}}
	globex.Offline.Digits, globex.Offline.Period, globex.Offline.Algorithm = 8, 60, protocol.OTPSHA256
	initech := peertest.DefaultPolicy("initech", 1)
	initech.LoginMode, initech.SharedAccount = protocol.ModeShared, "msp-0043"
	for _, p := range []protocol.Policy{acme, globex, initech} {
		w.acme.SetPolicy(p)
	}
	for _, a := range []*peertest.Agent{w.w11, w.w12, w.gone, w.gx, w.gxp, w.in} {
		a.Configure(w.acme.Policy(a.Cert.Tenant), nil)
	}
	w.acmeP, w.globexP = acme.Offline, globex.Offline
	w.globexSecret = bytes.Repeat([]byte{0x42}, 32)
	w.acme.SetOfflineSecret("globex", w.globexSecret, 3)
	w.named1, w.named2, w.goneKey = bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20), bytes.Repeat([]byte{3}, 20)
	w.t0 = time.Unix(1_790_000_040, 0) // divisible by 60
	w.env = &cli.Env{Connect: connector(n), Stdin: strings.NewReader(""), Now: w.clock.Now}
	return w
}

// otpAt runs otp DEVICE --json at the phone time at and decodes it.
func (w *otpWorld) otpAt(at time.Time, device string) map[string]any {
	w.t.Helper()
	w.clock.set(at)
	defer w.clock.set(time.Time{})
	r := w.run("", "otp", device, "--json")
	if r.code != 0 {
		w.t.Fatalf("otp %s: exit %d: %s", device, r.code, r.err)
	}
	return jsonOf(w.t, r.out)
}

func code(t *testing.T, key []byte, at time.Time, p protocol.OfflineParams) string {
	t.Helper()
	c, err := otpcode.Code(key, otpcode.Step(at, p.Period), p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sharedCode is the code an agent of a shared-mode tenant accepts from
// technician techID: the agent derives it from the tenant secret.
func sharedCode(t *testing.T, secret []byte, techID string, dev protocol.DeviceID, at time.Time, p protocol.OfflineParams) string {
	t.Helper()
	key, err := otpcode.SharedCodeKey(secret, techID, dev)
	if err != nil {
		t.Fatal(err)
	}
	return code(t, key, at, p)
}

func wantJSON(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("otp --json:\n got %s\nwant %s", gb, wb)
	}
}

// TestOfflineCodes: jitkey-phone otp shows the code the device's agent
// accepts — in a named-mode tenant from the key the agent sent at an
// online login (replaced by a newer one), in a shared-mode tenant from the
// technician's tech key (the agent derives the same code key from the
// tenant secret), with the policy's digits, period and algorithm — and the
// seconds left in the step; devices marks where codes work; each refusal
// is one sentence.
func TestOfflineCodes(t *testing.T) {
	w := newOTPWorld(t)
	grants := []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}, {Tenant: "globex", Role: protocol.RoleReadOnly},
		{Tenant: "initech", Role: protocol.RoleAdmin}}
	const techID = "tech-nik" // peertest's technician ids
	w.script([]step{
		{name: "init", args: fixed("init", "--relay", "relay-a:4433", "--relay-pin", pin)},
		{name: "pair", args: func(w *world) []string {
			return []string{"pair", w.acme.PairingQR("nik", grants, time.Now())}
		}, out: `paired with Acme MSP`},
		{name: "devices before any online login", args: fixed("devices"),
			out: `(?m)^GONE +acme +linux +- +[0-9a-f]{32} \n` +
				`W11-L-PASSWORD +acme +linux +- +[0-9a-f]{32} \n` +
				`W12 +acme +linux +- .*\n` +
				`GX-PRIVATE +globex +linux +- +[0-9a-f]{32} \n` +
				`GX-SRV +globex +linux +otp +[0-9a-f]{32} \n` +
				`IN-1 +initech +linux +- `},
		{name: "named mode without a key", args: fixed("otp", "W11-L-PASSWORD", "--json"), code: cli.ExitRefused,
			out: `^\{"error":"log in online on W11-L-PASSWORD once with the QR code to get offline codes for it","exit":3,"kind":"no-offline-key"\}\n$`,
			err: `^jitkey-phone: log in online on W11-L-PASSWORD once with the QR code to get offline codes for it\n$`},
		{name: "shared mode without a tech key", args: fixed("otp", "IN-1"), code: cli.ExitRefused,
			err: `^jitkey-phone: this phone holds no offline key of tenant initech; sync with the console to get it\n$`},
		{name: "unknown device", args: fixed("otp", "NOPE", "--json"), code: cli.ExitError,
			out: `"kind":"unknown-device"`, err: `^jitkey-phone: no device "NOPE" in the directory of Acme MSP \(see: devices, or sync\)\n$`},
		{name: "device not shared with the technician", args: fixed("otp", "W12"), code: cli.ExitRefused,
			err: `^jitkey-phone: the policy does not allow this login: nik on W12 \(tenant acme\): the device is not shared with you\n$`},
		{name: "shared-mode device not shared with the technician", args: fixed("otp", "GX-PRIVATE", "--json"), code: cli.ExitRefused,
			out: `"kind":"policy-denied"`, err: `not shared with you`},
		{name: "usage", args: fixed("otp"), code: cli.ExitUsage, err: `otp takes one device name`},
		{name: "online login delivers W11's key", args: func(*world) []string {
			w.w11.GiveOfflineKey(w.named1)
			return scanOf(func(*world) *peertest.Agent { return w.w11 }, 0, "--approve")(w.world)
		}, out: `approved: msp-nik is ready on W11-L-PASSWORD`},
		{name: "named-mode code", args: fixed("orgs"), check: func(t *testing.T, _ *world, _ result) {
			at := w.t0.Add(12 * time.Second)
			wantJSON(t, w.otpAt(at, "W11-L-PASSWORD"), map[string]any{
				"device": "W11-L-PASSWORD", "tenant": "acme", "username": "nik",
				"code": code(t, w.named1, at, w.acmeP), "seconds_left": 18, "mode": "named"})
			// By tenant and name, by id prefix, case-insensitive; the step's
			// last second and the next step.
			id := fmt.Sprintf("%x", w.w11.Cert.DeviceID[:5])
			for _, c := range []struct {
				ref  string
				at   time.Time
				left float64
			}{{"acme/W11-L-PASSWORD", w.t0.Add(29 * time.Second), 1}, {id, w.t0.Add(30 * time.Second), 30}, {"w11-l-password", w.t0.Add(59 * time.Second), 1}} {
				got := w.otpAt(c.at, c.ref)
				if got["code"] != code(t, w.named1, c.at, w.acmeP) || got["seconds_left"] != c.left {
					t.Errorf("otp %s at +%v: %v", c.ref, c.at.Sub(w.t0), got)
				}
			}
		}},
		{name: "named-mode code as text", args: func(*world) []string {
			w.clock.set(w.t0.Add(12 * time.Second))
			return []string{"otp", "W11-L-PASSWORD"}
		}, out: fmt.Sprintf("^offline login on W11-L-PASSWORD \\(tenant acme, named mode\\)\nusername: nik\ncode:     %s\nvalid:    18s more\n$",
			code(t, w.named1, w.t0.Add(12*time.Second), w.acmeP)),
			check: func(*testing.T, *world, result) { w.clock.set(time.Time{}) }},
		{name: "a later login replaces W11's key", args: func(*world) []string {
			w.w11.GiveOfflineKey(w.named2)
			return scanOf(func(*world) *peertest.Agent { return w.w11 }, 0, "--approve")(w.world)
		}, check: func(t *testing.T, _ *world, _ result) {
			at := w.t0.Add(12 * time.Second)
			if code(t, w.named1, at, w.acmeP) == code(t, w.named2, at, w.acmeP) {
				t.Fatal("test keys give the same code")
			}
			if got := w.otpAt(at, "W11-L-PASSWORD"); got["code"] != code(t, w.named2, at, w.acmeP) {
				t.Fatalf("after the new key: %v", got)
			}
		}},
		{name: "a login without a key keeps it", args: scanOf(func(*world) *peertest.Agent { return w.w11 }, 0, "--approve"),
			check: func(t *testing.T, _ *world, _ result) {
				at := w.t0.Add(12 * time.Second)
				if got := w.otpAt(at, "W11-L-PASSWORD"); got["code"] != code(t, w.named2, at, w.acmeP) {
					t.Fatalf("after a login without key: %v", got)
				}
			}},
		{name: "shared-mode code", args: fixed("orgs"), check: func(t *testing.T, _ *world, _ result) {
			at := w.t0.Add(12 * time.Second)
			wantJSON(t, w.otpAt(at, "GX-SRV"), map[string]any{
				"device": "GX-SRV", "tenant": "globex", "username": "nik",
				"code": sharedCode(t, w.globexSecret, techID, w.gx.Cert.DeviceID, at, w.globexP), "seconds_left": 48, "mode": "shared"})
		}},
		{name: "devices after the online login", args: fixed("devices", "--json"), check: func(t *testing.T, _ *world, r result) {
			var got struct {
				Devices []struct {
					Name         string `json:"name"`
					OfflineCodes bool   `json:"offline_codes"`
				} `json:"devices"`
			}
			if err := json.Unmarshal([]byte(r.out), &got); err != nil {
				t.Fatal(err)
			}
			marks := map[string]bool{}
			for _, d := range got.Devices {
				marks[d.Name] = d.OfflineCodes
			}
			want := map[string]bool{"GONE": false, "W11-L-PASSWORD": true, "W12": false, "GX-PRIVATE": false, "GX-SRV": true, "IN-1": false}
			if fmt.Sprint(marks) != fmt.Sprint(want) {
				t.Fatalf("offline_codes %v, want %v", marks, want)
			}
		}},
		{name: "rotated tenant secret arrives with a sync", args: func(*world) []string {
			w.globexSecret = bytes.Repeat([]byte{0x43}, 32)
			w.acme.SetOfflineSecret("globex", w.globexSecret, 4)
			return []string{"sync"}
		}, check: func(t *testing.T, _ *world, _ result) {
			at := w.t0.Add(75 * time.Second)
			got := w.otpAt(at, "GX-SRV")
			if got["code"] != sharedCode(t, w.globexSecret, techID, w.gx.Cert.DeviceID, at, w.globexP) || got["seconds_left"] != float64(45) {
				t.Fatalf("after rotation: %v", got)
			}
			o := must(must(wallet.Open(w.state)).Current())
			if k, ok := o.TechKey("globex"); !ok || k.Generation != 4 || bytes.Equal(k.Secret, w.globexSecret) {
				t.Fatalf("stored tech key: %v generation %d", ok, k.Generation)
			}
		}},
		{name: "a per-device key from a shared-mode computer takes over", args: func(*world) []string {
			// After the derived key was used offline there, the agent
			// gives a per-device key at the next online login (SPEC.md
			// 11.6); the phone prefers it to the derived key.
			w.gx.GiveOfflineKey(w.named2)
			return scanOf(func(*world) *peertest.Agent { return w.gx }, 0, "--approve")(w.world)
		}, check: func(t *testing.T, _ *world, _ result) {
			at := w.t0.Add(75 * time.Second)
			got := w.otpAt(at, "GX-SRV")
			if got["code"] != code(t, w.named2, at, w.globexP) || got["mode"] != "shared" {
				t.Fatalf("shared-mode computer with its own key: %v", got)
			}
		}},
		{name: "GONE's key", args: func(*world) []string {
			w.gone.GiveOfflineKey(w.goneKey)
			return scanOf(func(*world) *peertest.Agent { return w.gone }, 0, "--approve")(w.world)
		}, check: func(t *testing.T, _ *world, _ result) { w.otpAt(w.t0, "GONE") }},
		{name: "GONE removed", args: func(*world) []string {
			w.acme.Unlist(w.gone.Cert.DeviceID)
			p := w.acme.Policy("acme")
			p.Version, p.RevokedDevices = 2, []uint64{w.gone.Cert.Serial}
			w.acme.SetPolicy(p)
			return []string{"sync"}
		}, out: `GONE was removed by the MSP`},
		{name: "otp on a removed device", args: fixed("otp", "GONE", "--json"), code: cli.ExitRefused,
			out: `"kind":"device-removed"`, err: `^jitkey-phone: device removed by the MSP: GONE \(tenant acme\); this phone no longer logs in to it\n$`,
			check: func(t *testing.T, _ *world, _ result) {
				o := must(must(wallet.Open(w.state)).Current())
				if _, ok := o.DeviceKey("acme", w.gone.Cert.DeviceID); ok {
					t.Fatal("the removed device's offline key is still stored")
				}
				if _, ok := o.DeviceKey("acme", w.w11.Cert.DeviceID); !ok {
					t.Fatal("the sync dropped W11's offline key")
				}
			}},
	})
}
