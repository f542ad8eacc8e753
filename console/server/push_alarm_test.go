package server_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/auditview"
	"github.com/jitkey/jitkey/protocol"
)

// TestPushReportedAlarm: a push.reported record (SPEC.md 11.5) is stored
// like any other and raises an alarm, which the audit listing shows
// before the records.
func TestPushReportedAlarm(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11-L-PASSWORD")
	now := e.clock.Now().UnixMilli()
	r1 := agent.Record(protocol.AuditRecord{Time: now, Event: "login.approved", TechID: "t-1", Username: "nik", Method: protocol.MethodQR, Online: true})
	r2 := agent.Record(protocol.AuditRecord{Time: now + 1, Event: protocol.EventPushReported, TechID: "t-1", Username: "nik",
		Method: protocol.MethodPush, Online: true, Reason: "the technician reported a push login they did not request",
		Detail: "push logins blocked until 2026-12-06T19:00:00Z"})
	acks, err := agent.Ship(e.ctx, protocol.AuditBatch{Records: []protocol.Signed{r1, r2}, PolicyVersion: 1, Name: "W11-L-PASSWORD", OS: "linux"})
	e.must(err)
	if acks[0].UpTo != 2 {
		t.Fatalf("ack up to %d, want 2", acks[0].UpTo)
	}
	rows, alarms, err := e.con.Audit(e.ctx, console.AuditQuery{Tenant: "acme"})
	e.must(err)
	if len(rows) != 2 || len(alarms) != 1 || alarms[0].Kind != console.AlarmPushReported || alarms[0].Seq != 2 {
		t.Fatalf("rows %d, alarms %+v", len(rows), alarms)
	}
	var out bytes.Buffer
	e.must(auditview.Text(&out, rows, alarms))
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, "!!! PUSH LOGIN REPORTED AS FRAUD on device W11-L-PASSWORD") || !strings.Contains(first, "nik reported") {
		t.Fatalf("listing:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "nik reported a push login on W11-L-PASSWORD as not theirs") {
		t.Fatalf("listing:\n%s", out.String())
	}
	if !e.logs.has("ERROR push login reported as fraud") {
		t.Fatal("the report was not logged")
	}
}
