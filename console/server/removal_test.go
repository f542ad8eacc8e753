package server_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/protocol"
)

// refusal returns the reason of a *console.Refusal, or fails.
func refusal(t *testing.T, err error) string {
	t.Helper()
	var r *console.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return r.Reason
}

// TestDeviceRemoval (SPEC.md 11.10, R-46): removing a device signs a
// policy that revokes its serial; phones get it with a directory without
// the device; the device's agent gets that policy and never a later one;
// its audit is still stored, marked; its keys cannot enroll again, while
// a fresh agent can enroll under the same name.
func TestDeviceRemoval(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	_, err = e.con.AddTech(e.ctx, "nik", "nik@example.com", false, []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}})
	e.must(err)
	gone, stays := e.enrol("acme", "W11"), e.enrol("acme", "W12")
	_, _, err = e.con.SetShare(e.ctx, "W11", console.ShareChange{Remove: []string{"all-users"}})
	e.must(err)
	q, err := e.con.NewPairing(e.ctx, "nik")
	e.must(err)
	text, err := q.Encode()
	e.must(err)
	phone, _ := e.peer("relay-c:443")
	_, tc, err := phone.Pair(e.ctx, text)
	e.must(err)
	waitAcked(t, e, gone, 3)
	waitAcked(t, e, stays, 3)
	drain(gone, stays, phone)

	d, pol, err := e.con.RemoveDevice(e.ctx, "W11", "")
	e.must(err)
	if d.Removed == 0 || d.RemovedVersion != 4 || pol.Version != 4 || !pol.IsDeviceRevoked(gone.DeviceCert.Serial) ||
		pol.IsDeviceRevoked(stays.DeviceCert.Serial) || len(pol.Shares) != 0 {
		t.Fatalf("removal: device %+v, policy v%d revoked %v shares %v", d, pol.Version, pol.RevokedDevices, pol.Shares)
	}
	if !errors.Is(pol.Authorize(tc, &gone.DeviceCert), protocol.ErrDeviceRevoked) || pol.Authorize(tc, &stays.DeviceCert) != nil {
		t.Fatal("the removal policy does not refuse W11 only")
	}

	// The phone's view: policy 4, W12 only.
	pp := waitPush(t, phone)
	var ppol protocol.Policy
	e.must(pp.Policies[0].VerifyEd25519(protocol.DocPolicy, phone.MSPKey, &ppol))
	if ppol.Version != 4 || len(pp.Directory) != 1 {
		t.Fatalf("phone push: policy v%d, %d devices", ppol.Version, len(pp.Directory))
	}
	var left protocol.DeviceCert
	e.must(pp.Directory[0].VerifyEd25519(protocol.DocDeviceCert, phone.MSPKey, &left))
	if left.DeviceID != stays.DeviceCert.DeviceID {
		t.Fatalf("phone directory holds %s", left.Name)
	}
	if !errors.Is(ppol.CheckDevice(&gone.DeviceCert), protocol.ErrDeviceRevoked) {
		t.Fatal("the phone's policy does not refuse W11")
	}
	sp, err := phone.Sync(e.ctx)
	e.must(err)
	if len(sp.Directory) != 1 {
		t.Fatalf("sync: %d devices", len(sp.Directory))
	}

	// Both agents get version 4; the removed one nothing later. A push of
	// version 3 may still arrive first (a round that listed targets before
	// drain ended, slow on a loaded machine).
	for _, a := range []*fakepeer.Peer{gone, stays} {
		for {
			p := waitPush(t, a)
			var got protocol.Policy
			e.must(p.Policies[0].VerifyEd25519(protocol.DocPolicy, a.MSPKey, &got))
			if got.Version == 3 {
				continue
			}
			if got.Version != 4 {
				t.Fatalf("agent %s pushed v%d", a.DeviceCert.Name, got.Version)
			}
			break
		}
	}
	waitAcked(t, e, gone, 4)
	_, _, err = e.con.SetTenant(e.ctx, "acme", console.TenantChange{PushLogin: ptr(true)})
	e.must(err)
	waitPush(t, stays)
	waitAcked(t, e, stays, 5)
	// About 15 push rounds. A push of version 4 may come again (a round
	// that listed targets before the acknowledgement was recorded); a
	// later version must not.
	for deadline := time.After(300 * time.Millisecond); ; {
		select {
		case p := <-gone.Pushes:
			var got protocol.Policy
			e.must(p.Policies[0].VerifyEd25519(protocol.DocPolicy, gone.MSPKey, &got))
			if got.Version != 4 {
				t.Fatalf("the removed device got policy v%d pushed", got.Version)
			}
			continue
		case <-deadline:
		}
		break
	}
	if gone.Held("acme") != 4 {
		t.Fatalf("removed device holds v%d", gone.Held("acme"))
	}

	// Its audit is stored and marked; its acknowledgement carries at most
	// the removal policy.
	r1 := gone.Record(protocol.AuditRecord{Time: e.clock.Now().UnixMilli(), Event: "device.removed", Detail: "policy version 4"})
	acks, err := gone.Ship(e.ctx, protocol.AuditBatch{Records: []protocol.Signed{r1}, PolicyVersion: 3, Name: "W11", OS: "linux"})
	e.must(err)
	var acked protocol.Policy
	if acks[0].UpTo != 1 || acks[0].Policy == nil {
		t.Fatalf("ack %+v", acks[0])
	}
	e.must(acks[0].Policy.VerifyEd25519(protocol.DocPolicy, gone.MSPKey, &acked))
	if acked.Version != 4 {
		t.Fatalf("ack to the removed device carries v%d, want the removal policy v4", acked.Version)
	}
	r2 := gone.Record(protocol.AuditRecord{Time: e.clock.Now().UnixMilli(), Event: "account.disabled", Account: "msp-nik"})
	acks, err = gone.Ship(e.ctx, protocol.AuditBatch{Records: []protocol.Signed{r2}, PolicyVersion: 4, Name: "W11", OS: "linux"})
	e.must(err)
	if acks[0].UpTo != 2 || acks[0].Policy != nil {
		t.Fatalf("ack %+v: want up to 2 without policy", acks[0])
	}
	rows, _, err := e.con.Audit(e.ctx, console.AuditQuery{Device: hex.EncodeToString(gone.DeviceCert.DeviceID[:])})
	e.must(err)
	if len(rows) != 2 || !rows[0].FromRemoved || !rows[1].FromRemoved {
		t.Fatalf("audit of the removed device: %d rows", len(rows))
	}
	if !e.logs.has("WARN audit stored from a removed device") {
		t.Fatal("audit from a removed device not logged")
	}

	// Listing, share lists and a second removal.
	devs, err := e.con.Devices(e.ctx, "acme")
	e.must(err)
	all, err := e.con.AllDevices(e.ctx, "acme")
	e.must(err)
	if len(devs) != 1 || len(all) != 2 {
		t.Fatalf("devices: %d enrolled, %d in all", len(devs), len(all))
	}
	if _, _, err := e.con.SetShare(e.ctx, "W11", console.ShareChange{Reset: true}); !strings.Contains(refusal(t, err), "was removed on") {
		t.Fatalf("share on a removed device: %v", err)
	}
	if _, _, err := e.con.RemoveDevice(e.ctx, "W11", ""); !strings.Contains(refusal(t, err), "was removed on") {
		t.Fatalf("second removal: %v", err)
	}

	// Its keys cannot enroll again; a fresh agent can, under the same name.
	tok, _, err := e.con.NewToken(e.ctx, "acme", time.Hour, 2)
	e.must(err)
	if _, err := gone.Enroll(e.ctx, tok, "W11", func() int64 { return e.clock.Now().Unix() }); peerCode(err) != protocol.CodeRefused {
		t.Fatalf("re-enrolment of a removed device's keys: %v, want CodeRefused", err)
	}
	again, _ := e.peer("relay-b:443")
	if _, err := again.Enroll(e.ctx, tok, "W11", func() int64 { return e.clock.Now().Unix() }); err != nil {
		t.Fatal(err)
	}
	if again.DeviceCert.DeviceID == gone.DeviceCert.DeviceID || again.DeviceCert.Serial == gone.DeviceCert.Serial {
		t.Fatal("the re-enrolled computer got the old device id or serial")
	}
	found, err := e.con.FindDevice(e.ctx, "W11")
	e.must(err)
	if found.ID != again.DeviceCert.DeviceID {
		t.Fatal("W11 names the removed device, not the enrolled one")
	}
	// The audit trail may name either W11: ambiguity is refused with the
	// candidates.
	_, _, err = e.con.Audit(e.ctx, console.AuditQuery{Device: "W11"})
	if reason := refusal(t, err); !strings.Contains(reason, `"W11" names 2 devices`) || !strings.Contains(reason, ", removed)") {
		t.Fatalf("ambiguous audit query: %s", reason)
	}
	// The new policy still revokes the old serial.
	ti, err := e.con.Tenant(e.ctx, "acme")
	e.must(err)
	if !ti.Policy.IsDeviceRevoked(gone.DeviceCert.Serial) || ti.Policy.IsDeviceRevoked(again.DeviceCert.Serial) {
		t.Fatalf("latest policy revokes %v", ti.Policy.RevokedDevices)
	}
}

