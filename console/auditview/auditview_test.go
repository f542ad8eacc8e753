package auditview

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

func TestSentences(t *testing.T) {
	tests := []struct {
		rec  protocol.AuditRecord
		want string
	}{
		{protocol.AuditRecord{Event: "login.approved", Username: "nik", Account: "msp-nik", Method: protocol.MethodQR, Online: true, Action: protocol.ActionLogon},
			"nik logged into W11-L-PASSWORD with account msp-nik (QR, online)"},
		{protocol.AuditRecord{Event: "login.approved", Username: "nik", Account: "msp-4821", Method: protocol.MethodOTP, Action: protocol.ActionLogon},
			"nik logged into W11-L-PASSWORD with account msp-4821 (OTP, offline)"},
		{protocol.AuditRecord{Event: "login.approved", Username: "ann", Account: "msp-ann", Method: protocol.MethodPush, Online: true, Action: protocol.ActionElevate},
			"ann elevated on W11-L-PASSWORD with account msp-ann (PUSH, online)"},
		{protocol.AuditRecord{Event: "login.approved", Username: "nik", Account: "msp-nik", Method: protocol.MethodQR, Online: true, Action: protocol.ActionLogon,
			Justification: "printer queue \"stuck\"", Ticket: "INC-4711"},
			`nik logged into W11-L-PASSWORD with account msp-nik (QR, online): ticket INC-4711, reason "printer queue \"stuck\""`},
		{protocol.AuditRecord{Event: "login.approved", Username: "nik", Account: "msp-nik", Method: protocol.MethodPush, Online: true, Action: protocol.ActionLogon,
			Detail: "second approver cara (tech-cara)"},
			"nik logged into W11-L-PASSWORD with account msp-nik (PUSH, online); second approver cara (tech-cara)"},
		{protocol.AuditRecord{Event: "login.denied", Username: "nik", Reason: "not shared with nik"},
			"nik was denied on W11-L-PASSWORD (not shared with nik)"},
		{protocol.AuditRecord{Event: "account.disabled", Account: "msp-nik", Detail: "session ended"},
			"msp-nik was disabled on W11-L-PASSWORD (session ended)"},
		{protocol.AuditRecord{Event: "account.created", Account: "msp-nik"},
			"msp-nik was created on W11-L-PASSWORD"},
		{protocol.AuditRecord{Event: "session.expired", Username: "nik", Account: "msp-nik"},
			"nik's session as msp-nik on W11-L-PASSWORD reached its maximum length"},
		{protocol.AuditRecord{Event: "session.warned", Username: "nik", Account: "msp-nik", Detail: "logged off at 2026-12-06T20:00:00Z, in 5m0s"},
			"nik's session as msp-nik on W11-L-PASSWORD was warned of its end (logged off at 2026-12-06T20:00:00Z, in 5m0s)"},
		{protocol.AuditRecord{Event: "policy.applied", Detail: "version 7"},
			"W11-L-PASSWORD applied policy (version 7)"},
		{protocol.AuditRecord{Event: "device.removed", Detail: "policy version 9 revokes this device's certificate, serial 4"},
			"W11-L-PASSWORD learned that the MSP removed it: jitkey logins disabled (policy version 9 revokes this device's certificate, serial 4)"},
		{protocol.AuditRecord{Event: "something.new", Username: "nik"},
			"something.new on W11-L-PASSWORD by nik"},
	}
	for _, tt := range tests {
		t.Run(tt.rec.Event, func(t *testing.T) {
			if got := Sentence("W11-L-PASSWORD", &tt.rec); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestTextAndJSON(t *testing.T) {
	rows := []*store.AuditRow{{Seq: 1, DeviceName: "W11", Tenant: "acme", Record: protocol.AuditRecord{
		Time: 1700000000123, Event: "login.approved", Username: "nik", Account: "msp-nik", Method: "qr", Online: true, Action: 1}}}
	alarms := []*store.Alarm{{Seq: 3, Kind: "gap", Detail: "expected seq 3, got 4", DeviceName: "W11", Tenant: "acme", Time: 1700000000}}
	var b bytes.Buffer
	if err := Text(&b, rows, alarms); err != nil {
		t.Fatal(err)
	}
	want := "!!! AUDIT CHAIN BROKEN for device W11 (tenant acme) at seq 3: gap: expected seq 3, got 4 (detected 2023-11-14T22:13:20Z)\n" +
		"2023-11-14 22:13:20  nik logged into W11 with account msp-nik (QR, online)\n"
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := JSON(&b, rows, alarms); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines", len(lines))
	}
	var l Line
	if err := json.Unmarshal([]byte(lines[1]), &l); err != nil {
		t.Fatal(err)
	}
	if l.Type != "record" || l.Username != "nik" || l.Action != "logon" || l.Time != "2023-11-14T22:13:20.123Z" || !l.Online {
		t.Fatalf("json line %+v", l)
	}
	if err := json.Unmarshal([]byte(lines[0]), &l); err != nil || l.Type != "alarm" || l.Kind != "gap" {
		t.Fatalf("alarm line %+v: %v", l, err)
	}
}

// TestFromRemoved: records that arrived after the device was removed say
// so, in text and JSON; others do not.
func TestFromRemoved(t *testing.T) {
	rec := protocol.AuditRecord{Time: 1700000000123, Event: "account.disabled", Account: "msp-nik", Reason: "device removed by the MSP"}
	rows := []*store.AuditRow{
		{Seq: 1, DeviceName: "W11", Tenant: "acme", Record: rec},
		{Seq: 2, DeviceName: "W11", Tenant: "acme", Record: rec, FromRemoved: true},
	}
	var b bytes.Buffer
	if err := Text(&b, rows, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], "removed]") || !strings.HasSuffix(lines[1], "  [received after the device was removed]") {
		t.Fatalf("text:\n%s", b.String())
	}
	b.Reset()
	if err := JSON(&b, rows, nil); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(b.String()), "\n")
	if strings.Contains(lines[0], "from_removed") || !strings.Contains(lines[1], `"from_removed":true`) {
		t.Fatalf("json:\n%s", b.String())
	}
}

// TestJustificationJSON: the reason and ticket of a login reach the JSON
// form as fields of their own.
func TestJustificationJSON(t *testing.T) {
	rows := []*store.AuditRow{{Seq: 1, DeviceName: "W11", Tenant: "acme", Record: protocol.AuditRecord{
		Time: 1700000000123, Event: "login.approved", Username: "nik", Justification: "disk full", Ticket: "INC-9"}}}
	var b bytes.Buffer
	if err := JSON(&b, rows, nil); err != nil {
		t.Fatal(err)
	}
	var l Line
	if err := json.Unmarshal(b.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	if l.Justification != "disk full" || l.Ticket != "INC-9" || !strings.Contains(l.Text, "ticket INC-9") {
		t.Fatalf("json line %+v", l)
	}
}
