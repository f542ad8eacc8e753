package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/peertest"
	"github.com/jitkey/jitkey/protocol"
)

// TestCoApprovalChecks (SPEC.md 11.14): the phone shows a request for its
// second approval only when it can trust it, and never for its own
// technician's login; otherwise it refuses before asking. A good request
// is shown with the technician, reason and ticket, and the decision is
// signed as a DocCoApproval bound to the session and the first approval.
func TestCoApprovalChecks(t *testing.T) {
	var shown []*app.CoPrompt
	approve := true
	results := make(chan pushResult, 1)
	n, console, agent, _, _, w := fixtureWith(t, func(c *app.Config) {
		c.OnCoApproval = func(ctx context.Context, p *app.CoPrompt) (bool, error) {
			shown = append(shown, p)
			return approve, nil
		}
		c.OnPushDone = func(o *app.PushOutcome, err error) { results <- pushResult{o, err} }
	})
	agent.Close()
	phone := w.Phone()
	org, err := w.Current()
	if err != nil {
		t.Fatal(err)
	}
	other := protocol.TechCert{Serial: 900, TechID: "tech-ana", Username: "ana", Grants: []protocol.Grant{{Tenant: "acme", Role: protocol.RoleAdmin}},
		NotBefore: time.Now().Add(-time.Hour).Unix(), NotAfter: time.Now().Add(time.Hour).Unix()}
	good := func() protocol.CoApprovalRequest {
		return protocol.CoApprovalRequest{DeviceCert: console.Sign(protocol.DocDeviceCert, &agent.Cert), Action: protocol.ActionLogon,
			Account: "msp-ana", Time: time.Now().Unix(), First: [32]byte{7}, TechCert: console.Sign(protocol.DocTechCert, &other),
			Method: protocol.MethodPush, Reason: "disk full", Ticket: "INC-1"}
	}
	run := func(t *testing.T, tamper func(r *protocol.CoApprovalRequest)) (pushResult, []byte, *channel.Conn) {
		t.Helper()
		mux, stop := peertest.JoinMemory(n, agent.Addr, agent.Static, nil, nil)
		t.Cleanup(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := mux.Dial(ctx, channel.DialConfig{To: phone.Addr(), Flow: protocol.FlowPush, PeerStatic: peertest.NoiseKeyOf(phone.Noise())})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		var hello protocol.LoginHello
		if err := c.Recv(ctx, protocol.MsgLoginHello, &hello); err != nil {
			t.Fatal(err)
		}
		req := good()
		req.Session = c.ID
		tamper(&req)
		if err := c.Send(ctx, protocol.MsgCoApprovalRequest, &req); err != nil {
			t.Fatal(err)
		}
		b, err := c.RecvRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res := &protocol.LoginResult{OK: true, Account: "msp-ana"}
		if !approve {
			res = &protocol.LoginResult{Code: protocol.CodeDenied, Text: "denied"}
		}
		if protocol.MsgType(b[0]) != protocol.MsgError {
			_ = c.Send(ctx, protocol.MsgLoginResult, res)
		}
		return <-results, b, c
	}
	for _, tc := range []struct {
		name   string
		tamper func(r *protocol.CoApprovalRequest)
	}{
		{"own login", func(r *protocol.CoApprovalRequest) { r.TechCert = org.TechCert }},
		{"technician not signed by the MSP", func(r *protocol.CoApprovalRequest) { r.TechCert.Sig[0] ^= 1 }},
		{"other session", func(r *protocol.CoApprovalRequest) { r.Session[0] ^= 1 }},
		{"unknown method", func(r *protocol.CoApprovalRequest) { r.Method = "otp" }},
		{"empty account", func(r *protocol.CoApprovalRequest) { r.Account = "" }},
		{"reason that redraws the prompt", func(r *protocol.CoApprovalRequest) { r.Reason = "ok\r\x1b[2K" }},
		{"device cert of another device", func(r *protocol.CoApprovalRequest) {
			d := agent.Cert
			d.DeviceID[0] ^= 1
			r.DeviceCert = console.Sign(protocol.DocDeviceCert, &d)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shown = nil
			res, b, _ := run(t, tc.tamper)
			if !errors.Is(res.err, app.ErrBadPeer) || len(shown) != 0 || protocol.MsgType(b[0]) != protocol.MsgError {
				t.Fatalf("err %v, shown %d, agent got %d", res.err, len(shown), b[0])
			}
		})
	}
	for _, ok := range []bool{true, false} {
		t.Run(map[bool]string{true: "approve", false: "deny"}[ok], func(t *testing.T) {
			shown, approve = nil, ok
			res, b, c := run(t, func(*protocol.CoApprovalRequest) {})
			var s protocol.Signed
			if err := protocol.DecodeMsg(b, protocol.MsgCoApproval, &s); err != nil {
				t.Fatal(err)
			}
			var co protocol.CoApproval
			if err := s.VerifyP256(protocol.DocCoApproval, phoneTech(t, org.TechCert).ApprovalKey, &co); err != nil {
				t.Fatal(err)
			}
			want := map[bool]uint8{true: protocol.DecisionApprove, false: protocol.DecisionDeny}[ok]
			if len(shown) != 1 || shown[0].Technician != "ana" || shown[0].Reason != "disk full" ||
				co.Decision != want || co.First != [32]byte{7} || co.TechID != "tech-ana" || co.Account != "msp-ana" || co.Session != c.ID {
				t.Fatalf("shown %+v, co-approval %+v", shown, co)
			}
			wantStatus := map[bool]string{true: app.StatusApproved, false: app.StatusDenied}[ok]
			if res.out == nil || res.out.Co == nil || res.out.Status != wantStatus {
				t.Fatalf("outcome %+v", res)
			}
		})
	}
}

func phoneTech(t *testing.T, s protocol.Signed) protocol.TechCert {
	var c protocol.TechCert
	if err := protocol.Unmarshal(s.Body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
