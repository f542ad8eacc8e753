package audit_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

func appendN(t *testing.T, a *agenttest.Agent, n int) []protocol.Signed {
	t.Helper()
	for i := range n {
		err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
			return a.Audit.Append(tx, protocol.AuditRecord{Event: audit.LoginDenied, Reason: string(rune('a' + i))})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows []store.AuditRow
	_ = a.Store.View(t.Context(), func(tx *store.Tx) error { rows, _ = tx.Audit(0, 100, false); return nil })
	s, err := audit.Decode(rows)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChain(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	recs := appendN(t, a, 4)
	key := a.Keys.IdentityPublic()
	got, err := audit.Verify(key, 0, [32]byte{}, recs)
	if err != nil || len(got) != 4 || got[3].Seq != 4 || got[0].DeviceID != a.Device.DeviceID {
		t.Fatalf("Verify: %v %+v", err, got)
	}
	// Resuming after record 2.
	h2, _ := recs[1].Hash()
	if _, err := audit.Verify(key, 2, h2, recs[2:]); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]protocol.Signed{
		"gap":           {recs[0], recs[2]},
		"reordered":     {recs[1], recs[0]},
		"dropped first": recs[1:],
	}
	for name, rs := range tests {
		if _, err := audit.Verify(key, 0, [32]byte{}, rs); !errors.Is(err, audit.ErrBrokenChain) {
			t.Errorf("%s: %v, want ErrBrokenChain", name, err)
		}
	}
	tampered := recs[0]
	tampered.Body = append([]byte(nil), tampered.Body...)
	tampered.Body[len(tampered.Body)-1] ^= 1
	if _, err := audit.Verify(key, 0, [32]byte{}, []protocol.Signed{tampered}); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
	other := agenttest.NewAgent(t, msp, nil, store.Config{})
	if _, err := audit.Verify(other.Keys.IdentityPublic(), 0, [32]byte{}, recs); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("other key: %v", err)
	}
}

// TestAppendClips: text fields are cut to MaxFieldLen at a character
// boundary, marked, made valid UTF-8, and a record with every field at its
// longest still fits a batch many times over.
func TestAppendClips(t *testing.T) {
	msp := agenttest.NewMSP(t, "acme")
	a := agenttest.NewAgent(t, msp, nil, store.Config{})
	long := strings.Repeat("é", audit.MaxFieldLen) // 2 bytes each: cuts land mid-character
	rec := protocol.AuditRecord{Event: audit.LoginDenied, TechID: long, Username: long, Account: long, Reason: long, Detail: long,
		Method: protocol.MethodQR, Online: true, Action: protocol.ActionElevate}
	short := protocol.AuditRecord{Event: audit.LoginDenied, Username: "bad\xffname", Reason: "fine"}
	if err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
		if err := a.Audit.Append(tx, rec); err != nil {
			return err
		}
		return a.Audit.Append(tx, short)
	}); err != nil {
		t.Fatal(err)
	}
	var rows []store.AuditRow
	if err := a.Store.View(t.Context(), func(tx *store.Tx) error {
		var err error
		rows, err = tx.Audit(0, 10, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got := a.Records(t)
	for _, f := range []string{got[0].TechID, got[0].Username, got[0].Account, got[0].Reason, got[0].Detail} {
		if len(f) > audit.MaxFieldLen || !strings.HasSuffix(f, audit.Truncated) || !utf8.ValidString(f) ||
			!strings.HasPrefix(long, strings.TrimSuffix(f, audit.Truncated)) {
			t.Fatalf("clipped field of %d bytes: %q", len(f), f[max(0, len(f)-40):])
		}
	}
	if got[1].Username != "bad\uFFFDname" || got[1].Reason != "fine" {
		t.Fatalf("short record %q %q", got[1].Username, got[1].Reason)
	}
	// The largest record, in a batch with the largest status.
	s, err := audit.Decode(rows[:1])
	if err != nil {
		t.Fatal(err)
	}
	b := protocol.AuditBatch{Records: s, PolicyVersion: 1 << 62, Name: strings.Repeat("n", protocol.MaxNameLen), OS: "linux"}
	enc, err := protocol.EncodeMsg(protocol.MsgAuditBatch, &b)
	if err != nil || len(rows[0].Record) > 6<<10 || len(enc) > audit.MaxBatchBytes {
		t.Fatalf("largest record: %d bytes, batch %d bytes (%v)", len(rows[0].Record), len(enc), err)
	}
	t.Logf("largest record: %d bytes", len(rows[0].Record))
}

// TestReceiptClipped: a receipt's text fields are cut to
// MaxReceiptFieldLen, so an account.disabled record with the longest
// fields and a receipt stays under 6 KiB; the receipt verifies.
func TestReceiptClipped(t *testing.T) {
	a := agenttest.NewAgent(t, agenttest.NewMSP(t, "acme"), nil, store.Config{})
	long := strings.Repeat("x", 5000)
	b, err := a.Audit.Receipt(protocol.EndReceipt{Account: long, TechID: long, Username: long, Event: long, Reason: long, Ended: 7})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := protocol.VerifyEndReceipt(b, a.Keys.IdentityPublic(), a.Device.DeviceID, strings.Repeat("x", audit.MaxReceiptFieldLen-len(audit.Truncated))+audit.Truncated)
	if err != nil || rc.Ended != 7 || len(rc.Reason) != audit.MaxReceiptFieldLen {
		t.Fatalf("receipt %+v: %v", rc, err)
	}
	if err := a.Store.Update(t.Context(), func(tx *store.Tx) error {
		return a.Audit.Append(tx, protocol.AuditRecord{Event: audit.AccountDisabled, TechID: long, Username: long, Account: long, Reason: long, Receipt: b})
	}); err != nil {
		t.Fatal(err)
	}
	var rows []store.AuditRow
	if err := a.Store.View(t.Context(), func(tx *store.Tx) error {
		var err error
		rows, err = tx.Audit(0, 10, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(rows[len(rows)-1].Record); n > 6<<10 {
		t.Fatalf("record with a receipt: %d bytes", n)
	}
}
