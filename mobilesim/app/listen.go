package app

import (
	"context"
	"errors"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

var errNotAccepted = errors.New("app: session not accepted")

// consoleOf returns the paired organisation whose console has mailbox m.
func (a *App) consoleOf(m protocol.MailboxID) (*wallet.Org, error) {
	orgs, err := a.cfg.Wallet.Orgs()
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		addr, err := o.ConsoleAddr()
		if err == nil && addr.Mailbox == m {
			return o, nil
		}
	}
	return nil, errNotAccepted
}

// Accept is the channel.Config.Accept hook of a listening phone: it answers
// FlowPolicy from the console of a paired organisation only (its mailbox,
// and its Noise key through the KK handshake), and FlowPush from a device
// of the current organisation's directory when Config.OnPush is set.
func (a *App) Accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	if h.Flow == protocol.FlowPush {
		return a.acceptPush(h)
	}
	if h.Flow != protocol.FlowPolicy {
		return nil, protocol.NoiseKey{}, errNotAccepted
	}
	o, err := a.consoleOf(h.From.Mailbox)
	if err != nil {
		return nil, protocol.NoiseKey{}, err
	}
	return nil, o.ConsoleKey(), nil
}

// Handle is the channel.Config.Handle hook: it receives the console's
// paged transfer (SPEC.md 8.3), stores it once complete and acknowledges
// the versions held.
func (a *App) Handle(ctx context.Context, c *channel.Conn) {
	if c.Flow == protocol.FlowPush {
		a.handlePush(ctx, c)
		return
	}
	o, err := a.consoleOf(c.Peer.Mailbox)
	if err != nil || c.Flow != protocol.FlowPolicy || !c.Session.PeerIs(o.ConsoleKey()) {
		return
	}
	x := protocol.NewTransfer(o.MSP())
	if err := x.Receive(ctx, c); err != nil {
		a.log.Info("policy push", "org", o.ID, "err", a.transferErr(ctx, c, "policy push", err))
		return
	}
	u, err := a.applyTransfer(o, x)
	if err != nil {
		a.log.Warn("policy push rejected", "org", o.ID, "err", err)
		c.SendError(ctx, protocol.CodeRefused, "refused")
		return
	}
	if err := c.Send(ctx, protocol.MsgPolicyAck, &protocol.PolicyAck{Versions: u.Versions}); err != nil {
		a.log.Info("policy ack", "org", o.ID, "err", err)
	}
	if a.cfg.OnUpdate != nil {
		a.cfg.OnUpdate(u)
	}
}
