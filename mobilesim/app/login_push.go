package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// PushPrompt is a push login request as the phone shows it (SPEC.md
// 11.5): the request (device name from its certificate, account,
// action) and the three numbers, one of which the login screen shows.
type PushPrompt struct {
	Request
	Candidates []uint16
}

// Summary is the prompt's screen text, e.g. "Log in to W11 (tenant acme)
// as msp-nik — action: logon; pick the number on the screen: 47 12 83".
func (p *PushPrompt) Summary() string {
	return fmt.Sprintf("%s; pick the number on the screen: %d %d %d", p.Request.Summary(), p.Candidates[0], p.Candidates[1], p.Candidates[2])
}

// PushAnswer is the technician's answer to a push login: the number
// picked (approve), Deny, or Report ("this was not me").
type PushAnswer struct {
	Pick   uint16
	Deny   bool
	Report bool
	// Reason and Ticket justify an approval (SPEC.md 6.4).
	Reason, Ticket string
}

// Answer statuses of a push login besides those of Outcome.
const (
	StatusReported = "reported" // "this was not me": the agent blocks pushes
)

// PushOutcome is how a push login ended on the phone.
type PushOutcome struct {
	Status string      // StatusApproved, StatusDenied, StatusRefused or StatusReported
	Prompt *PushPrompt // nil for a second approval
	// Co is set when the agent asked for this phone's second approval
	// of another technician's login (SPEC.md 11.14).
	Co     *CoPrompt
	Answer PushAnswer
	Result protocol.LoginResult
}

// deviceByMailbox finds the device of the current organisation whose
// relay mailbox is m.
func (a *App) deviceByMailbox(m protocol.MailboxID) (*wallet.Org, *View, protocol.DeviceCert, error) {
	o, err := a.cfg.Wallet.Current()
	if err != nil {
		return nil, nil, protocol.DeviceCert{}, errNotAccepted
	}
	v, err := Load(o)
	if err != nil {
		return nil, nil, protocol.DeviceCert{}, errNotAccepted
	}
	for _, d := range v.Devices {
		if protocol.MailboxFor(d.IdentityKey[:]) == m {
			return o, v, d, nil
		}
	}
	return nil, nil, protocol.DeviceCert{}, errNotAccepted
}

// acceptPush answers FlowPush from a device of the directory (its
// mailbox; its Noise key through KK), when the app takes push logins.
func (a *App) acceptPush(h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	if a.cfg.OnPush == nil && a.cfg.OnCoApproval == nil {
		return nil, protocol.NoiseKey{}, errNotAccepted
	}
	_, _, d, err := a.deviceByMailbox(h.From.Mailbox)
	if err != nil {
		return nil, protocol.NoiseKey{}, err
	}
	return nil, d.NoiseKey, nil
}

// handlePush runs one push login started by an agent: LoginHello, the
// PushRequest checked as a QR login's request is, the technician's
// answer, the agent's result.
func (a *App) handlePush(ctx context.Context, c *channel.Conn) {
	out, err := a.push(ctx, c)
	if err != nil {
		a.log.Warn("push login", "err", err)
	}
	if a.cfg.OnPushDone != nil {
		a.cfg.OnPushDone(out, err)
	}
}

