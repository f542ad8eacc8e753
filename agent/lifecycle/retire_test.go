package lifecycle_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/store"
)

// TestRetire (SPEC.md 11.10): once the store records that the MSP removed
// the device, no session begins; Retire ends the running ones and leaves
// every account jitkey created disabled with a fresh password, records
// why, and has nothing left to do when it runs again (next start).
func TestRetire(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	nik, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil {
		t.Fatal(err)
	}
	sam, err := e.mgr.Begin(ctx, e.request("sam"))
	if err != nil {
		t.Fatal(err)
	}
	ann, err := e.mgr.Begin(ctx, e.request("ann"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.End(ctx, ann.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	// An account of jitkey's found enabled without a session (an
	// administrator enabled it by hand): Retire disables it too.
	if err := e.backend.Enable(ctx, "msp-ann"); err != nil {
		t.Fatal(err)
	}
	nikPW := nik.Password.Clone()
	if err := e.agent.Store.Update(ctx, func(tx *store.Tx) error {
		return tx.SetRemoval(store.Removal{Serial: e.agent.Device.Serial, Version: 2})
	}); err != nil {
		t.Fatal(err)
	}

	// No session begins any more, and nothing is reserved or created.
	names := e.backend.Names()
	if _, err := e.mgr.Begin(ctx, e.request("bob")); !errors.Is(err, lifecycle.ErrRemoved) {
		t.Fatalf("Begin after the removal = %v, want ErrRemoved", err)
	}
	if !slices.Equal(e.backend.Names(), names) {
		t.Fatalf("accounts %v after a refused Begin, had %v", e.backend.Names(), names)
	}

	before := len(e.events(t))
	if err := e.mgr.Retire(ctx, "device removed by the MSP"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"msp-nik", "msp-sam", "msp-ann"} {
		if e.info(t, name).Enabled {
			t.Errorf("%s enabled after Retire", name)
		}
	}
	if err := e.backend.Login(ctx, "msp-nik", nikPW); err == nil {
		t.Fatal("the issued password still logs in after Retire")
	}
	if e.mgr.Active(nik.Session) || e.mgr.Active(sam.Session) {
		t.Fatal("a session is still active after Retire")
	}
	recs := e.agent.Records(t)[before:]
	ended := map[string]bool{}
	for _, r := range recs {
		if r.Event == audit.AccountDisabled && r.Reason == "device removed by the MSP" {
			ended[r.Account] = true
		}
	}
	if !ended["msp-nik"] || !ended["msp-sam"] || !slices.Contains(agenttest.Events(recs), audit.AgentRecovered) {
		t.Fatalf("records after Retire: %v", agenttest.Events(recs))
	}

	// A restart: Recover and Retire again find nothing to do, and Begin
	// still refuses.
	n := len(e.events(t))
	m2 := e.newManager()
	if err := m2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m2.Retire(ctx, "device removed by the MSP"); err != nil {
		t.Fatal(err)
	}
	if got := len(e.events(t)); got != n {
		t.Fatalf("a second Retire recorded %d records", got-n)
	}
	if _, err := m2.Begin(ctx, e.request("nik")); !errors.Is(err, lifecycle.ErrRemoved) {
		t.Fatalf("Begin after a restart = %v, want ErrRemoved", err)
	}
}
