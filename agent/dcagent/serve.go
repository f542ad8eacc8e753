package dcagent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// StepTimeout bounds each wait of a FlowDomain session.
const StepTimeout = 30 * time.Second

// SetWorkstations replaces the domain-joined workstations the DC agent
// accepts FlowDomain from (KK needs the peer's static key before the
// handshake): each certificate must verify with the MSP key, be of the
// DC's tenant and say DomainJoined; others are skipped. It returns how
// many it kept.
func (s *Service) SetWorkstations(ctx context.Context, certs []protocol.Signed) (int, error) {
	ws := Peers(certs, s.cfg.MSPKey, s.cfg.Tenant, func(d *protocol.DeviceCert) bool { return d.DomainJoined })
	err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error { return tx.SetDomainWorkstations(ws) })
	if err != nil {
		return 0, fmt.Errorf("dcagent: workstations: %w", err)
	}
	return len(ws), nil
}

// Peers returns the FlowDomain peers among certs (a PolicyPush
// Directory): each certificate verifies with the MSP key, is of the
// tenant and passes keep; the others are skipped.
func Peers(certs []protocol.Signed, msp protocol.IdentityKey, tenant string, keep func(*protocol.DeviceCert) bool) []store.DomainWorkstation {
	var out []store.DomainWorkstation
	for _, sd := range certs {
		var d protocol.DeviceCert
		if sd.VerifyEd25519(protocol.DocDeviceCert, msp, &d) != nil || d.Tenant != tenant || !keep(&d) {
			continue
		}
		b, err := sd.Encode()
		if err != nil {
			continue
		}
		out = append(out, store.DomainWorkstation{Mailbox: protocol.MailboxFor(d.IdentityKey.Public()), Noise: d.NoiseKey, Cert: b})
	}
	return out
}

// Accept is the channel.Config.Accept answer for FlowDomain: the
// workstation's Noise key from the list SetWorkstations keeps.
func (s *Service) Accept(ctx context.Context, h channel.Hello) ([]byte, protocol.NoiseKey, error) {
	var w store.DomainWorkstation
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		w, err = tx.DomainWorkstation(h.From.Mailbox)
		return err
	})
	if err != nil {
		return nil, protocol.NoiseKey{}, fmt.Errorf("dcagent: flow domain from unknown workstation: %w", err)
	}
	return nil, w.Noise, nil
}

// Serve answers one FlowDomain session: a DomainRequest (answered with a
// DomainResult carrying the password, or MsgError) or a DomainEnd
// (answered with DomainResult{OK}).
func (s *Service) Serve(ctx context.Context, c *channel.Conn) {
	defer c.Close()
	step := func(f func(context.Context) error) error {
		ctx, cancel := context.WithTimeout(ctx, StepTimeout)
		defer cancel()
		return f(ctx)
	}
	var raw []byte
	if err := step(func(ctx context.Context) (err error) { raw, err = c.RecvRaw(ctx); return err }); err != nil || len(raw) == 0 {
		return
	}
	peer := c.Session.PeerStatic()
	reply := func(res protocol.DomainResult, err error) {
		var rf *Refusal
		switch {
		case errors.As(err, &rf):
			_ = step(func(ctx context.Context) error { return c.SendError(ctx, rf.Code, rf.Text()) })
		case err != nil:
			_ = step(func(ctx context.Context) error { return c.SendError(ctx, protocol.CodeUnavailable, "unavailable") })
		default:
			_ = step(func(ctx context.Context) error { return c.Send(ctx, protocol.MsgDomainResult, &res) })
		}
	}
	switch protocol.MsgType(raw[0]) {
	case protocol.MsgDomainRequest:
		var r protocol.DomainRequest
		if err := protocol.DecodeMsg(raw, protocol.MsgDomainRequest, &r); err != nil {
			reply(protocol.DomainResult{}, &Refusal{Code: protocol.CodeBadRequest, Reason: "bad request"})
			return
		}
		// The password exists only in res and in the encrypted message.
		res, err := s.Request(ctx, peer, &r)
		reply(res, err)
	case protocol.MsgDomainEnd:
		var e protocol.DomainEnd
		if err := protocol.DecodeMsg(raw, protocol.MsgDomainEnd, &e); err != nil {
			reply(protocol.DomainResult{}, &Refusal{Code: protocol.CodeBadRequest, Reason: "bad request"})
			return
		}
		err := s.End(ctx, peer, &e)
		reply(protocol.DomainResult{OK: err == nil, Account: e.Account}, err)
	default:
		reply(protocol.DomainResult{}, &Refusal{Code: protocol.CodeBadRequest, Reason: "bad request"})
	}
}

// Ask sends a DomainRequest over c (a FlowDomain session the workstation
// dialled to the DC agent) and returns the DomainResult; a refusal
// arrives as *protocol.PeerError.
func Ask(ctx context.Context, c *channel.Conn, r *protocol.DomainRequest) (protocol.DomainResult, error) {
	var res protocol.DomainResult
	if err := c.Send(ctx, protocol.MsgDomainRequest, r); err != nil {
		return res, fmt.Errorf("dcagent: send domain request: %w", err)
	}
	if err := c.Recv(ctx, protocol.MsgDomainResult, &res); err != nil {
		return res, fmt.Errorf("dcagent: domain result: %w", err)
	}
	if !res.OK {
		return res, fmt.Errorf("dcagent: domain request not granted (code %d)", res.Code)
	}
	return res, nil
}

// Finish sends a DomainEnd over c and waits for the DC agent's answer.
func Finish(ctx context.Context, c *channel.Conn, e *protocol.DomainEnd) error {
	if err := c.Send(ctx, protocol.MsgDomainEnd, e); err != nil {
		return fmt.Errorf("dcagent: send domain end: %w", err)
	}
	var res protocol.DomainResult
	if err := c.Recv(ctx, protocol.MsgDomainResult, &res); err != nil {
		return fmt.Errorf("dcagent: domain end: %w", err)
	}
	if !res.OK {
		return errors.New("dcagent: domain end not confirmed")
	}
	return nil
}
