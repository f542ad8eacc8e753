package push_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/protocol"
)

// TestPushReasonAndTicket (SPEC.md 6.4, R-61): a push approval without
// the reason the policy requires is refused and audited; one with reason
// and a matching ticket logs in and the audit record carries both.
func TestPushReasonAndTicket(t *testing.T) {
	governed := func(p *protocol.Policy) { p.RequireReason, p.TicketPattern = true, `INC-[0-9]+` }
	t.Run("missing reason", func(t *testing.T) {
		e := newEnv(t, governed)
		numbers := make(chan uint8, 1)
		e.serve(t, e.nik, func(protocol.PushRequest) agenttest.PushReply {
			return agenttest.PushReply{Pick: uint16(<-numbers), Tamper: func(a *protocol.Approval) { a.Ticket = "INC-7" }}
		})
		r, n := begin(t, e.srv, "nik@msp.example")
		numbers <- n
		if _, err := result(t, r); !errors.Is(err, push.ErrNoAnswer) {
			t.Fatalf("err %v", err)
		}
		if rec := e.lastRecord(t, audit.LoginDenied); !strings.Contains(rec.Reason, protocol.ErrJustification.Error()) {
			t.Fatalf("record %+v", rec)
		}
		if acc, err := e.backend.Lookup(t.Context(), "msp-nik"); err == nil && acc.Enabled {
			t.Fatal("account enabled without the required reason")
		}
	})
	t.Run("reason and ticket", func(t *testing.T) {
		e := newEnv(t, governed)
		numbers := make(chan uint8, 1)
		e.serve(t, e.nik, func(protocol.PushRequest) agenttest.PushReply {
			return agenttest.PushReply{Pick: uint16(<-numbers), Tamper: func(a *protocol.Approval) { a.Reason, a.Ticket = "patching", "INC-7" }}
		})
		r, n := begin(t, e.srv, "nik@msp.example")
		numbers <- n
		if _, err := result(t, r); err != nil {
			t.Fatal(err)
		}
		if rec := e.lastRecord(t, audit.LoginApproved); rec.Justification != "patching" || rec.Ticket != "INC-7" {
			t.Fatalf("record %+v", rec)
		}
	})
}
