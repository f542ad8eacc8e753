package server_test

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/biometric"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// enrolMany enrols n devices in tenant through the console core, as many
// agents would over the relay (same proofs, one transaction each), without
// running an agent for each. Their home relay is relay-b:443, which no test
// dials: over a real relay use enrolManyAt with the relay's address.
func (e *env) enrolMany(tenant string, n int) {
	e.t.Helper()
	e.enrolManyAt("relay-b:443", tenant, n)
}

// phone is the real phone code (mobilesim/app) listening on the env's
// network; updates receives what the console pushes to it.
type phone struct {
	w       *wallet.Wallet
	a       *app.App
	mux     *channel.Mux
	updates chan app.Update
}

func (e *env) phone() *phone {
	e.t.Helper()
	key, err := biometric.Generate(e.ctx, &biometric.Fixed{}, rand.Reader)
	e.must(err)
	w, err := wallet.Create(filepath.Join(e.t.TempDir(), "phone"), "relay-c:443", [][32]byte{{1}}, key, rand.Reader)
	e.must(err)
	p := &phone{w: w, updates: make(chan app.Update, 16)}
	p.a = app.New(app.Config{Wallet: w, Gate: &biometric.Fixed{}, Now: e.clock.Now,
		OnUpdate: func(u app.Update) { p.updates <- u }})
	var stop func()
	p.mux, stop = peertest.JoinMemory(e.net, w.Phone().Addr(), w.Phone().Noise(), p.a.Accept, p.a.Handle)
	e.t.Cleanup(stop)
	return p
}

// pair pairs the phone as username and returns how long it took.
func (p *phone) pair(e *env, username string) (*app.View, time.Duration) {
	e.t.Helper()
	q, err := e.con.NewPairing(e.ctx, username)
	e.must(err)
	text, err := q.Encode()
	e.must(err)
	start := time.Now()
	v, err := p.a.Pair(e.ctx, p.mux, text)
	if err != nil {
		e.t.Fatalf("pair %s: %v", username, err)
	}
	return v, time.Since(start)
}

// latest returns the console's latest policy version of every tenant.
func (e *env) latest() map[string]uint64 {
	e.t.Helper()
	_, versions, err := e.con.Tenants(e.ctx)
	e.must(err)
	return versions
}

// checkView checks that a phone holds the latest policy of exactly the
// tenants in want and devices devices.
func (e *env) checkView(who string, w *wallet.Wallet, want []string, devices int) {
	e.t.Helper()
	o, err := w.Current()
	e.must(err)
	v, err := app.Load(o)
	e.must(err)
	latest := e.latest()
	if len(v.Policies) != len(want) {
		e.t.Fatalf("%s holds %d policies, want %d", who, len(v.Policies), len(want))
	}
	for _, tn := range want {
		if p := v.Policies[tn]; p == nil || p.Version != latest[tn] {
			e.t.Fatalf("%s: policy of %s: %+v, want version %d", who, tn, p, latest[tn])
		}
	}
	if len(v.Devices) != devices {
		e.t.Fatalf("%s holds %d devices, want %d", who, len(v.Devices), devices)
	}
}

