package server_test

import (
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/internal/fakepeer"
	"github.com/jitkey/jitkey/protocol"
)

// BenchmarkAuditIngest measures verifying and storing audit records, in
// batches of console.MaxAuditBatch, through the console core (no network).
func BenchmarkAuditIngest(b *testing.B) {
	e := newEnvTB(b)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	if err != nil {
		b.Fatal(err)
	}
	agent := e.enrolTB(b, "acme", "W11")
	mb := fakepeer.Mailbox(agent.ID)
	b.ResetTimer()
	for n := 0; n < b.N; n += console.MaxAuditBatch {
		recs := make([]protocol.Signed, 0, console.MaxAuditBatch)
		for range min(console.MaxAuditBatch, b.N-n) {
			recs = append(recs, agent.Record(protocol.AuditRecord{Time: time.Now().UnixMilli(), Event: "login.approved", Username: "nik", Account: "msp-nik"}))
		}
		res, err := e.con.IngestAudit(e.ctx, mb, &protocol.AuditBatch{Records: recs, PolicyVersion: 1})
		if err != nil || res.Alarm != nil || res.Stored != len(recs) {
			b.Fatalf("ingest: %v %+v", err, res)
		}
	}
}

// BenchmarkEnroll measures one enrollment end to end over the in-memory
// relay: handshake, token use, certificate signing, one transaction.
func BenchmarkEnroll(b *testing.B) {
	e := newEnvTB(b)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := e.con.NewToken(e.ctx, "acme", time.Hour, console.MaxTokenUses)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		a, _ := e.peer("relay-b:443")
		if _, err := a.Enroll(e.ctx, tok, "dev", func() int64 { return time.Now().Unix() }); err != nil {
			b.Fatalf("enroll %d: %v", i, err)
		}
	}
}
