package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/auditview"
	"github.com/jitkey/jitkey/protocol"
)

// TestBreakGlassEscrow (SPEC.md 11.15): an agent escrows its recovery
// code in its FlowAudit session; the console stores it sealed (not in
// its database files in the clear), reveals it only with a recorded
// reveal, raises breakglass-used when the agent's record of its use
// arrives (text and JSON listings, log), marks the code used, and keeps
// the next generation the agent escrows after the records.
func TestBreakGlassEscrow(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11-L-PASSWORD")

	// Nothing escrowed yet: nothing to reveal, and no reveal recorded.
	var refusal *console.Refusal
	if _, err := e.con.RevealRecovery(e.ctx, "W11-L-PASSWORD", "alice"); !errors.As(err, &refusal) {
		t.Fatalf("reveal before any escrow: %v", err)
	}
	var first protocol.RecoveryCode
	_, _ = rand.Read(first[:])
	ack, err := agent.Escrow(e.ctx, protocol.RecoveryEscrow{Generation: 1, Code: first})
	e.must(err)
	if ack.Generation != 1 {
		t.Fatalf("ack %+v", ack)
	}
	// An older or equal generation changes nothing.
	var other protocol.RecoveryCode
	_, _ = rand.Read(other[:])
	if ack, err := agent.Escrow(e.ctx, protocol.RecoveryEscrow{Generation: 1, Code: other}); err != nil || ack.Generation != 1 {
		t.Fatalf("resent generation: %+v %v", ack, err)
	}
	if _, err := e.con.RevealRecovery(e.ctx, "W11-L-PASSWORD", ""); !errors.As(err, &refusal) {
		t.Fatalf("reveal without a name: %v", err)
	}
	r, err := e.con.RevealRecovery(e.ctx, "W11-L-PASSWORD", "alice")
	e.must(err)
	if r.Code != first || r.Generation != 1 || r.Used != 0 || len(r.Reveals) != 1 || r.Reveals[0].Admin != "alice" ||
		r.Reveals[0].Time != e.clock.Now().Unix() {
		t.Fatalf("reveal %+v", r)
	}
	if !e.logs.has("WARN BREAK-GLASS recovery code revealed") {
		t.Fatal("the reveal was not logged")
	}

	// The code is used at the computer; back online, the agent ships the
	// record, then escrows the next code in the same session.
	now := e.clock.Now().UnixMilli()
	used := agent.Record(protocol.AuditRecord{Time: now, Event: protocol.EventBreakGlassUsed, TechID: protocol.BreakGlassUsername,
		Username: protocol.BreakGlassUsername, Account: protocol.BreakGlassAccount, Method: protocol.MethodBreakGlass,
		Detail: "recovery code generation 1 used; generation 2 created, escrowed at the next contact with the console"})
	var second protocol.RecoveryCode
	_, _ = rand.Read(second[:])
	ack, err = agent.Escrow(e.ctx, protocol.RecoveryEscrow{Generation: 2, Code: second},
		protocol.AuditBatch{Records: []protocol.Signed{used}, PolicyVersion: 1, Name: "W11-L-PASSWORD", OS: "linux"})
	e.must(err)
	if ack.Generation != 2 {
		t.Fatalf("ack %+v", ack)
	}
	rows, alarms, err := e.con.Audit(e.ctx, console.AuditQuery{Tenant: "acme"})
	e.must(err)
	if len(rows) != 1 || len(alarms) != 1 || alarms[0].Kind != console.AlarmBreakGlassUsed || alarms[0].Seq != 1 {
		t.Fatalf("rows %d, alarms %+v", len(rows), alarms)
	}
	var text, js bytes.Buffer
	e.must(auditview.Text(&text, rows, alarms))
	e.must(auditview.JSON(&js, rows, alarms))
	if first, _, _ := strings.Cut(text.String(), "\n"); !strings.HasPrefix(first, "!!! BREAK-GLASS RECOVERY CODE USED on device W11-L-PASSWORD") {
		t.Fatalf("listing:\n%s", text.String())
	}
	if !strings.Contains(text.String(), "BREAK-GLASS: the recovery code of W11-L-PASSWORD was used for account msp-breakglass") {
		t.Fatalf("listing:\n%s", text.String())
	}
	if !strings.Contains(js.String(), `"kind":"breakglass-used"`) {
		t.Fatalf("JSON:\n%s", js.String())
	}
	if !e.logs.has("ERROR BREAK-GLASS RECOVERY CODE USED") {
		t.Fatal("the use was not logged")
	}
	r, err = e.con.RevealRecovery(e.ctx, "W11-L-PASSWORD", "bob")
	e.must(err)
	if r.Code != second || r.Generation != 2 || r.Used != 0 || len(r.Reveals) != 2 || r.Reveals[1].Admin != "bob" {
		t.Fatalf("reveal of the next code %+v", r)
	}

	// The agent reports generation 2 used too (its generation 3 not yet
	// escrowed): the reveal says the code shown was used.
	used2 := agent.Record(protocol.AuditRecord{Time: now + 1, Event: protocol.EventBreakGlassUsed, TechID: protocol.BreakGlassUsername,
		Username: protocol.BreakGlassUsername, Account: protocol.BreakGlassAccount, Method: protocol.MethodBreakGlass,
		Detail: "recovery code generation 2 used; generation 3 created, escrowed at the next contact with the console"})
	_, err = agent.Ship(e.ctx, protocol.AuditBatch{Records: []protocol.Signed{used2}, PolicyVersion: 1, Name: "W11-L-PASSWORD", OS: "linux"})
	e.must(err)
	r, err = e.con.RevealRecovery(e.ctx, "W11-L-PASSWORD", "bob")
	e.must(err)
	if r.Generation != 2 || r.Used != e.clock.Now().Unix() {
		t.Fatalf("reveal after the second use %+v", r)
	}
	if _, alarms, _ := e.con.Audit(e.ctx, console.AuditQuery{Tenant: "acme"}); len(alarms) != 2 {
		t.Fatalf("alarms %+v", alarms)
	}

	// Sealed at rest: neither code is in the console's files.
	ents, err := os.ReadDir(e.dir)
	e.must(err)
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join(e.dir, d.Name()))
		if err != nil {
			continue
		}
		for _, c := range []protocol.RecoveryCode{first, second} {
			if bytes.Contains(b, c[:]) || bytes.Contains(b, []byte(c.Text())) || bytes.Contains(b, []byte(hex.EncodeToString(c[:]))) {
				t.Fatalf("a recovery code in the clear in %s", d.Name())
			}
		}
	}
	// No code in the log.
	e.logs.mu.Lock()
	all := strings.Join(e.logs.full, "\n")
	e.logs.mu.Unlock()
	for _, c := range []protocol.RecoveryCode{first, second} {
		if strings.Contains(all, c.Text()) || strings.Contains(all, hex.EncodeToString(c[:])) {
			t.Fatal("a recovery code in the log")
		}
	}
	if !strings.Contains(all, "generation=2") {
		t.Fatalf("log without the escrow: %s", all)
	}
}

// TestBreakGlassEscrowRefused: generation 0 and an escrow
// from a removed device are refused; the console stores nothing.
func TestBreakGlassEscrowRefused(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11")
	var code protocol.RecoveryCode
	_, _ = rand.Read(code[:])
	if _, err := agent.Escrow(e.ctx, protocol.RecoveryEscrow{Generation: 0, Code: code}); err == nil {
		t.Fatal("generation 0 acknowledged")
	}
	var refusal *console.Refusal
	if _, err := e.con.RevealRecovery(e.ctx, "W11", "alice"); !errors.As(err, &refusal) {
		t.Fatalf("a code stored from generation 0: %v", err)
	}
	_, _, err = e.con.RemoveDevice(e.ctx, "W11", "")
	e.must(err)
	if _, err := agent.Escrow(e.ctx, protocol.RecoveryEscrow{Generation: 1, Code: code}); err == nil {
		t.Fatal("escrow from a removed device acknowledged")
	}
	e.logs.mu.Lock()
	full := strings.Join(e.logs.full, "\n")
	e.logs.mu.Unlock()
	if !strings.Contains(full, "recovery code generation 0") || !strings.Contains(full, "device removed") {
		t.Fatalf("the refusals were not logged with their reasons:\n%s", full)
	}
}
