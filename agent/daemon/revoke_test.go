package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/daemon"

	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/server"
)

// TestRevocationEndsLiveSession (SPEC.md 4, R-47; review finding F1): a
// policy that revokes a technician's certificate ends that technician's
// live session before the agent acknowledges the policy: the account is
// disabled, the password issued for the session no longer works, the
// reason is audited and shipped. Another technician's session goes on.
func TestRevocationEndsLiveSession(t *testing.T) {
	w := newWorld(t, server.Limits{})
	nik, nikMux := w.phone(t, "nik")
	_, nikCred := w.login(t, nik, nikMux)
	nikPW := password.FromBytes(nikCred.Password)
	ann, annMux := w.phone(t, "ann")
	_, annCred := w.login(t, ann, annMux)
	annPW := password.FromBytes(annCred.Password)

	pol := w.msp.Policy(2)
	pol.Revoked = []uint64{nik.Cert.Serial}
	ack, err := w.console.PushPolicy(t.Context(), w.info.Addr, w.console.SetPolicy(t, pol))
	if err != nil || len(ack.Versions) != 1 || ack.Versions[0].Version != 2 {
		t.Fatalf("push of the revoking policy: %+v %v", ack, err)
	}
	// The ack came after the policy was applied and the sessions decided
	// again: no waiting.
	if err := w.backend.Login(t.Context(), nikCred.Username, nikPW); err == nil {
		t.Fatal("the revoked technician's password still logs in")
	}
	if i, err := w.backend.Lookup(t.Context(), nikCred.Username); err != nil || i.Enabled {
		t.Fatalf("%s after the revocation: %+v %v", nikCred.Username, i, err)
	}
	if err := w.backend.Login(t.Context(), annCred.Username, annPW); err != nil {
		t.Fatalf("ann's session ended by nik's revocation: %v", err)
	}
	eventually(t, "the withdrawal's record at the console", func() bool {
		for _, r := range w.console.Records(w.info.Addr.Mailbox) {
			if r.Event == "account.disabled" && r.Account == nikCred.Username &&
				r.Reason == "access withdrawn: technician certificate revoked" && r.TechID == nik.Cert.TechID {
				return true
			}
		}
		return false
	})
}

// TestStalledPolicyPushReturnsSlot (review finding F6): a policy push
// that stops after its handshake holds one of the agent's session slots
// only until the push timeout; then a real push gets through. Before,
// such sessions held their slots until the agent restarted.
func TestStalledPolicyPushReturnsSlot(t *testing.T) {
	const slots = 2
	w := newWorldWith(t, server.Limits{}, func(c *daemon.Config) {
		c.PushTimeout = 300 * time.Millisecond
		c.MaxSessions = slots
		c.ShipInterval = time.Hour // the audit shipper takes no slot meanwhile
	})
	for held := 0; held < slots; {
		// The agent's first audit shipment may hold a slot for a moment.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		c, err := w.console.DialPolicy(ctx, w.info.Addr)
		cancel()
		if err != nil {
			t.Logf("stalled push: %v", err)
			continue
		}
		defer c.Close()
		held++
	}
	signed := w.console.SetPolicy(t, w.msp.Policy(2))
	deadline := time.Now().Add(15 * time.Second)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		ack, err := w.console.PushPolicy(ctx, w.info.Addr, signed)
		cancel()
		if err == nil && len(ack.Versions) == 1 && ack.Versions[0].Version == 2 {
			t.Logf("push acknowledged at attempt %d", attempt)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no push gets through while stalled pushes hold the slots: %+v %v", ack, err)
		}
	}
}

// TestProvisionAccounts: with ProvisionAccounts, applying a policy creates
// the accounts of the technicians it admits here, disabled, before any
// login (sshd looks an account up before PAM runs); a technician the
// share list leaves out gets none.
func TestProvisionAccounts(t *testing.T) {
	w := newWorldWith(t, server.Limits{}, func(c *daemon.Config) { c.ProvisionAccounts = true })
	pol := w.msp.Policy(2)
	pol.Roster = []protocol.RosterEntry{
		{Serial: 901, TechID: "t-bob", Username: "bob", Role: protocol.RoleReadOnly},
		{Serial: 902, TechID: "t-nik", Username: "nik", Role: protocol.RoleAdmin},
	}
	pol.Shares = []protocol.DeviceShare{{DeviceID: w.info.DeviceID, Entries: []string{protocol.ShareAllAdmins}}}
	signed := w.console.SetPolicy(t, pol)
	eventually(t, "the policy applied", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		ack, err := w.console.PushPolicy(ctx, w.info.Addr, signed)
		return err == nil && len(ack.Versions) == 1 && ack.Versions[0].Version == 2
	})
	i, err := w.backend.Lookup(t.Context(), "msp-nik")
	if err != nil || i.Enabled || i.Admin || !i.IsJIT() {
		t.Fatalf("msp-nik after the policy: %+v %v; want provisioned, disabled", i, err)
	}
	if _, err := w.backend.Lookup(t.Context(), "msp-bob"); err == nil {
		t.Fatal("an account for a technician the share list leaves out")
	}
	// The break-glass account too (SPEC.md 11.15).
	if i, err := w.backend.Lookup(t.Context(), protocol.BreakGlassAccount); err != nil || i.Enabled || i.Admin || !i.IsJIT() {
		t.Fatalf("%s after the policy: %+v %v; want provisioned, disabled", protocol.BreakGlassAccount, i, err)
	}
}
