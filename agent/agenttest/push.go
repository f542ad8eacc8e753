package agenttest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/channel/channeltest"
	"github.com/jitkey/jitkey/protocol"
)

// RosterEntry returns the phone's roster entry with role in the tenant.
func (p *Phone) RosterEntry(role string) protocol.RosterEntry {
	return protocol.RosterEntry{Serial: p.Cert.Serial, TechID: p.Cert.TechID, Username: p.Cert.Username, Email: p.Cert.Email,
		NoiseKey: p.Cert.NoiseKey, IdentityKey: p.Cert.IdentityKey, Relay: p.Cert.Relay, Role: role}
}

// PushReply is the test phone's answer to a push login.
type PushReply struct {
	Pick   uint16 // the number picked (approve)
	Deny   bool
	Report bool // "this was not me"
	// Tamper, if set, edits the approval before it is signed.
	Tamper func(a *protocol.Approval)
	// CoTamper, if set, edits a second approval (SPEC.md 11.14) before
	// it is signed; CoReplay, if set, is sent instead of a new one.
	CoTamper func(c *protocol.CoApproval)
	CoReplay *protocol.Signed
}

// PushDone is how a push login ended on the test phone.
type PushDone struct {
	Request protocol.PushRequest
	// CoRequest is set when the agent asked for a second approval
	// (SPEC.md 11.14) and CoSigned is the second approval sent.
	CoRequest *protocol.CoApprovalRequest
	CoSigned  protocol.Signed
	Result    protocol.LoginResult
	Err       error
}

// ServePush joins the phone to n and answers push logins from the agent
// whose Noise key is agent with answer; each ends on the returned
// channel. Ticket, if set, goes to the agent in LoginHello.
func (p *Phone) ServePush(t testing.TB, n *channeltest.Network, agent protocol.NoiseKey, ticket []byte,
	answer func(req protocol.PushRequest) PushReply) <-chan PushDone {
	peer := n.Join(p.Addr())
	return p.ServePushOn(t, peer, peer.Recv, agent, ticket, answer)
}

// ServePushOn is ServePush on any relay connection.
func (p *Phone) ServePushOn(t testing.TB, relay channel.Relay, recv channel.RecvFunc, agent protocol.NoiseKey, ticket []byte,
	answer func(req protocol.PushRequest) PushReply) <-chan PushDone {
	done := make(chan PushDone, 16)
	mux := channel.New(channel.Config{
		Relay: relay, Static: p.Noise, HandshakeTimeout: 5 * time.Second,
		Accept: func(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) { return nil, agent, nil },
		Handle: func(ctx context.Context, c *channel.Conn) {
			var d PushDone
			d.Request, d.Result, d.Err = p.answerPush(ctx, c, ticket, answer, &d)
			done <- d
		},
	})
	Pump(t, mux, recv)
	return done
}

func (p *Phone) answerPush(ctx context.Context, c *channel.Conn, ticket []byte, answer func(protocol.PushRequest) PushReply, d *PushDone) (protocol.PushRequest, protocol.LoginResult, error) {
	var req protocol.PushRequest
	var res protocol.LoginResult
	if err := c.Send(ctx, protocol.MsgLoginHello, &protocol.LoginHello{TechCert: p.Signed, PushTicket: ticket}); err != nil {
		return req, res, err
	}
	b, err := c.RecvRaw(ctx)
	if err != nil {
		return req, res, err
	}
	if protocol.MsgType(b[0]) == protocol.MsgLoginResult {
		err := protocol.DecodeMsg(b, protocol.MsgLoginResult, &res)
		return req, res, err
	}
	if protocol.MsgType(b[0]) == protocol.MsgCoApprovalRequest {
		return p.answerCo(ctx, c, b, answer, d)
	}
	if err := protocol.DecodeMsg(b, protocol.MsgPushRequest, &req); err != nil {
		return req, res, err
	}
	if err := req.CheckCandidates(); err != nil {
		return req, res, err
	}
	var dc protocol.DeviceCert
	if err := req.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, p.MSPKey, &dc); err != nil {
		return req, res, err
	}
	r := answer(req)
	if r.Report {
		if err := c.Send(ctx, protocol.MsgPushReport, &protocol.PushReport{Session: c.ID, Time: time.Now().Unix()}); err != nil {
			return req, res, err
		}
		err := c.Recv(ctx, protocol.MsgLoginResult, &res)
		return req, res, err
	}
	a := protocol.Approval{
		Serial: p.Cert.Serial, DeviceID: dc.DeviceID, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(),
		Action: req.Action, Decision: protocol.DecisionApprove, Number: r.Pick, Time: time.Now().Unix(),
	}
	if r.Deny {
		a.Decision, a.Number = protocol.DecisionDeny, 0
	}
	if _, err := rand.Read(a.Nonce[:]); err != nil {
		return req, res, err
	}
	if r.Tamper != nil {
		r.Tamper(&a)
	}
	signed, err := protocol.SignP256(protocol.DocApproval, &a, p.Approval, rand.Reader)
	if err != nil {
		return req, res, err
	}
	if err := c.Send(ctx, protocol.MsgApproval, &signed); err != nil {
		return req, res, err
	}
	err = c.Recv(ctx, protocol.MsgLoginResult, &res)
	return req, res, err
}

// answerCo answers a request for a second approval (SPEC.md 11.14):
// answer sees it as a PushRequest with its device certificate, session,
// action and account; Deny denies, else the phone approves.
func (p *Phone) answerCo(ctx context.Context, c *channel.Conn, b []byte, answer func(protocol.PushRequest) PushReply, d *PushDone) (protocol.PushRequest, protocol.LoginResult, error) {
	var res protocol.LoginResult
	var co protocol.CoApprovalRequest
	if err := protocol.DecodeMsg(b, protocol.MsgCoApprovalRequest, &co); err != nil {
		return protocol.PushRequest{}, res, err
	}
	d.CoRequest = &co
	req := protocol.PushRequest{DeviceCert: co.DeviceCert, Session: co.Session, Action: co.Action, Account: co.Account, Time: co.Time}
	if err := co.Check(); err != nil {
		return req, res, err
	}
	var dc protocol.DeviceCert
	if err := co.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, p.MSPKey, &dc); err != nil {
		return req, res, err
	}
	var tech protocol.TechCert
	if err := co.TechCert.VerifyEd25519(protocol.DocTechCert, p.MSPKey, &tech); err != nil {
		return req, res, err
	}
	r := answer(req)
	a := protocol.CoApproval{
		Serial: p.Cert.Serial, DeviceID: dc.DeviceID, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(), First: co.First,
		Action: co.Action, Account: co.Account, TechID: tech.TechID, Decision: protocol.DecisionApprove, Time: time.Now().Unix(),
	}
	if r.Deny {
		a.Decision = protocol.DecisionDeny
	}
	if _, err := rand.Read(a.Nonce[:]); err != nil {
		return req, res, err
	}
	if r.CoTamper != nil {
		r.CoTamper(&a)
	}
	signed, err := protocol.SignP256(protocol.DocCoApproval, &a, p.Approval, rand.Reader)
	if err != nil {
		return req, res, err
	}
	if r.CoReplay != nil {
		signed = *r.CoReplay
	}
	d.CoSigned = signed
	if err := c.Send(ctx, protocol.MsgCoApproval, &signed); err != nil {
		return req, res, err
	}
	err = c.Recv(ctx, protocol.MsgLoginResult, &res)
	return req, res, err
}
