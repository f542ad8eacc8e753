package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/protocol"
)

// removeDevice does what the console does when the MSP removes a device
// (SPEC.md 11.10): the device leaves the directory and a new policy
// revokes its serial.
func removeDevice(c *peertest.Console, d protocol.DeviceCert, version uint64) {
	c.Unlist(d.DeviceID)
	p := c.Policy(d.Tenant)
	p.Version = version
	p.RevokedDevices = append(p.RevokedDevices, d.Serial)
	c.SetPolicy(p)
}

func scanApprove(t *testing.T, a *app.App, mux app.Dialer, qr string, skip bool) (bool, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	decided := false
	_, err := a.Scan(ctx, mux, qr, app.ScanOptions{SkipPolicyCheck: skip, Decide: func(context.Context, *app.Request) (app.Decision, error) {
		decided = true
		return app.Decision{Approve: true}, nil
	}})
	return decided, err
}

// TestRemovedDeviceRemembered: a sync that drops a device from the
// directory under a policy revoking it reports the removal; the phone then
// refuses the device's codes without contacting it, even when asked to
// skip its policy check, for as long as the policy revokes the serial.
func TestRemovedDeviceRemembered(t *testing.T) {
	_, console, agent, a, mux, w := fixtureWallet(t)
	view := func() *app.View {
		t.Helper()
		o, err := w.Current()
		if err != nil {
			t.Fatal(err)
		}
		v, err := app.Load(o)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	removeDevice(console, agent.Cert, 2) // the agent keeps policy 1: it never learns
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := a.Sync(ctx, mux)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Removed) != 1 || u.Removed[0] != "PC1" || u.Devices != 0 {
		t.Fatalf("update: removed %v, %d devices", u.Removed, u.Devices)
	}
	for _, skip := range []bool{false, true} {
		decided, err := scanApprove(t, a, mux, agent.LoginQR(protocol.ActionLogon, time.Now()), skip)
		if !errors.Is(err, app.ErrDeviceRemoved) || decided {
			t.Fatalf("skip=%v: %v (decided %v), want ErrDeviceRemoved", skip, err, decided)
		}
	}
	select {
	case ev := <-agent.Events:
		t.Fatalf("the removed device was contacted: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}

	// A later sync keeps the removal in mind without reporting it again.
	p := console.Policy("acme")
	p.Version = 3
	console.SetPolicy(p)
	if u, err = a.Sync(ctx, mux); err != nil || len(u.Removed) != 0 {
		t.Fatalf("second sync: removed %v, %v", u.Removed, err)
	}
	o := view()
	if d, ok := o.RemovedDevice(agent.Cert.DeviceID); !ok || d.Name != "PC1" || len(o.Devices) != 0 {
		t.Fatalf("view after the second sync: removed %v, devices %v", o.Removed, o.Devices)
	}
	// Once no policy revokes the serial (its certificate expired, say),
	// the phone forgets the certificate.
	p.Version, p.RevokedDevices = 4, nil
	console.SetPolicy(p)
	if _, err = a.Sync(ctx, mux); err != nil {
		t.Fatal(err)
	}
	if o = view(); len(o.Removed) != 0 || len(o.Org.Removed) != 0 {
		t.Fatalf("after the serial left the policy: %v", o.Removed)
	}
}

// TestRevokedDeviceInRequest: a phone that never listed a device
// refuses its login request once it sees the certificate the policy it
// holds revokes: nothing is shown to decide on, nothing signed, the
// device told "refused". Other devices still work.
func TestRevokedDeviceInRequest(t *testing.T) {
	n, console, agent, a, mux := fixture(t)
	stolen, err := peertest.NewAgent(peertest.Memory{Net: n}, "relay:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stolen.Close)
	console.Enroll(stolen, "PC2", "acme", false)
	stolen.Configure(console.Policy("acme"), nil) // it never learns of its removal
	removeDevice(console, stolen.Cert, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, err := a.Sync(ctx, mux)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Removed) != 0 || u.Devices != 1 {
		t.Fatalf("update: removed %v (the phone never listed PC2), %d devices", u.Removed, u.Devices)
	}
	for _, skip := range []bool{false, true} {
		decided, err := scanApprove(t, a, mux, stolen.LoginQR(protocol.ActionLogon, time.Now()), skip)
		if !errors.Is(err, app.ErrDeviceRemoved) || decided {
			t.Fatalf("skip=%v: %v (decided %v), want ErrDeviceRemoved", skip, err, decided)
		}
		select {
		case ev := <-stolen.Events:
			var pe *protocol.PeerError
			if ev.Approval != nil || !errors.As(ev.Err, &pe) || pe.Code != protocol.CodeRefused {
				t.Fatalf("skip=%v: the device saw %+v", skip, ev)
			}
		case <-ctx.Done():
			t.Fatal("the device saw nothing")
		}
	}
	agent.Configure(console.Policy("acme"), nil)
	if decided, err := scanApprove(t, a, mux, agent.LoginQR(protocol.ActionLogon, time.Now()), false); err != nil || !decided {
		t.Fatalf("PC1 after PC2's removal: %v", err)
	}
	<-agent.Events
}
