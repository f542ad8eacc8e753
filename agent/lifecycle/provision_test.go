package lifecycle_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/jitkey/jitkey/agent/accounts/accountstest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
)

// TestProvision: a provisioned account exists before the first login,
// disabled, not an administrator, with jitkey's marker; provisioning again
// changes nothing; the first login then uses it; an account under the
// name that jitkey did not create is left alone.
func TestProvision(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	name, err := e.mgr.Provision(ctx, "id-nik", "nik", &e.policy)
	if err != nil || name != "msp-nik" {
		t.Fatalf("Provision = %q %v", name, err)
	}
	i := e.info(t, "msp-nik")
	if i.Enabled || i.Admin || !i.IsJIT() {
		t.Fatalf("provisioned account %+v: want disabled, not admin, jitkey's", i)
	}
	if _, err := e.mgr.Provision(ctx, "id-nik", "nik", &e.policy); err != nil {
		t.Fatal(err)
	}
	if n := e.backend.Calls(accountstest.OpCreate); n != 1 {
		t.Fatalf("Create called %d times", n)
	}
	g, err := e.mgr.Begin(ctx, e.request("nik"))
	if err != nil || g.Account != "msp-nik" {
		t.Fatalf("first login on the provisioned account: %q %v", g.Account, err)
	}
	// Provisioning during the session leaves it alone.
	if _, err := e.mgr.Provision(ctx, "id-nik", "nik", &e.policy); err != nil || !e.info(t, "msp-nik").Enabled {
		t.Fatalf("Provision during a session: %v, enabled %v", err, e.info(t, "msp-nik").Enabled)
	}
	if err := e.mgr.End(ctx, g.Session, audit.SessionEnded); err != nil {
		t.Fatal(err)
	}
	want := []string{"account.created", "account.enabled", "session.ended", "account.disabled"}
	if got := e.events(t); !slices.Equal(got, want) {
		t.Fatalf("audit %v, want %v", got, want)
	}

	// Someone else's account under the next name: not touched.
	f := e.makeForeign(t, "msp-sam", "Sam the admin")
	if _, err := e.mgr.Provision(ctx, "id-sam", "sam", &e.policy); err != nil && !errors.Is(err, lifecycle.ErrForeign) {
		t.Fatalf("Provision next to a foreign account: %v", err)
	}
	e.untouched(t, f)

}
