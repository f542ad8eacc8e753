package protocol

import (
	"bytes"
	"testing"
	"time"
)

// FuzzCoApprovalRequest decodes arbitrary messages as a CoApprovalRequest
// (the phone's new decoder, SPEC.md 8.2, 11.14): no panic, whatever
// decodes re-encodes to the same bytes, and Check accepts only a known
// action, an account of 1..64 printable bytes, method qr or push and a
// reason and ticket within their bounds.
func FuzzCoApprovalRequest(f *testing.F) {
	for _, b := range vectorInputs(f, false, "msg") {
		if len(b) > 0 && MsgType(b[0]) == MsgCoApprovalRequest {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r CoApprovalRequest
		if DecodeMsg(data, MsgCoApprovalRequest, &r) != nil {
			return
		}
		again, err := EncodeMsg(MsgCoApprovalRequest, &r)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("CoApprovalRequest re-encodes differently: %v\n%x\n%x", err, data, again)
		}
		if r.Check() == nil {
			if ActionName(r.Action) == "" || r.Account == "" || len(r.Account) > MaxNameLen ||
				(r.Method != MethodQR && r.Method != MethodPush) || len(r.Reason) > MaxReasonLen || len(r.Ticket) > MaxTicketLen {
				t.Fatalf("request %+v passed Check", r)
			}
		}
	})
}

// FuzzCoApproval decodes arbitrary bytes as a second approval (SPEC.md
// 11.14), in a MsgCoApproval message and as a bare body: no panic,
// whatever decodes re-encodes to the same bytes, and VerifyCoApproval
// accepts nothing that the zero approval key did not sign.
func FuzzCoApproval(f *testing.F) {
	for _, b := range vectorInputs(f, false, "co-approval") {
		if m, err := EncodeMsg(MsgCoApproval, mustDecodeSigned(b)); err == nil {
			f.Add(m)
		}
		if s, err := DecodeSigned(b); err == nil {
			f.Add(s.Body)
		}
	}
	approver, first := &TechCert{Serial: 2, TechID: "b", NotAfter: 1 << 40}, &TechCert{Serial: 1, TechID: "a"}
	approver.ApprovalKey[0] = 4
	dev := &DeviceCert{Tenant: "t"}
	pol := &Policy{Tenant: "t", SecondApprovers: []string{ShareAllUsers}}
	approver.Grants = []Grant{{Tenant: "t", Role: RoleAdmin}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c CoApproval
		if err := Unmarshal(data, &c); err == nil {
			again, err := Marshal(&c)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("CoApproval re-encodes differently: %v\n%x\n%x", err, data, again)
			}
		}
		var s Signed
		if err := DecodeMsg(data, MsgCoApproval, &s); err != nil {
			return
		}
		again, err := EncodeMsg(MsgCoApproval, &s)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("MsgCoApproval re-encodes differently: %v", err)
		}
		if _, err := VerifyCoApproval(s, CoApprovalExpect{Approver: approver, First: first, Device: dev, Policy: pol,
			HandshakeHash: make([]byte, 32), Now: time.Unix(0, 0)}); err == nil {
			t.Fatal("a co-approval verified with an invalid key")
		}
	})
}

func mustDecodeSigned(b []byte) *Signed {
	s, err := DecodeSigned(b)
	if err != nil {
		return &Signed{}
	}
	return &s
}
