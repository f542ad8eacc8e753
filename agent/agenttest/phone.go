package agenttest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// Scan is what the test phone does with one login QR.
type Scan struct {
	// Decide chooses the decision (DecisionApprove when nil).
	Decide func(req protocol.LoginRequest) uint8
	// Tamper, if set, edits the approval before it is signed.
	Tamper func(a *protocol.Approval)
	// Sign, if set, replaces the signing of the approval.
	Sign func(a *protocol.Approval) (protocol.Signed, error)
	// Now is the phone's clock (time.Now when nil).
	Now func() time.Time
	// Sent, if set, receives the approval as sent.
	Sent *protocol.Signed
	// Request, if set, receives the login request.
	Request *protocol.LoginRequest
	// Replay, if set, is sent instead of a fresh approval.
	Replay *protocol.Signed
}

// Login scans qrText with mux (the phone's channel mux) and runs the QR
// login flow to its result. A refusal after LoginHello is returned as the
// LoginResult; transport errors as err.
func (p *Phone) Login(ctx context.Context, mux *channel.Mux, qrText string, s Scan) (protocol.LoginResult, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	q, err := protocol.DecodeQR(qrText, now())
	if err != nil {
		return protocol.LoginResult{}, fmt.Errorf("phone: scan: %w", err)
	}
	psk, err := protocol.Derive(q.Secret[:], protocol.LabelQRPSK, nil, 32)
	if err != nil {
		return protocol.LoginResult{}, err
	}
	sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelQRSession)
	if err != nil {
		return protocol.LoginResult{}, err
	}
	c, err := mux.Dial(ctx, channel.DialConfig{To: q.Addr(), Flow: protocol.FlowQRLogin, PeerStatic: q.Static, PSK: psk, Session: sid})
	if err != nil {
		return protocol.LoginResult{}, err
	}
	defer c.Close()
	if err := c.Send(ctx, protocol.MsgLoginHello, &protocol.LoginHello{TechCert: p.Signed}); err != nil {
		return protocol.LoginResult{}, err
	}
	b, err := c.RecvRaw(ctx)
	if err != nil {
		return protocol.LoginResult{}, err
	}
	var res protocol.LoginResult
	if protocol.MsgType(b[0]) == protocol.MsgLoginResult {
		err := protocol.DecodeMsg(b, protocol.MsgLoginResult, &res)
		return res, err
	}
	var req protocol.LoginRequest
	if err := protocol.DecodeMsg(b, protocol.MsgLoginRequest, &req); err != nil {
		return res, err
	}
	if s.Request != nil {
		*s.Request = req
	}
	var dc protocol.DeviceCert
	if err := req.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, p.MSPKey, &dc); err != nil {
		return res, err
	}
	if dc.DeviceID != q.DeviceID || req.Session != sid || req.Action != q.Action {
		return res, fmt.Errorf("phone: login request does not match the QR code")
	}
	decision := protocol.DecisionApprove
	if s.Decide != nil {
		decision = s.Decide(req)
	}
	a := protocol.Approval{
		Serial: p.Cert.Serial, DeviceID: dc.DeviceID, Session: sid, HandshakeHash: c.Session.HandshakeHash(),
		Action: req.Action, Decision: decision, Time: now().Unix(),
	}
	if _, err := rand.Read(a.Nonce[:]); err != nil {
		return res, err
	}
	if s.Tamper != nil {
		s.Tamper(&a)
	}
	var signed protocol.Signed
	switch {
	case s.Replay != nil:
		signed = *s.Replay
	case s.Sign != nil:
		signed, err = s.Sign(&a)
	default:
		signed, err = protocol.SignP256(protocol.DocApproval, &a, p.Approval, rand.Reader)
	}
	if err != nil {
		return res, err
	}
	if s.Sent != nil {
		*s.Sent = signed
	}
	if err := c.Send(ctx, protocol.MsgApproval, &signed); err != nil {
		return res, err
	}
	err = c.Recv(ctx, protocol.MsgLoginResult, &res)
	return res, err
}

// Pump runs mux.Pump with recv until the test ends.
func Pump(t testing.TB, mux *channel.Mux, recv channel.RecvFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mux.Pump(ctx, recv); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// PhoneMux joins the phone to an in-memory network and returns its mux.
// Its handshakes have the channel default bound (10 s), as the phone
// simulator's (mobilesim/cli): the agent answers a hello of a live code,
// under -race and load only later. A shorter bound (300 ms here before)
// made a test fail with "receive handshake: context deadline exceeded"
// at load 27, and left the abandoned handshake counting against the
// code's MaxScans at the agent. A test that expects a hello to go
// unanswered bounds its own ctx.
func (p *Phone) PhoneMux(t testing.TB, n *channeltest.Network) *channel.Mux {
	peer := n.Join(p.Addr())
	mux := channel.New(channel.Config{Relay: peer, Static: p.Noise})
	Pump(t, mux, peer.Recv)
	return mux
}