func (a *App) push(ctx context.Context, c *channel.Conn) (*PushOutcome, error) {
	o, v, dev, err := a.deviceByMailbox(c.Peer.Mailbox)
	if err != nil || !c.Session.PeerIs(dev.NoiseKey) {
		return nil, errNotAccepted
	}
	hello := protocol.LoginHello{TechCert: o.TechCert}
	if a.cfg.PushTicket != nil {
		hello.PushTicket = a.cfg.PushTicket()
	}
	if err := c.Send(ctx, protocol.MsgLoginHello, &hello); err != nil {
		return nil, fmt.Errorf("push: send: %w", err)
	}
	msg, err := c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("push: receive request: %w", err)
	}
	if len(msg) > 0 && protocol.MsgType(msg[0]) == protocol.MsgCoApprovalRequest {
		return a.coApprove(ctx, c, o, v, dev, msg)
	}
	if len(msg) > 0 && protocol.MsgType(msg[0]) != protocol.MsgPushRequest {
		out, err := a.result(msg, &Outcome{})
		if err != nil {
			return nil, err
		}
		return &PushOutcome{Status: out.Status, Result: out.Result}, nil
	}
	var pr protocol.PushRequest
	if err := protocol.DecodeMsg(msg, protocol.MsgPushRequest, &pr); err != nil {
		return nil, badPeer("the computer", err)
	}
	prompt, err := a.checkPush(v, dev, c, &pr)
	if err != nil {
		c.SendError(ctx, protocol.CodeRefused, "refused by the phone")
		return nil, err
	}
	if a.cfg.OnPush == nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, errors.New("push: this phone does not take push logins")
	}
	ans, err := a.cfg.OnPush(ctx, prompt)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	if ans.Report {
		if err := c.Send(ctx, protocol.MsgPushReport, &protocol.PushReport{Session: c.ID, Time: a.cfg.Now().Unix()}); err != nil {
			return nil, fmt.Errorf("push: send report: %w", err)
		}
		var res protocol.LoginResult
		if err := c.Recv(ctx, protocol.MsgLoginResult, &res); err != nil {
			var pe *protocol.PeerError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("push: receive result: %w", err)
			}
			res = protocol.LoginResult{Code: pe.Code, Text: pe.Text}
		}
		return &PushOutcome{Status: StatusReported, Prompt: prompt, Answer: ans, Result: res}, nil
	}
	if !ans.Deny && !slices.Contains(pr.Candidates, ans.Pick) {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, fmt.Errorf("push: %d is not one of the numbers offered", ans.Pick)
	}
	key, err := a.cfg.Wallet.ApprovalKey(a.cfg.Gate)
	if err != nil {
		return nil, err
	}
	ap := protocol.Approval{
		Serial: v.Tech.Serial, DeviceID: dev.DeviceID, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(),
		Action: pr.Action, Decision: protocol.DecisionDeny, Time: a.cfg.Now().Unix(),
	}
	text := "Deny: " + prompt.Request.Summary()
	if !ans.Deny {
		ap.Decision, ap.Number, ap.Reason, ap.Ticket = protocol.DecisionApprove, ans.Pick, ans.Reason, ans.Ticket
		text = fmt.Sprintf("Approve with %d: %s", ans.Pick, prompt.Request.Summary())
	}
	if _, err := io.ReadFull(a.cfg.Rand, ap.Nonce[:]); err != nil {
		return nil, fmt.Errorf("push: nonce: %w", err)
	}
	signed, err := protocol.SignP256(protocol.DocApproval, &ap, key.Signer(ctx, text), a.cfg.Rand)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	if err := c.Send(ctx, protocol.MsgApproval, &signed); err != nil {
		return nil, fmt.Errorf("push: send approval: %w", err)
	}
	msg, err = c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("push: receive result: %w", err)
	}
	out, err := a.result(msg, &Outcome{Request: &prompt.Request, Decision: Decision{Approve: !ans.Deny}})
	if err != nil {
		return nil, err
	}
	if out.Status == StatusApproved && len(out.Result.OfflineSecret) > 0 {
		a.storeDeviceSecret(o, dev.Tenant, dev.DeviceID, out.Result.OfflineSecret)
	}
	return &PushOutcome{Status: out.Status, Prompt: prompt, Answer: ans, Result: out.Result}, nil
}

// checkPush verifies the agent's push request: the device certificate
// signed by the MSP key, the directory's device and the handshake's key,
// valid now, not removed, allowed by the phone's copy of the policy; the
// request for this session with three distinct two-digit numbers.
func (a *App) checkPush(v *View, known protocol.DeviceCert, c *channel.Conn, pr *protocol.PushRequest) (*PushPrompt, error) {
	dev, err := a.checkDevice(v, known, c, pr.DeviceCert, pr.Session)
	if err != nil {
		return nil, err
	}
	switch {
	case protocol.ActionName(pr.Action) == "":
		return nil, fmt.Errorf("%w: unknown action", ErrBadPeer)
	case pr.Account == "" || len(pr.Account) > protocol.MaxNameLen || !printable(pr.Account):
		return nil, fmt.Errorf("%w: account name", ErrBadPeer)
	case len(pr.Choices) > 0:
		return nil, fmt.Errorf("%w: account choices in a push login", ErrBadPeer)
	}
	if err := pr.CheckCandidates(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPeer, err)
	}
	if err := a.policyCheck(v, &dev, false); err != nil {
		return nil, err
	}
	return &PushPrompt{
		Request:    Request{Org: v.Org.ID, Username: v.Tech.Username, Device: dev, Account: pr.Account, Action: pr.Action, Time: pr.Time},
		Candidates: slices.Clone(pr.Candidates),
	}, nil
}

// checkDevice verifies the device certificate of an agent's request in a
// FlowPush session: signed by the MSP key, the directory's device and the
// handshake's key, valid now, not removed; the request for
// this session.
func (a *App) checkDevice(v *View, known protocol.DeviceCert, c *channel.Conn, cert protocol.Signed, session protocol.SessionID) (protocol.DeviceCert, error) {
	var dev protocol.DeviceCert
	if err := cert.VerifyEd25519(protocol.DocDeviceCert, v.MSP, &dev); err != nil {
		return dev, fmt.Errorf("%w: the device's certificate is not from %s", ErrBadPeer, v.Org.Name)
	}
	switch {
	case dev.DeviceID != known.DeviceID || dev.NoiseKey != known.NoiseKey || !c.Session.PeerIs(dev.NoiseKey):
		return dev, fmt.Errorf("%w: device certificate names another device or key", ErrBadPeer)
	case session != c.ID:
		return dev, fmt.Errorf("%w: request for another session", ErrBadPeer)
	}
	if err := dev.Valid(a.cfg.Now()); err != nil {
		return dev, fmt.Errorf("%w: device certificate: %v", ErrBadPeer, err)
	}
	if p, ok := v.Policies[dev.Tenant]; ok && errors.Is(p.CheckDevice(&dev), protocol.ErrDeviceRevoked) {
		return dev, removedErr(&dev)
	}
	return dev, nil
}
