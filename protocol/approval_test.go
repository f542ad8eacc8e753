package protocol

import (
	"bytes"
	"testing"
	"time"
)

func TestActionName(t *testing.T) {
	want := map[uint8]string{0: "", ActionLogon: "logon", ActionUnlock: "unlock", ActionElevate: "elevate", ActionSudo: "sudo", 5: ""}
	for a, n := range want {
		if got := ActionName(a); got != n {
			t.Errorf("ActionName(%d) = %q, want %q", a, got, n)
		}
	}
}

func TestApprovalMatch(t *testing.T) {
	hh := bytes.Repeat([]byte{7}, 32)
	base := Approval{
		Serial: 42, DeviceID: DeviceID{1}, Session: SessionID{2}, HandshakeHash: hh,
		Action: ActionLogon, Account: AccountDefault, Decision: DecisionApprove,
		Time: testNow.Unix(), Nonce: [16]byte{3},
	}
	expect := ApprovalExpect{
		Serial: 42, DeviceID: DeviceID{1}, Session: SessionID{2}, HandshakeHash: hh,
		Action: ActionLogon, Now: testNow,
	}
	selective := func(k uint8) bool { return k == AccountLocal || k == AccountDomain }
	tests := []struct {
		name string
		a    func(*Approval)
		e    func(*ApprovalExpect)
		want error
	}{
		{"match", nil, nil, nil},
		{"deny matches", func(a *Approval) { a.Decision = DecisionDeny }, nil, nil},
		{"serial", func(a *Approval) { a.Serial = 43 }, nil, ErrApprovalMismatch},
		{"device", func(a *Approval) { a.DeviceID[0] = 9 }, nil, ErrApprovalMismatch},
		{"session", func(a *Approval) { a.Session[15] = 1 }, nil, ErrApprovalMismatch},
		{"handshake hash", func(a *Approval) { a.HandshakeHash = bytes.Repeat([]byte{8}, 32) }, nil, ErrApprovalMismatch},
		{"handshake hash short", func(a *Approval) { a.HandshakeHash = hh[:31] }, nil, ErrApprovalMismatch},
		{"expected hash empty", func(a *Approval) { a.HandshakeHash = nil }, func(e *ApprovalExpect) { e.HandshakeHash = nil }, ErrApprovalMismatch},
		{"action", func(a *Approval) { a.Action = ActionElevate }, nil, ErrApprovalMismatch},
		{"number", func(a *Approval) { a.Number = 17 }, nil, ErrApprovalMismatch},
		{"number expected", nil, func(e *ApprovalExpect) { e.Number = 17 }, ErrApprovalMismatch},
		{"number matches", func(a *Approval) { a.Number = 17 }, func(e *ApprovalExpect) { e.Number = 17 }, nil},
		{"decision 0", func(a *Approval) { a.Decision = 0 }, nil, ErrApprovalMismatch},
		{"decision 3", func(a *Approval) { a.Decision = 3 }, nil, ErrApprovalMismatch},
		{"account not offered", func(a *Approval) { a.Account = AccountDomain }, nil, ErrApprovalMismatch},
		{"account offered", func(a *Approval) { a.Account = AccountDomain }, func(e *ApprovalExpect) { e.AllowAccount = selective }, nil},
		{"default not offered in selective", nil, func(e *ApprovalExpect) { e.AllowAccount = selective }, ErrApprovalMismatch},
		{"old within skew", func(a *Approval) { a.Time -= int64(MaxApprovalSkew / time.Second) }, nil, nil},
		{"future within skew", func(a *Approval) { a.Time += int64(MaxApprovalSkew / time.Second) }, nil, nil},
		{"stale", func(a *Approval) { a.Time -= int64(MaxApprovalSkew/time.Second) + 1 }, nil, ErrStale},
		{"future", func(a *Approval) { a.Time += int64(MaxApprovalSkew/time.Second) + 1 }, nil, ErrStale},
		{"time zero", func(a *Approval) { a.Time = 0 }, nil, ErrStale},
		{"reason required, given", func(a *Approval) { a.Reason = "disk full" }, func(e *ApprovalExpect) { e.RequireReason = true }, nil},
		{"reason required, missing", nil, func(e *ApprovalExpect) { e.RequireReason = true }, ErrJustification},
		{"reason required, deny without", func(a *Approval) { a.Decision = DecisionDeny }, func(e *ApprovalExpect) { e.RequireReason = true }, nil},
		{"ticket matches", func(a *Approval) { a.Ticket = "INC-42" }, func(e *ApprovalExpect) { e.TicketPattern = `INC-[0-9]+` }, nil},
		{"ticket missing", nil, func(e *ApprovalExpect) { e.TicketPattern = `INC-[0-9]+` }, ErrJustification},
		{"ticket unanchored prefix", func(a *Approval) { a.Ticket = "xINC-42" }, func(e *ApprovalExpect) { e.TicketPattern = `INC-[0-9]+` }, ErrJustification},
		{"ticket alternation stays anchored", func(a *Approval) { a.Ticket = "INC-42 junk" }, func(e *ApprovalExpect) { e.TicketPattern = `INC-[0-9]+|CHG-[0-9]+` }, ErrJustification},
		{"ticket pattern invalid fails closed", func(a *Approval) { a.Ticket = "x" }, func(e *ApprovalExpect) { e.TicketPattern = `(` }, ErrJustification},
		{"reason too long", func(a *Approval) { a.Reason = string(bytes.Repeat([]byte{'a'}, MaxReasonLen+1)) }, nil, ErrJustification},
		{"reason at bound", func(a *Approval) { a.Reason = string(bytes.Repeat([]byte{'a'}, MaxReasonLen)) }, nil, nil},
		{"ticket too long", func(a *Approval) { a.Ticket = string(bytes.Repeat([]byte{'a'}, MaxTicketLen+1)) }, nil, ErrJustification},
		{"reason control char on deny", func(a *Approval) { a.Decision, a.Reason = DecisionDeny, "a\x1b[2J" }, nil, ErrJustification},
		{"mismatch reported before staleness", func(a *Approval) { a.Time, a.Action = 0, ActionSudo }, nil, ErrApprovalMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, e := base, expect
			a.HandshakeHash = bytes.Clone(hh)
			if tt.a != nil {
				tt.a(&a)
			}
			if tt.e != nil {
				tt.e(&e)
			}
			wantErr(t, a.Match(e), tt.want)
		})
	}
}

// TestApprovalDecisionSameLength checks the wire promise that approve and
// deny encode (and sign) to the same length.
func TestApprovalDecisionSameLength(t *testing.T) {
	f := newFixture(t)
	a := Approval{Serial: 42, HandshakeHash: make([]byte, 32), Action: ActionLogon, Decision: DecisionApprove, Time: testNow.Unix()}
	d := a
	d.Decision = DecisionDeny
	sa, err := SignP256(DocApproval, &a, f.approval, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd, _ := SignP256(DocApproval, &d, f.approval, nil)
	ea, _ := sa.Encode()
	ed, _ := sd.Encode()
	if len(ea) != len(ed) {
		t.Fatalf("approve %d bytes, deny %d bytes", len(ea), len(ed))
	}
}
