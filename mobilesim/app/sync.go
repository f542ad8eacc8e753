package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
	// DirectoryReplaced is true when the stored directory was replaced,
	// which every complete transfer does (it carries the whole directory).
	DirectoryReplaced bool
	Pages             int // pages the transfer came in
	// Removed names the devices this update removed (SPEC.md 11.10):
	// they left the directory and their tenant's policy revokes them.
	Removed []string
}

// transferErr reports a transfer that failed before it was complete;
// nothing of it has been stored. A page the phone cannot trust is answered
// with a coarse refusal (SPEC.md 8.3, R-45).
func (a *App) transferErr(ctx context.Context, c *channel.Conn, flow string, err error) error {
	var pe *protocol.PeerError
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("%w: %s", ErrConsoleRefused, pe.Text)
	case errors.Is(err, protocol.ErrPageSequence), errors.Is(err, protocol.ErrDuplicateDoc),
		errors.Is(err, protocol.ErrBadSignature), errors.Is(err, protocol.ErrInvalidDoc),
		errors.Is(err, protocol.ErrMalformed):
		a.log.Warn(flow+": transfer rejected; keeping what the phone holds", "err", err)
		c.SendError(ctx, protocol.CodeRefused, "refused")
		return badPeer("the console", err)
	}
	return fmt.Errorf("%s: receive: %w", flow, err)
}

// offlineSecrets returns a transfer's offline keys as the wallet keeps
// them.
func offlineSecrets(x *protocol.Transfer) []wallet.TenantSecret {
	var out []wallet.TenantSecret
	for _, s := range x.OfflineSecrets {
		out = append(out, wallet.TenantSecret{Tenant: s.Tenant, Secret: s.Secret, Generation: s.Generation})
	}
	return out
}

// applyTransfer stores a complete transfer (SPEC.md 8.3) in one step. Its
// documents were verified page by page against the organisation's MSP key.
// A policy replaces the one held for its tenant only with a higher version
// (an older or equal one is ignored); the directory and the offline keys
// are replaced by the transfer's, which are complete. Nothing is stored if
// the transfer is not complete or anything in it is refused.
func (a *App) applyTransfer(o *wallet.Org, x *protocol.Transfer) (Update, error) {
	if err := x.Finish(); err != nil {
		return Update{}, err
	}
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
	u := Update{Org: o.ID, DirectoryReplaced: true, Pages: x.Pages()}
	policies := append([]protocol.Signed(nil), o.Policies...)
	for i, pol := range x.PolicyDocs {
		if err := protocol.CheckPolicyUpgrade(versions[pol.Tenant], pol.Version); err != nil {
			a.log.Info("policy ignored", "tenant", pol.Tenant, "err", err)
			continue
		}
		if j, ok := held[pol.Tenant]; ok {
			policies[j] = x.Policies[i]
		} else {
			held[pol.Tenant] = len(policies)
			policies = append(policies, x.Policies[i])
		}
		versions[pol.Tenant] = pol.Version
		u.Applied = append(u.Applied, protocol.TenantVersion{Tenant: pol.Tenant, Version: pol.Version})
	}
	for _, s := range x.OfflineSecrets {
		if len(s.Secret) != 32 {
			return Update{}, fmt.Errorf("%w: offline key of tenant %q: %d bytes", ErrBadPeer, s.Tenant, len(s.Secret))
		}
	}
	before, err := Load(o)
	if err != nil {
		return Update{}, err
	}
	n := *o
	n.Policies, n.Directory, n.OfflineSecrets = policies, x.Directory, offlineSecrets(x)
	n.Removed = removedCandidates(o, x, msp)
	n.UpdatedAt = a.cfg.Now().Unix()
	v, err := Load(&n)
	if err != nil {
		return Update{}, err
	}
	// Keep only the certificates that the new policies revoke.
	n.Removed = slices.DeleteFunc(n.Removed, func(s protocol.Signed) bool {
		var d protocol.DeviceCert
		_ = s.VerifyEd25519(protocol.DocDeviceCert, msp, &d) // verified by Load
		_, revoked := v.RemovedDevice(d.DeviceID)
		return !revoked
	})
	for _, d := range v.Removed {
		// A removed device's offline key is of no use any more.
		n.DeviceSecrets = slices.DeleteFunc(slices.Clone(n.DeviceSecrets), func(s wallet.DeviceSecret) bool {
			return string(s.DeviceID) == string(d.DeviceID[:])
		})
		if _, was := before.RemovedDevice(d.DeviceID); !was {
			u.Removed = append(u.Removed, d.Name)
			a.log.Warn("device removed by the MSP", "device", d.Name, "tenant", d.Tenant, "serial", d.Serial)
		}
	}
	u.Versions, u.Devices = v.Versions(), len(v.Devices)
	if err := a.cfg.Wallet.SaveOrg(&n); err != nil {
		return Update{}, err
	}
	*o = n
	return u, nil
}

// Sync runs FlowSync with the current organisation's console: it asks for
// the current policies, directory and offline keys, receives them as a
// paged transfer (SPEC.md 8.3), stores them once complete and
// acknowledges.
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
		return Update{}, dialErr("the console", "it may be offline; try again later", err)
	}
	defer c.Close()
	if err := c.Send(ctx, protocol.MsgSyncRequest, &protocol.SyncRequest{Versions: v.Versions()}); err != nil {
		return Update{}, fmt.Errorf("sync: send: %w", err)
	}
	x := protocol.NewTransfer(o.MSP())
	if err := x.Receive(ctx, c); err != nil {
		return Update{}, a.transferErr(ctx, c, "sync", err)
	}
	u, err := a.applyTransfer(o, x)
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

// removedCandidates returns the device certificates the phone held
// (listed or remembered as removed) that the transfer's directory no
// longer has, once each: those whose tenant's policy revokes them are the
// devices the MSP removed (SPEC.md 11.10).
func removedCandidates(o *wallet.Org, x *protocol.Transfer, msp protocol.IdentityKey) []protocol.Signed {
	seen := map[protocol.DeviceID]bool{}
	for _, s := range x.Directory {
		var d protocol.DeviceCert
		if s.VerifyEd25519(protocol.DocDeviceCert, msp, &d) == nil {
			seen[d.DeviceID] = true
		}
	}
	var out []protocol.Signed
	for _, s := range slices.Concat(o.Directory, o.Removed) {
		var d protocol.DeviceCert
		if s.VerifyEd25519(protocol.DocDeviceCert, msp, &d) != nil || seen[d.DeviceID] {
			continue
		}
		seen[d.DeviceID] = true
		out = append(out, s)
	}
	return out
}
