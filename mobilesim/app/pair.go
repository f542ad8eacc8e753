package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// Pair runs FlowPair with the console that shows the pairing QR text, and
// stores the organisation it returns. The policies, directory and offline
// keys come as a paged transfer (SPEC.md 8.3) that starts in the
// PairResponse; nothing is stored unless every page arrived and checked
// out. Re-pairing with the same MSP replaces the stored organisation.
func (a *App) Pair(ctx context.Context, d Dialer, text string) (*View, error) {
	q, err := a.decodeQR(text, protocol.QRPair)
	if err != nil {
		return nil, err
	}
	psk, err := protocol.Derive(q.Secret[:], protocol.LabelPairPSK, nil, 32)
	if err != nil {
		return nil, err
	}
	sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelPairSession)
	if err != nil {
		return nil, err
	}
	w := a.cfg.Wallet
	phone := w.Phone()
	key, err := w.ApprovalKey(a.cfg.Gate)
	if err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx, channel.DialConfig{To: q.Addr(), Flow: protocol.FlowPair, PeerStatic: q.Static, PSK: psk, Session: sid})
	if err != nil {
		return nil, dialErr("the console", "the pairing code may have been used already, or the console is offline; ask for a new pairing code", err)
	}
	defer c.Close()
	hh := c.Session.HandshakeHash()
	approvalSig, err := key.SignRaw(ctx, "pair this phone with your organisation", protocol.ProofInput("approval", hh), a.cfg.Rand)
	if err != nil {
		c.Abort(ctx, 0)
		return nil, err
	}
	req := protocol.PairRequest{
		IdentityKey: phone.IdentityKey(),
		ApprovalKey: key.Public(),
		Relay:       phone.Relay,
		IdentitySig: ed25519.Sign(phone.Identity(), protocol.ProofInput("identity", hh)),
		ApprovalSig: approvalSig,
		Label:       a.cfg.Label,
	}
	if err := c.Send(ctx, protocol.MsgPairRequest, &req); err != nil {
		return nil, fmt.Errorf("pair: send: %w", err)
	}
	var resp protocol.PairResponse
	if err := c.Recv(ctx, protocol.MsgPairResponse, &resp); err != nil {
		var pe *protocol.PeerError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s", ErrConsoleRefused, pe.Text)
		}
		return nil, fmt.Errorf("pair: receive: %w", err)
	}
	x := protocol.NewTransfer(resp.MSPKey)
	err = x.Add(resp.Page())
	if err == nil {
		err = x.Receive(ctx, c)
	}
	if err != nil {
		return nil, a.transferErr(ctx, c, "pair", err)
	}
	o := &wallet.Org{
		Name:           resp.Org,
		MSPKey:         resp.MSPKey[:],
		Console:        q.Addr().String(),
		ConsoleNoise:   resp.ConsoleNoise[:],
		TechCert:       resp.TechCert,
		Policies:       x.Policies,
		Directory:      x.Directory,
		OfflineSecrets: offlineSecrets(x),
		PairedAt:       a.cfg.Now().Unix(),
		UpdatedAt:      a.cfg.Now().Unix(),
	}
	v, err := a.checkPairing(o, q, key.Public())
	if err != nil {
		a.log.Warn("pairing response rejected", "err", err)
		return nil, badPeer("the console", err)
	}
	if err := w.AssignID(o); err != nil {
		return nil, err
	}
	if err := w.SaveOrg(o); err != nil {
		return nil, err
	}
	return v, nil
}

// checkPairing verifies a pairing response before anything is stored: the
// console is the one the QR named, every document is signed by the MSP key,
// and the technician certificate certifies this phone's keys.
func (a *App) checkPairing(o *wallet.Org, q protocol.QRPayload, approval protocol.ApprovalKey) (*View, error) {
	phone := a.cfg.Wallet.Phone()
	if o.ConsoleKey() != q.Static {
		return nil, errors.New("console noise key differs from the pairing code's")
	}
	if o.Name == "" || len(o.Name) > protocol.MaxNameLen {
		return nil, errors.New("organisation name")
	}
	v, err := Load(o)
	if err != nil {
		return nil, err
	}
	t := v.Tech
	switch {
	case t.NoiseKey != phone.NoiseKey(),
		t.IdentityKey != phone.IdentityKey(),
		t.ApprovalKey != approval,
		t.Relay != phone.Relay:
		return nil, errors.New("technician certificate does not certify this phone's keys")
	}
	if err := t.Valid(a.cfg.Now()); err != nil {
		return nil, fmt.Errorf("technician certificate: %w", err)
	}
	for _, p := range v.Policies {
		if err := p.Check(); err != nil {
			return nil, err
		}
	}
	for _, s := range o.OfflineSecrets {
		if len(s.Secret) != 32 {
			return nil, errors.New("offline secret length")
		}
	}
	return v, nil
}
