package ipcserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/jitkey/jitkey/agent/agenttest"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/protocol"
)

// newCoEnv is a push environment whose policy needs a second approver
// for every login (SPEC.md 11.14): cara, an admin of the tenant, is in
// the roster and answers with reply once release is closed.
func newCoEnv(t *testing.T, reply agenttest.PushReply) (e *pushEnv, asked <-chan struct{}, release chan<- struct{}, coDone <-chan agenttest.PushDone) {
	var cara *agenttest.Phone
	e = newPushEnv(t, 10*time.Millisecond, 10*time.Second, func(e *pushEnv, p *protocol.Policy) {
		cara = e.msp.NewPhone(t, "cara", protocol.Grant{Tenant: "acme", Role: protocol.RoleAdmin})
		// The roster is sorted: ann, cara, nik.
		p.Roster = []protocol.RosterEntry{e.ann.RosterEntry(protocol.RoleAdmin), cara.RosterEntry(protocol.RoleAdmin), e.nik.RosterEntry(protocol.RoleAdmin)}
		p.SecondApprovers = []string{protocol.ShareAllAdmins}
	})
	ask, rel := make(chan struct{}, 1), make(chan struct{})
	ctx := t.Context() // ends before the cleanups: a failed test does not hang here
	coDone = cara.ServePush(t, e.net, e.agent.Keys.NoisePublic(), nil, func(protocol.PushRequest) agenttest.PushReply {
		offer(ask, struct{}{})
		select {
		case <-rel:
		case <-ctx.Done():
		}
		return reply
	})
	return e, ask, rel, coDone
}

// offer sends v on ch unless ch is full.
func offer[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// waitForSecondApproval reads c's messages until the Status saying that
// the login waits for a second approver (SPEC.md 5.7.7), which must come
// while cara's phone is being asked (asked) and has not answered; it
// fails on a Credential or Denied first.
func waitForSecondApproval(t *testing.T, c *ipcserver.Client, asked <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("no waiting Status: %v", err)
		}
		switch m := m.(type) {
		case *ipcserver.Status:
			if !m.SecondApproval {
				continue
			}
			if !m.Online || m.OTP {
				t.Fatalf("waiting Status %+v, want online, no codes", m)
			}
			select {
			case <-asked:
			case <-ctx.Done():
				t.Fatal("Status says waiting, but the second approver was never asked")
			}
			return
		case *ipcserver.Credential, *ipcserver.Denied:
			t.Fatalf("login ended (%T %+v) without a waiting Status", m, m)
		}
	}
}

// TestPushSecondApprovalStatus (SPEC.md 5.7.7, 11.14): nik approves his
// push login on a device that needs a second approver; while cara's
// phone is asked and has not answered, the surface gets Status
// SecondApproval (online, no codes) and then, once she approves, the
// Credential, with no QR code in between.
func TestPushSecondApprovalStatus(t *testing.T) {
	checkGoroutines(t)
	e, asked, release, coDone := newCoEnv(t, agenttest.PushReply{})
	numbers := e.nikPicks(t)
	c, n := e.pushLogin(t, "nik@msp.example")
	defer c.Close()
	if c.Status().SecondApproval {
		t.Fatal("waiting before nik answered")
	}
	numbers <- n
	waitForSecondApproval(t, c, asked)
	close(release)
	// No QR code after the waiting Status: the Credential is next.
	cred, ok := final(t, c, true).(*ipcserver.Credential)
	if !ok || cred.Username != "msp-nik" {
		t.Fatalf("got %+v", cred)
	}
	if d := <-coDone; d.CoRequest == nil || d.CoRequest.Method != protocol.MethodPush || !d.Result.OK {
		t.Fatalf("cara's phone: %+v", d)
	}
}

// TestQRSecondApprovalStatus: the same for a QR login, whose second
// approver denies: the waiting Status, then Denied code 5 "denied by the
// second approver", nothing in between.
func TestQRSecondApprovalStatus(t *testing.T) {
	checkGoroutines(t)
	e, asked, release, coDone := newCoEnv(t, agenttest.PushReply{Deny: true})
	c := e.dial(t)
	if err := c.Begin(t.Context(), "logon", 0); err != nil {
		t.Fatal(err)
	}
	qr := next[ipcserver.QR](t, c)
	phone := make(chan error, 1)
	go func() {
		res, err := e.nik.Login(t.Context(), e.nik.PhoneMux(t, e.net), qr.Text, agenttest.Scan{})
		if err == nil && res.OK {
			err = context.Canceled // anything but a refusal is wrong
		}
		phone <- err
	}()
	waitForSecondApproval(t, c, asked)
	close(release)
	d, ok := final(t, c, true).(*ipcserver.Denied)
	if !ok || d.Code != protocol.CodeDenied || d.Reason != "denied by the second approver" {
		t.Fatalf("got %+v", d)
	}
	if err := <-phone; err != nil {
		t.Fatalf("nik's phone: %v", err)
	}
	if d := <-coDone; d.CoRequest == nil || d.CoRequest.Method != protocol.MethodQR {
		t.Fatalf("cara's phone: %+v", d)
	}
}