// TestRemoveDeviceByReference: a name in two tenants is ambiguous until
// --tenant (or TENANT/NAME, or the id) names one; unknown names and
// tenants are refused.
func TestRemoveDeviceByReference(t *testing.T) {
	e := newEnv(t)
	for _, tn := range []string{"acme", "globex"} {
		_, _, err := e.con.AddTenant(e.ctx, tn, console.TenantChange{})
		e.must(err)
	}
	a, g := e.enrol("acme", "PC"), e.enrol("globex", "PC")
	_, _, err := e.con.RemoveDevice(e.ctx, "PC", "")
	if reason := refusal(t, err); !strings.Contains(reason, `"PC" names 2 devices: acme/PC (id`) || !strings.Contains(reason, "globex/PC (id") {
		t.Fatalf("ambiguous removal: %s", reason)
	}
	if _, _, err := e.con.RemoveDevice(e.ctx, "PC", "nowhere"); refusal(t, err) != `no tenant "nowhere"` {
		t.Fatalf("unknown tenant: %v", err)
	}
	if _, _, err := e.con.RemoveDevice(e.ctx, "NOPE", "acme"); !strings.Contains(refusal(t, err), `no device "NOPE" in tenant acme`) {
		t.Fatalf("unknown device: %v", err)
	}
	d, pol, err := e.con.RemoveDevice(e.ctx, "PC", "globex")
	e.must(err)
	if d.ID != g.DeviceCert.DeviceID || pol.Tenant != "globex" {
		t.Fatalf("removed %s/%s", d.Tenant, d.Name)
	}
	// The other tenant's policy is untouched.
	ti, err := e.con.Tenant(e.ctx, "acme")
	e.must(err)
	if ti.Policy.Version != 1 || len(ti.Policy.RevokedDevices) != 0 {
		t.Fatalf("acme policy v%d revokes %v", ti.Policy.Version, ti.Policy.RevokedDevices)
	}
	// Now "PC" names one enrolled device; by id works too.
	d, _, err = e.con.RemoveDevice(e.ctx, hex.EncodeToString(a.DeviceCert.DeviceID[:4]), "")
	e.must(err)
	if d.ID != a.DeviceCert.DeviceID {
		t.Fatalf("removed %x by id prefix", d.ID)
	}
}

// drain empties the peers' push channels.
func drain(ps ...*fakepeer.Peer) {
	for _, p := range ps {
		for {
			select {
			case <-p.Pushes:
				continue
			case <-time.After(100 * time.Millisecond):
			}
			break
		}
	}
}
