package offline_test

import (
	"errors"
	"testing"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/offline"
	"github.com/jitkey/jitkey/protocol"
)

// TestSecondApproverRefusesCodes (SPEC.md 11.14, R-65): no second
// approver can be asked for an offline code, so a computer whose policy
// needs one refuses offline logins (audited, nothing created); a device
// exempted by an empty list of its own accepts them again.
func TestSecondApproverRefusesCodes(t *testing.T) {
	e := newEnv(t, protocol.ModeNamed)
	nik := e.namedKey("tech-nik")
	p := e.policy
	p.Version++
	p.SecondApprovers = []string{protocol.ShareAllAdmins}
	e.setPolicy(p)
	if _, err := e.login("nik", e.code(nik, 0)); !errors.Is(err, offline.ErrRefused) {
		t.Fatalf("offline login under a second approver: %v", err)
	}
	if names := e.backend.Names(); len(names) != 0 {
		t.Fatalf("accounts created: %v", names)
	}
	recs := e.records()
	last := recs[len(recs)-1]
	if last.Event != audit.LoginDenied || last.Reason != "second approval required: offline codes not accepted" || last.Username != "nik" {
		t.Fatalf("last record %+v", last)
	}
	p.Version++
	p.SecondApproverDevices = []protocol.DeviceShare{{DeviceID: e.agent.Device.DeviceID, Entries: []string{}}}
	e.setPolicy(p)
	e.mustLogin("nik", e.code(nik, 1))
}
