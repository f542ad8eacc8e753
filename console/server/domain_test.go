package server_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/protocol"
)

// enrolAs enrols a fake agent that declares itself domain-joined and/or a
// domain controller.
func (e *env) enrolAs(tenant, name string, joined, dc bool) *fakepeer.Peer {
	e.t.Helper()
	tok, _, err := e.con.NewToken(e.ctx, tenant, time.Hour, 1)
	e.must(err)
	a, _ := e.peer("relay-b:443")
	a.DomainJoined, a.DC = joined, dc
	if _, err := a.Enroll(e.ctx, tok, name, func() int64 { return e.clock.Now().Unix() }); err != nil {
		e.t.Fatalf("enroll %s: %v", name, err)
	}
	return a
}

// directoryNames verifies a pushed directory and returns its device names
// in order.
func directoryNames(t *testing.T, p *fakepeer.Peer, pp protocol.PolicyPush) []string {
	t.Helper()
	var names []string
	var prev protocol.DeviceID
	for i, s := range pp.Directory {
		var dc protocol.DeviceCert
		if err := s.VerifyEd25519(protocol.DocDeviceCert, p.MSPKey, &dc); err != nil {
			t.Fatalf("directory entry %d: %v", i, err)
		}
		if !dc.DomainJoined {
			t.Fatalf("directory lists %s, not domain-joined", dc.Name)
		}
		if i > 0 && bytes.Compare(prev[:], dc.DeviceID[:]) >= 0 {
			t.Fatal("directory not sorted by device id")
		}
		prev = dc.DeviceID
		names = append(names, dc.Name)
	}
	return names
}

// waitDirectory waits for a push to p whose directory lists exactly want
// (as a set); pushes of an older directory may come first.
func waitDirectory(t *testing.T, p *fakepeer.Peer, want ...string) protocol.PolicyPush {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case pp := <-p.Pushes:
			got := directoryNames(t, p, pp)
			if sameSet(got, want) {
				return pp
			}
		case <-deadline:
			t.Fatalf("no push with directory %v", want)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		if m[s]--; m[s] < 0 {
			return false
		}
	}
	return true
}

// TestDCDirectory (SPEC.md 8.2 PolicyPush, 11.7): a DC agent's push lists
// the domain-joined devices of its tenant (not other tenants', not
// unjoined ones, not removed ones); it is pushed again, at the same
// policy version, when a domain-joined device enrols or is removed. A
// domain-joined workstation's push lists its tenant's DC agents; a
// removed or unjoined device gets an empty directory.
func TestDCDirectory(t *testing.T) {
	e := newEnv(t)
	for _, tn := range []string{"acme", "beta"} {
		_, _, err := e.con.AddTenant(e.ctx, tn, console.TenantChange{})
		e.must(err)
	}
	dc := e.enrolAs("acme", "DC1", true, true)
	// Right after enrolling, the DC agent is sent its directory (itself,
	// as DC1 is domain-joined) although its policy is current.
	waitDirectory(t, dc, "DC1")

	ws1 := e.enrolAs("acme", "WS1", true, false)
	laptop := e.enrolAs("acme", "LAPTOP", false, false)
	e.enrolAs("beta", "BETA-WS", true, false)
	waitDirectory(t, dc, "DC1", "WS1")
	ws2 := e.enrolAs("acme", "WS2", true, false)
	pp := waitDirectory(t, dc, "DC1", "WS1", "WS2")
	var pol protocol.Policy
	e.must(pp.Policies[0].VerifyEd25519(protocol.DocPolicy, dc.MSPKey, &pol))
	if pol.Tenant != "acme" {
		t.Fatalf("DC pushed tenant %s", pol.Tenant)
	}

	// The workstations learn their DC agent.
	waitDirectory(t, ws2, "DC1")
	waitDirectory(t, ws1, "DC1")

	// Removal: the new policy and a directory without WS1; the removed
	// and the unjoined device get no directory.
	_, rp, err := e.con.RemoveDevice(e.ctx, "WS1", "acme")
	e.must(err)
	waitDirectory(t, dc, "DC1", "WS2")
	waitDirectory(t, ws2, "DC1")
	for _, a := range []*fakepeer.Peer{ws1, laptop} {
		for {
			p := waitPush(t, a)
			var got protocol.Policy
			e.must(p.Policies[0].VerifyEd25519(protocol.DocPolicy, a.MSPKey, &got))
			if len(p.Directory) != 0 && (a == laptop || got.Version == rp.Version) {
				t.Fatalf("%s got a directory of %d with v%d", a.DeviceCert.Name, len(p.Directory), got.Version)
			}
			if got.Version == rp.Version {
				break
			}
		}
	}

	// Nothing changes: no further push to the DC agent.
	select {
	case p := <-dc.Pushes:
		if got := directoryNames(t, dc, p); !sameSet(got, []string{"DC1", "WS2"}) {
			t.Fatalf("unexpected push with directory %v", got)
		}
		// One more of the same directory may be in flight from a round
		// that listed targets before the ack was recorded; no third.
		select {
		case <-dc.Pushes:
			t.Fatal("DC agent pushed again without a change")
		case <-time.After(300 * time.Millisecond):
		}
	case <-time.After(300 * time.Millisecond):
	}
}
