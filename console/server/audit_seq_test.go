package server_test

import (
	"testing"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/protocol"
)

// TestAuditForgedHugeSeq: a record that fails its signature check and
// claims a sequence number SQLite cannot store must not roll back the good
// records before it, nor the alarm.
func TestAuditForgedHugeSeq(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11-L-PASSWORD")
	r1 := agent.Record(protocol.AuditRecord{Time: e.clock.Now().UnixMilli(), Event: "login.approved", TechID: "t-1", Username: "nik"})
	fid, _, _ := fakepeer.Keys()
	forged, err := protocol.SignEd25519(protocol.DocAudit, &protocol.AuditRecord{DeviceID: agent.DeviceCert.DeviceID, Seq: 1<<63 + 5, Event: "login.approved"}, fid)
	e.must(err)
	acks, err := agent.Ship(e.ctx, protocol.AuditBatch{Records: []protocol.Signed{r1, forged}, PolicyVersion: 1, Name: "W11-L-PASSWORD", OS: "linux"})
	e.must(err)
	if acks[0].UpTo != 1 {
		t.Errorf("ack up to %d, want 1", acks[0].UpTo)
	}
	rows, alarms, err := e.con.Audit(e.ctx, console.AuditQuery{})
	e.must(err)
	if len(rows) != 1 {
		t.Errorf("stored %d records, want 1", len(rows))
	}
	if len(alarms) != 1 || alarms[0].Kind != console.AlarmBadSignature {
		t.Errorf("alarms %+v, want one %s", alarms, console.AlarmBadSignature)
	}
}
