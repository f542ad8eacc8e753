package lifecycle_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/protocol"
)

// TestExternalSessions (SPEC.md 11.7 step 4): a domain session ends on
// End (Finish called once, session.ended), a failed Finish is retried by
// Tick until it succeeds, a session past its deadline ends by itself
// (session.expired), and one whose DC agent stays unreachable past the
// deadline is dropped with that said in the audit. Local sessions are
// untouched; a second End finds no session; a policy that revokes the
// technician ends the session (Reauthorize).
func TestExternalSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var calls []string
	failing := true
	newExt := func(name string, deadline time.Time, fail *bool) lifecycle.External {
		var s protocol.SessionID
		rand.Read(s[:])
		return lifecycle.External{
			Session: s, Account: `JITKEY\` + name, Deadline: deadline,
			Record: protocol.AuditRecord{TechID: "id-nik", Username: "nik", Action: protocol.ActionLogon},
			Finish: func(context.Context) error {
				calls = append(calls, name)
				if fail != nil && *fail {
					return errors.New("dc unreachable")
				}
				return nil
			},
		}
	}
	never := false
	a := newExt("a", e.clock.Now().Add(time.Hour), &never)
	b := newExt("b", e.clock.Now().Add(time.Hour), &failing)
	c := newExt("c", e.clock.Now().Add(time.Minute), &never)
	d := newExt("d", e.clock.Now().Add(2*time.Minute), &failing)
	for _, x := range []lifecycle.External{a, b, c, d} {
		e.mgr.BeginExternal(x)
	}

	if err := e.mgr.End(ctx, a.Session, "session.ended"); err != nil {
		t.Fatal(err)
	}
	if err := e.mgr.End(ctx, a.Session, "session.ended"); !errors.Is(err, lifecycle.ErrNoSession) {
		t.Fatalf("second End: %v, want ErrNoSession", err)
	}
	if err := e.mgr.End(ctx, b.Session, "session.ended"); err == nil {
		t.Fatal("End with the DC agent unreachable reported success")
	}
	_ = e.mgr.Tick(ctx) // b retried, still failing
	failing = false
	if err := e.mgr.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := slices.Clone(calls); !slices.Equal(got, []string{"a", "b", "b", "b"}) {
		t.Fatalf("Finish calls %v", got)
	}
	failing = true
	e.clock.Add(90 * time.Second) // c past its deadline
	_ = e.mgr.Tick(ctx)
	e.clock.Add(time.Minute) // d past its deadline, DC agent unreachable
	_ = e.mgr.Tick(ctx)
	_ = e.mgr.Tick(ctx) // nothing left
	if got := calls[4:]; !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("Finish calls after the deadlines %v", got)
	}

	// A revocation ends a domain session at once.
	msp := agenttest.NewMSP(t, "acme")
	tech := msp.NewPhone(t, "nik", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
	r := newExt("r", e.clock.Now().Add(time.Hour), &never)
	r.Cert = &tech.Cert
	e.mgr.BeginExternal(r)
	pol := e.policy
	if n, err := e.mgr.Reauthorize(ctx, &pol, &e.agent.Device); err != nil || n != 0 {
		t.Fatalf("reauthorize, technician admitted: %d %v", n, err)
	}
	pol.Revoked = []uint64{tech.Cert.Serial}
	if n, err := e.mgr.Reauthorize(ctx, &pol, &e.agent.Device); err != nil || n != 1 || calls[len(calls)-1] != "r" {
		t.Fatalf("reauthorize, technician revoked: %d %v, calls %v", n, err, calls)
	}

	var got []string
	for _, r := range e.agent.Records(t) {
		got = append(got, r.Event+" "+r.Account+" "+r.Detail)
	}
	want := []string{
		`session.ended JITKEY\a domain account; no local session to log off; DC agent told`,
		`session.ended JITKEY\b domain account; no local session to log off; DC agent told`,
		`session.expired JITKEY\c domain account; no local session to log off; DC agent told`,
		`session.expired JITKEY\d domain account; no local session to log off; DC agent not reached, it ends the session at its deadline`,
		`session.ended JITKEY\r domain account; no local session to log off; DC agent told`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit:\n%q\nwant\n%q", got, want)
	}
}
