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

// pushResult is how a push login ended on the phone (OnPushDone).
type pushResult struct {
	out *app.PushOutcome
	err error
}

// TestPushChecks: the phone shows a push login only for a request it can
// trust (SPEC.md 11.5); otherwise it refuses before asking, and the
// agent gets MsgError. A good request is shown with its three numbers;
// the pick is signed into the approval, a report sent as PushReport.
func TestPushChecks(t *testing.T) {
	var shown []*app.PushPrompt
	answer := app.PushAnswer{}
	results := make(chan pushResult, 1)
	n, console, agent, _, _, w := fixtureWith(t, func(c *app.Config) {
		c.OnPush = func(ctx context.Context, p *app.PushPrompt) (app.PushAnswer, error) {
			shown = append(shown, p)
			a := answer
			if a.Pick == 1 {
				a.Pick = p.Candidates[2]
			}
			return a, nil
		}
		c.OnPushDone = func(o *app.PushOutcome, err error) { results <- pushResult{o, err} }
	})
	agent.Close()
	phone := w.Phone()
	good := func() protocol.PushRequest {
		return protocol.PushRequest{DeviceCert: console.Sign(protocol.DocDeviceCert, &agent.Cert), Action: protocol.ActionLogon,
			Account: "msp-nik", Choices: []uint8{}, Time: time.Now().Unix(), Candidates: []uint16{47, 12, 83}}
	}
	run := func(t *testing.T, tamper func(r *protocol.PushRequest)) (pushResult, []byte) {
		t.Helper()
		mux, stop := peertest.JoinMemory(n, agent.Addr, agent.Static, nil, nil)
		defer stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := mux.Dial(ctx, channel.DialConfig{To: phone.Addr(), Flow: protocol.FlowPush, PeerStatic: peertest.NoiseKeyOf(phone.Noise())})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var hello protocol.LoginHello
		if err := c.Recv(ctx, protocol.MsgLoginHello, &hello); err != nil {
			t.Fatal(err)
		}
		req := good()
		req.Session = c.ID
		tamper(&req)
		if err := c.Send(ctx, protocol.MsgPushRequest, &req); err != nil {
			t.Fatal(err)
		}
		b, err := c.RecvRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if protocol.MsgType(b[0]) != protocol.MsgError {
			_ = c.Send(ctx, protocol.MsgLoginResult, &protocol.LoginResult{Code: protocol.CodeDenied, Text: "denied"})
		}
		return <-results, b
	}
	for _, tc := range []struct {
		name   string
		tamper func(r *protocol.PushRequest)
	}{
		{"two candidates", func(r *protocol.PushRequest) { r.Candidates = r.Candidates[:2] }},
		{"repeated candidate", func(r *protocol.PushRequest) { r.Candidates[1] = r.Candidates[0] }},
		{"one-digit candidate", func(r *protocol.PushRequest) { r.Candidates[0] = 9 }},
		{"other session", func(r *protocol.PushRequest) { r.Session[0] ^= 1 }},
		{"unknown action", func(r *protocol.PushRequest) { r.Action = 9 }},
		{"account choices", func(r *protocol.PushRequest) { r.Choices = []uint8{protocol.AccountLocal} }},
		{"device cert of another device", func(r *protocol.PushRequest) {
			d := agent.Cert
			d.DeviceID[0] ^= 1
			r.DeviceCert = console.Sign(protocol.DocDeviceCert, &d)
		}},
		{"expired device cert", func(r *protocol.PushRequest) {
			d := agent.Cert
			d.NotAfter = time.Now().Add(-time.Minute).Unix()
			r.DeviceCert = console.Sign(protocol.DocDeviceCert, &d)
		}},
		{"account name that redraws the prompt", func(r *protocol.PushRequest) { r.Account = "msp-nik\r\x1b[2K" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shown = nil
			res, b := run(t, tc.tamper)
			if !errors.Is(res.err, app.ErrBadPeer) || len(shown) != 0 || protocol.MsgType(b[0]) != protocol.MsgError {
				t.Fatalf("err %v, shown %d, agent got %d", res.err, len(shown), b[0])
			}
		})
	}
	t.Run("pick", func(t *testing.T) {
		shown, answer = nil, app.PushAnswer{Pick: 1} // 1: the third candidate
		_, b := run(t, func(*protocol.PushRequest) {})
		var s protocol.Signed
		if err := protocol.DecodeMsg(b, protocol.MsgApproval, &s); err != nil {
			t.Fatal(err)
		}
		var a protocol.Approval
		if err := protocol.Unmarshal(s.Body, &a); err != nil {
			t.Fatal(err)
		}
		if len(shown) != 1 || shown[0].Device.Name != "PC1" || a.Number != 83 || a.Decision != protocol.DecisionApprove {
			t.Fatalf("shown %+v, approval %+v", shown, a)
		}
	})
	t.Run("report", func(t *testing.T) {
		answer = app.PushAnswer{Report: true}
		res, b := run(t, func(*protocol.PushRequest) {})
		var rep protocol.PushReport
		if err := protocol.DecodeMsg(b, protocol.MsgPushReport, &rep); err != nil {
			t.Fatal(err)
		}
		if res.err != nil || res.out.Status != app.StatusReported {
			t.Fatalf("%+v", res)
		}
	})
}