// TestPagedTransfersAtScale (M2): a tenant with 1,000 devices and a global
// admin of 150 more tenants. Each phone's view is far above one message
// (MaxMessageSize); pairing, the console's push and a sync reach the real
// phone code in pages, and the phone ends up with every device and every
// tenant's latest policy.
func TestPagedTransfersAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("enrols 1,000 devices")
	}
	e := newEnvWith(t, envOptions{timeout: 6 * time.Minute, server: func(c *server.Config) {
		// 1,000 enrolled devices have no agent running: keep the pusher's
		// attempts at them rare.
		// Under -race on a loaded machine a global admin's pairing (151
		// policies signed in one transaction) takes over 20 s.
		c.PollInterval, c.RetryInterval, c.SessionTimeout = 100*time.Millisecond, 10*time.Second, time.Minute
	}})
	const bigDevices, tenants, smallDevices = 1000, 150, 2
	_, _, err := e.con.AddTenant(e.ctx, "big", console.TenantChange{})
	e.must(err)
	start := time.Now()
	e.enrolMany("big", bigDevices)
	t.Logf("enrolled %d devices in %v", bigDevices, time.Since(start))
	all := []string{"big"}
	for i := range tenants {
		name := fmt.Sprintf("t%03d", i)
		ch := console.TenantChange{}
		if i%2 == 0 {
			ch.LoginMode = ptr(protocol.ModeShared)
		}
		_, _, err := e.con.AddTenant(e.ctx, name, ch)
		e.must(err)
		all = append(all, name)
	}
	for i := range 10 {
		e.enrolMany(fmt.Sprintf("t%03d", i), smallDevices)
	}
	_, err = e.con.AddTech(e.ctx, "nik", "nik@example.com", false, []protocol.Grant{{Tenant: "big", Role: protocol.RoleAdmin}})
	e.must(err)
	_, err = e.con.AddTech(e.ctx, "boss", "boss@example.com", true, nil)
	e.must(err)

	// Pairing: nik's view is 1,000 device certificates (about 240 KB).
	nik := e.phone()
	v, took := nik.pair(e, "nik")
	t.Logf("paired nik with %d devices in %v", len(v.Devices), took)
	e.checkView("nik", nik.w, []string{"big"}, bigDevices)

	// The global admin's view: every tenant's policy, every device and an
	// offline key per shared-mode tenant.
	boss := e.phone()
	v, took = boss.pair(e, "boss")
	t.Logf("paired boss with %d devices and %d policies in %v", len(v.Devices), len(v.Policies), took)
	e.checkView("boss", boss.w, all, bigDevices+10*smallDevices)
	o, err := boss.w.Current()
	e.must(err)
	if len(o.OfflineSecrets) != tenants/2 {
		t.Fatalf("boss holds %d offline keys, want %d", len(o.OfflineSecrets), tenants/2)
	}

	// Pairing boss changed every tenant's roster: the console pushes big's
	// new policy to nik's listening phone, with the whole directory.
	want := e.latest()["big"]
	deadline := time.After(30 * time.Second)
	for held := uint64(0); held < want; {
		select {
		case u := <-nik.updates:
			if u.Pages < 2 {
				t.Fatalf("push to nik in %d page(s)", u.Pages)
			}
			for _, tv := range u.Versions {
				if tv.Tenant == "big" {
					held = tv.Version
				}
			}
		case <-deadline:
			t.Fatalf("nik's phone never got version %d of big pushed", want)
		}
	}
	e.checkView("nik after the push", nik.w, []string{"big"}, bigDevices)

	// More devices, then a sync by the global admin.
	e.enrolMany("t149", 5)
	start = time.Now()
	u, err := boss.a.Sync(e.ctx, boss.mux)
	e.must(err)
	t.Logf("synced boss (%d devices) in %d pages in %v", u.Devices, u.Pages, time.Since(start))
	if u.Pages < 5 {
		t.Fatalf("sync in %d pages", u.Pages)
	}
	e.checkView("boss after sync", boss.w, all, bigDevices+10*smallDevices+5)
}

// TestPairingAboveOneMessage: a view that fits in one message (200
// devices) and one just above it (300 devices; before paging, pairing
// failed from about 254) pair alike.
func TestPairingAboveOneMessage(t *testing.T) {
	e := newEnvWith(t, envOptions{server: func(c *server.Config) { c.RetryInterval = 10 * time.Second }})
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	_, err = e.con.AddTech(e.ctx, "nik", "nik@example.com", false, []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}})
	e.must(err)
	for _, n := range []int{200, 300} {
		e.enrolMany("acme", n-len(e.mustDevices("acme")))
		p := e.phone()
		v, _ := p.pair(e, "nik")
		if len(v.Devices) != n {
			t.Fatalf("paired with %d devices, want %d", len(v.Devices), n)
		}
	}
}

func (e *env) mustDevices(tenant string) []string {
	e.t.Helper()
	devs, err := e.con.Devices(e.ctx, tenant)
	e.must(err)
	var out []string
	for _, d := range devs {
		out = append(out, d.Name)
	}
	return out
}
