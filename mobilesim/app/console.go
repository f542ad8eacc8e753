package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// ErrNotOurConsole: a web console sign-in code shown by a console this
// phone is not paired with; the phone never answers it.
var ErrNotOurConsole = errors.New("this sign-in code is not from your MSP's console")

// consoleOrg finds the paired organisation whose console shows the code:
// same Noise static key and mailbox as the pairing gave (SPEC.md 11.12
// step 2).
func (a *App) consoleOrg(q protocol.QRPayload) (*wallet.Org, error) {
	orgs, err := a.cfg.Wallet.Orgs()
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		addr, err := o.ConsoleAddr()
		if err != nil {
			continue
		}
		if o.ConsoleKey() == q.Static && addr.Mailbox == q.Mailbox {
			return o, nil
		}
	}
	return nil, fmt.Errorf("%w: do not approve it, and tell your MSP admin where you saw it", ErrNotOurConsole)
}

// signIn runs FlowConsoleLogin for a web console sign-in code (a login QR
// with ActionConsole): the phone presents its certificate, checks the
// console's request, shows it and sends the technician's signed
// decision.
func (a *App) signIn(ctx context.Context, d Dialer, q protocol.QRPayload, opts ScanOptions) (*Outcome, error) {
	o, err := a.consoleOrg(q)
	if err != nil {
		return nil, err
	}
	v, err := Load(o)
	if err != nil {
		return nil, err
	}
	w := a.cfg.Wallet
	key, err := w.ApprovalKey(a.cfg.Gate)
	if err != nil {
		return nil, err
	}
	psk, err := protocol.Derive(q.Secret[:], protocol.LabelConsolePSK, nil, 32)
	if err != nil {
		return nil, err
	}
	sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelConsoleSession)
	if err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx, channel.DialConfig{To: q.Addr(), Flow: protocol.FlowConsoleLogin, PeerStatic: q.Static, PSK: psk, Session: sid})
	if err != nil {
		return nil, dialErr("the console", "the sign-in code may have been replaced on screen or already used; scan the code now on the screen", err)
	}
	defer c.Close()
	if err := c.Send(ctx, protocol.MsgLoginHello, &protocol.LoginHello{TechCert: o.TechCert}); err != nil {
		return nil, fmt.Errorf("sign in: send: %w", err)
	}
	msg, err := c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign in: receive request: %w", err)
	}
	if len(msg) > 0 && protocol.MsgType(msg[0]) != protocol.MsgConsoleRequest {
		return a.result(msg, &Outcome{})
	}
	var cr protocol.ConsoleRequest
	if err := protocol.DecodeMsg(msg, protocol.MsgConsoleRequest, &cr); err != nil {
		return nil, badPeer("the console", err)
	}
	if err := cr.Check(c.ID, a.cfg.Now()); err != nil {
		c.SendError(ctx, protocol.CodeRefused, "refused by the phone")
		return nil, badPeer("the console", err)
	}
	req := &Request{Org: v.Org.ID, Username: v.Tech.Username, Action: protocol.ActionConsole, Time: cr.Time, Console: &cr}
	dec, err := opts.Decide(ctx, req)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	ap := protocol.Approval{
		Serial: v.Tech.Serial, Session: c.ID, HandshakeHash: c.Session.HandshakeHash(),
		Action: protocol.ActionConsole, Decision: protocol.DecisionDeny, Time: a.cfg.Now().Unix(),
	}
	prompt := "Deny: " + req.Summary()
	if dec.Approve {
		ap.Decision = protocol.DecisionApprove
		prompt = "Approve: " + req.Summary()
	}
	if _, err := io.ReadFull(a.cfg.Rand, ap.Nonce[:]); err != nil {
		return nil, fmt.Errorf("sign in: nonce: %w", err)
	}
	signed, err := protocol.SignP256(protocol.DocApproval, &ap, key.Signer(ctx, prompt), a.cfg.Rand)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	if err := c.Send(ctx, protocol.MsgApproval, &signed); err != nil {
		return nil, fmt.Errorf("sign in: send approval: %w", err)
	}
	msg, err = c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign in: receive result: %w", err)
	}
	return a.result(msg, &Outcome{Request: req, Decision: Decision{Approve: dec.Approve}})
}
