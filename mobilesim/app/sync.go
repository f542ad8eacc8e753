package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// Update reports what a push or a sync changed in an organisation.
type Update struct {
	Org      string                   // organisation id
	Versions []protocol.TenantVersion // versions held afterwards
	Applied  []protocol.TenantVersion // policies that replaced older ones
	Devices  int                      // directory size afterwards
	// DirectoryReplaced is true when the push carried a directory.
	DirectoryReplaced bool
}

// applyPush verifies a PolicyPush and stores what is new. Policies must be
// signed by the organisation's MSP key and are taken only with a higher
// version than the one held; a non-empty directory replaces the stored one
// (the console sends the whole directory of the technician's tenants).
// Nothing is stored if any document fails verification.
func (a *App) applyPush(o *wallet.Org, p *protocol.PolicyPush) (Update, error) {
	msp := o.MSP()
	held := map[string]int{}
	versions := map[string]uint64{}
	for i, s := range o.Policies {
		var pol protocol.Policy
		if err := s.VerifyEd25519(protocol.DocPolicy, msp, &pol); err != nil {
			return Update{}, fmt.Errorf("stored policy: %w", err)
		}
		held[pol.Tenant] = i
		versions[pol.Tenant] = pol.Version
	}
	u := Update{Org: o.ID}
	policies := append([]protocol.Signed(nil), o.Policies...)
	for _, s := range p.Policies {
		var pol protocol.Policy
		if err := s.VerifyEd25519(protocol.DocPolicy, msp, &pol); err != nil {
			return Update{}, fmt.Errorf("%w: policy: %v", ErrBadPeer, err)
		}
		if err := pol.Check(); err != nil {
			return Update{}, fmt.Errorf("%w: %v", ErrBadPeer, err)
		}
		if err := protocol.CheckPolicyUpgrade(versions[pol.Tenant], pol.Version); err != nil {
			a.log.Info("policy ignored", "tenant", pol.Tenant, "err", err)
			continue
		}
		if i, ok := held[pol.Tenant]; ok {
			policies[i] = s
		} else {
			held[pol.Tenant] = len(policies)
			policies = append(policies, s)
		}
		versions[pol.Tenant] = pol.Version
		u.Applied = append(u.Applied, protocol.TenantVersion{Tenant: pol.Tenant, Version: pol.Version})
	}
	dir := o.Directory
	if len(p.Directory) > 0 {
		for _, s := range p.Directory {
			var d protocol.DeviceCert
			if err := s.VerifyEd25519(protocol.DocDeviceCert, msp, &d); err != nil {
				return Update{}, fmt.Errorf("%w: device certificate: %v", ErrBadPeer, err)
			}
		}
		dir = p.Directory
		u.DirectoryReplaced = true
	}
	o.Policies, o.Directory = policies, dir
	o.UpdatedAt = a.cfg.Now().Unix()
	v, err := Load(o)
	if err != nil {
		return Update{}, err
	}
	u.Versions, u.Devices = v.Versions(), len(v.Devices)
	if err := a.cfg.Wallet.SaveOrg(o); err != nil {
		return Update{}, err
	}
	return u, nil
}

// Sync runs FlowSync with the current organisation's console: it asks for
// the current policies and directory, stores them and acknowledges.
func (a *App) Sync(ctx context.Context, d Dialer) (Update, error) {
	o, err := a.cfg.Wallet.Current()
	if err != nil {
		return Update{}, err
	}
	v, err := Load(o)
	if err != nil {
		return Update{}, err
	}
	addr, err := o.ConsoleAddr()
	if err != nil {
		return Update{}, err
	}
	c, err := d.Dial(ctx, channel.DialConfig{To: addr, Flow: protocol.FlowSync, PeerStatic: o.ConsoleKey()})
	if err != nil {
		return Update{}, dialErr("the console", err)
	}
	defer c.Close()
	if err := c.Send(ctx, protocol.MsgSyncRequest, &protocol.SyncRequest{Versions: v.Versions()}); err != nil {
		return Update{}, fmt.Errorf("sync: send: %w", err)
	}
	var push protocol.PolicyPush
	if err := c.Recv(ctx, protocol.MsgPolicyPush, &push); err != nil {
		var pe *protocol.PeerError
		if errors.As(err, &pe) {
			return Update{}, fmt.Errorf("%w: %s", ErrConsoleRefused, pe.Text)
		}
		return Update{}, fmt.Errorf("sync: receive: %w", err)
	}
	u, err := a.applyPush(o, &push)
	if err != nil {
		c.SendError(ctx, protocol.CodeRefused, "refused")
		return Update{}, err
	}
	if err := c.Send(ctx, protocol.MsgPolicyAck, &protocol.PolicyAck{Versions: u.Versions}); err != nil {
		return Update{}, fmt.Errorf("sync: ack: %w", err)
	}
	if a.cfg.OnUpdate != nil {
		a.cfg.OnUpdate(u)
	}
	return u, nil
}
