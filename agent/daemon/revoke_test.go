package daemon_test

import (
	"testing"

	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/relay/server"
)

// TestRevocationEndsLiveSession (SPEC.md 4, R-47; review finding F1): a
// policy that revokes a technician's certificate ends that technician's
// live session before the agent acknowledges the policy: the account is
// disabled, the password issued for the session no longer works, the
// reason is audited and shipped. Another technician's session goes on.
func TestRevocationEndsLiveSession(t *testing.T) {
	w := newWorld(t, server.Limits{})
	nik, nikMux := w.phone(t, "nik")
	_, nikCred := w.login(t, nik, nikMux)
	nikPW := password.FromBytes(nikCred.Password)
	ann, annMux := w.phone(t, "ann")
	_, annCred := w.login(t, ann, annMux)
	annPW := password.FromBytes(annCred.Password)

	pol := w.msp.Policy(2)
	pol.Revoked = []uint64{nik.Cert.Serial}
	ack, err := w.console.PushPolicy(t.Context(), w.info.Addr, w.console.SetPolicy(t, pol))
	if err != nil || len(ack.Versions) != 1 || ack.Versions[0].Version != 2 {
		t.Fatalf("push of the revoking policy: %+v %v", ack, err)
	}
	// The ack came after the policy was applied and the sessions decided
	// again: no waiting.
	if err := w.backend.Login(t.Context(), nikCred.Username, nikPW); err == nil {
		t.Fatal("the revoked technician's password still logs in")
	}
	if i, err := w.backend.Lookup(t.Context(), nikCred.Username); err != nil || i.Enabled {
		t.Fatalf("%s after the revocation: %+v %v", nikCred.Username, i, err)
	}
	if err := w.backend.Login(t.Context(), annCred.Username, annPW); err != nil {
		t.Fatalf("ann's session ended by nik's revocation: %v", err)
	}
	eventually(t, "the withdrawal's record at the console", func() bool {
		for _, r := range w.console.Records(w.info.Addr.Mailbox) {
			if r.Event == "account.disabled" && r.Account == nikCred.Username &&
				r.Reason == "access withdrawn: technician certificate revoked" && r.TechID == nik.Cert.TechID {
				return true
			}
		}
		return false
	})
}
