package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// CoPrompt is a request for this phone's second approval of another
// technician's login, as the phone shows it (SPEC.md 11.14).
type CoPrompt struct {
	Request             // the device (verified), account, action, time
	Technician string   // the technician who asked: username
	TechID     string   // and id, from the MSP-signed certificate
	Method     string   // qr or push
	Reason     string   // the technician's reason
	Ticket     string   // and ticket
	First      [32]byte // the hash of the technician's approval
}

// Summary is the prompt's screen text, e.g. "Second approval: nik asks to
// log in to W11 (tenant acme) as msp-nik — action: logon; reason: ...".
func (p *CoPrompt) Summary() string {
	s := fmt.Sprintf("Second approval: %s asks (%s) — %s; at %s", p.Technician, p.Method, p.Request.Summary(),
		time.Unix(p.Time, 0).UTC().Format(time.RFC3339))
	if p.Reason != "" {
		s += "; reason: " + p.Reason
	}
	if p.Ticket != "" {
		s += "; ticket: " + p.Ticket
	}
	return s
}

// coApprove answers a CoApprovalRequest (msg) in a FlowPush session: the
// request checked (the device as for a push login, the technician's
// certificate signed by the MSP and not this phone's own), the approver's
// decision signed as a DocCoApproval, the agent's result.
func (a *App) coApprove(ctx context.Context, c *channel.Conn, o *wallet.Org, v *View, known protocol.DeviceCert, msg []byte) (*PushOutcome, error) {
	var req protocol.CoApprovalRequest
	if err := protocol.DecodeMsg(msg, protocol.MsgCoApprovalRequest, &req); err != nil {
		return nil, badPeer("the computer", err)
	}
	prompt, err := a.checkCo(v, known, c, &req)
	if err != nil {
		c.SendError(ctx, protocol.CodeRefused, "refused by the phone")
		return nil, err
	}
	if a.cfg.OnCoApproval == nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, errors.New("second approval: this phone does not answer second approvals")
	}
	approve, err := a.cfg.OnCoApproval(ctx, prompt)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	key, err := a.cfg.Wallet.ApprovalKey(a.cfg.Gate)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	co := protocol.CoApproval{
		Serial: v.Tech.Serial, DeviceID: prompt.Device.DeviceID, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(),
		First: req.First, Action: req.Action, Account: req.Account, TechID: prompt.TechID,
		Decision: protocol.DecisionDeny, Time: a.cfg.Now().Unix(),
	}
	text := "Deny the second approval: " + prompt.Summary()
	if approve {
		co.Decision, text = protocol.DecisionApprove, "Approve as second approver: "+prompt.Summary()
	}
	if _, err := io.ReadFull(a.cfg.Rand, co.Nonce[:]); err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, fmt.Errorf("second approval: nonce: %w", err)
	}
	signed, err := protocol.SignP256(protocol.DocCoApproval, &co, key.Signer(ctx, text), a.cfg.Rand)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	if err := c.Send(ctx, protocol.MsgCoApproval, &signed); err != nil {
		return nil, fmt.Errorf("second approval: send: %w", err)
	}
	msg, err = c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("second approval: receive result: %w", err)
	}
	out, err := a.result(msg, &Outcome{Request: &prompt.Request, Decision: Decision{Approve: approve}})
	if err != nil {
		return nil, err
	}
	if !approve && out.Status == StatusRefused && out.Result.Code == protocol.CodeRefused {
		// The agent refuses the login after a deny: that is the deny.
		out.Status = StatusDenied
	}
	return &PushOutcome{Status: out.Status, Co: prompt, Result: out.Result}, nil
}

// checkCo verifies a CoApprovalRequest: the device as for a push login
// (signed by the MSP, the directory's device and the handshake's key,
// valid, not removed), the request for this session and within its
// bounds, the technician's certificate signed by the MSP and not this
// phone's technician or approval key (R-64: the phone signs nothing for
// its own login).
func (a *App) checkCo(v *View, known protocol.DeviceCert, c *channel.Conn, r *protocol.CoApprovalRequest) (*CoPrompt, error) {
	dev, err := a.checkDevice(v, known, c, r.DeviceCert, r.Session)
	if err != nil {
		return nil, err
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPeer, err)
	}
	var tech protocol.TechCert
	if err := r.TechCert.VerifyEd25519(protocol.DocTechCert, v.MSP, &tech); err != nil {
		return nil, fmt.Errorf("%w: the technician's certificate is not from %s", ErrBadPeer, v.Org.Name)
	}
	if tech.TechID == v.Tech.TechID || subtle.ConstantTimeCompare(tech.ApprovalKey[:], v.Tech.ApprovalKey[:]) == 1 {
		return nil, fmt.Errorf("%w: a second approval of your own login", ErrBadPeer)
	}
	return &CoPrompt{
		Request:    Request{Org: v.Org.ID, Username: v.Tech.Username, Device: dev, Account: r.Account, Action: r.Action, Time: r.Time},
		Technician: tech.Username, TechID: tech.TechID, Method: r.Method, Reason: r.Reason, Ticket: r.Ticket, First: r.First,
	}, nil
}
