package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/auditview"
	"github.com/jitkey/jitkey/protocol"
)

// receipt signs an end receipt of account with key, as the agent does.
func receipt(t *testing.T, key ed25519.PrivateKey, dev protocol.DeviceID, account string, ended time.Time) []byte {
	t.Helper()
	s, err := protocol.SignEd25519(protocol.DocEndReceipt, &protocol.EndReceipt{DeviceID: dev, Account: account, TechID: "t-1", Username: "nik",
		Ended: ended.Unix(), Event: "session.expired", Reason: "maximum session length reached", Disabled: true, PasswordRotated: true, ProcessesEnded: true}, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEndReceipts (SPEC.md 6.6, R-62): the console verifies the end
// receipt in an account.disabled record and shows it; a receipt signed
// by another key raises receipt-forged; a session it saw begin without a
// receipt ReceiptGrace after its cap raises receipt-missing, once.
func TestEndReceipts(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.con.AddTenant(e.ctx, "acme", console.TenantChange{})
	e.must(err)
	agent := e.enrol("acme", "W11-L-PASSWORD")
	dev := agent.DeviceCert.DeviceID
	now := e.clock.Now()
	until := "until " + now.Add(time.Hour).UTC().Format(time.RFC3339)
	ship := func(recs ...protocol.AuditRecord) {
		t.Helper()
		var signed []protocol.Signed
		for _, r := range recs {
			signed = append(signed, agent.Record(r))
		}
		_, err := agent.Ship(e.ctx, protocol.AuditBatch{Records: signed, PolicyVersion: 1, Name: "W11-L-PASSWORD", OS: "linux"})
		e.must(err)
	}
	ms := now.UnixMilli()
	// nik: enabled, then ended with a valid receipt.
	ship(protocol.AuditRecord{Time: ms, Event: "account.enabled", Username: "nik", Account: "msp-nik", Detail: until},
		protocol.AuditRecord{Time: ms + 1, Event: "account.disabled", Username: "nik", Account: "msp-nik",
			Reason: "maximum session length reached", Receipt: receipt(t, agent.ID, dev, "msp-nik", now.Add(time.Hour))})
	// ann: ended with a receipt signed by another key (forged).
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	ship(protocol.AuditRecord{Time: ms + 2, Event: "account.enabled", Username: "ann", Account: "msp-ann", Detail: until},
		protocol.AuditRecord{Time: ms + 3, Event: "account.disabled", Username: "ann", Account: "msp-ann",
			Receipt: receipt(t, other, dev, "msp-ann", now)})
	// bob: a receipt of another account does not close his session.
	ship(protocol.AuditRecord{Time: ms + 4, Event: "account.enabled", Username: "bob", Account: "msp-bob", Detail: until},
		protocol.AuditRecord{Time: ms + 5, Event: "account.disabled", Username: "bob", Account: "msp-bob",
			Receipt: receipt(t, agent.ID, dev, "msp-nik", now)})
	// eve: enabled, never ended.
	ship(protocol.AuditRecord{Time: ms + 6, Event: "account.enabled", Username: "eve", Account: "msp-eve", Detail: until})

	kinds := func() map[string][]uint64 {
		_, alarms, err := e.con.Audit(e.ctx, console.AuditQuery{Tenant: "acme"})
		e.must(err)
		m := map[string][]uint64{}
		for _, a := range alarms {
			m[a.Kind] = append(m[a.Kind], a.Seq)
		}
		return m
	}
	if k := kinds(); len(k[console.AlarmReceiptForged]) != 2 || len(k[console.AlarmReceiptMissing]) != 0 {
		t.Fatalf("alarms before the cap: %v", k)
	}
	e.clock.Add(time.Hour + console.ReceiptGrace - time.Second)
	if n, err := e.con.CheckReceipts(e.ctx); err != nil || n != 0 {
		t.Fatalf("overdue within the grace: %d %v", n, err)
	}
	e.clock.Add(2 * time.Second)
	k := kinds()
	// ann (forged receipt: seq 3), bob (wrong account: seq 5), eve (seq 7).
	if got := k[console.AlarmReceiptMissing]; len(got) != 3 || got[0] != 3 || got[1] != 5 || got[2] != 7 {
		t.Fatalf("receipt-missing alarms at %v, want the sessions enabled at 3, 5, 7", got)
	}
	if got := k[console.AlarmReceiptForged]; len(got) != 2 || got[0] != 4 || got[1] != 6 {
		t.Fatalf("receipt-forged alarms at %v", got)
	}
	if k2 := kinds(); len(k2[console.AlarmReceiptMissing]) != 3 {
		t.Fatalf("alarms repeated: %v", k2)
	}
	rows, alarms, err := e.con.Audit(e.ctx, console.AuditQuery{Tenant: "acme"})
	e.must(err)
	var out bytes.Buffer
	e.must(auditview.Text(&out, rows, alarms))
	for _, want := range []string{
		"!!! END RECEIPT MISSING on device W11-L-PASSWORD",
		"!!! END RECEIPT FORGED on device W11-L-PASSWORD",
		"msp-nik was disabled on W11-L-PASSWORD (maximum session length reached); end receipt: disabled, password rotated, processes ended",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, out.String())
		}
	}
	if !e.logs.has("ERROR END RECEIPT FORGED") {
		t.Error("the forged receipt was not logged")
	}
}
