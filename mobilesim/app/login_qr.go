package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/internal/otpcode"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// Request is a login request as the phone shows it: every field comes from
// the device's signed certificate or the agent's request, checked against
// the scanned code.
type Request struct {
	Org      string              // organisation id
	Username string              // the technician
	Device   protocol.DeviceCert // verified against the MSP key
	Account  string              // account the agent will make ready, e.g. msp-nik
	Action   uint8
	Choices  []uint8 // account kinds offered (selective login); empty: none
	Time     int64
	// Target is the RDP target of a remote domain logon (verified against
	// the MSP key, same tenant, domain-joined), nil otherwise; the
	// approval names it (SPEC.md 11.7).
	Target *protocol.DeviceCert
	// Console is set for a web console sign-in (ActionConsole, SPEC.md
	// 11.12): what the console asks; Device and Account are then empty.
	Console *protocol.ConsoleRequest
}

// Summary is the request's one-line screen text, e.g.
// "Log in to W11-L-PASSWORD (tenant acme) as msp-nik — action: logon".
func (r *Request) Summary() string {
	if c := r.Console; c != nil {
		from := ""
		if c.Client != "" {
			from = " from " + c.Client
		}
		return fmt.Sprintf("Sign in to the web console of %s at %s as %s%s — action: console", c.Org, c.Origin, r.Username, from)
	}
	verb := "Log in to"
	switch r.Action {
	case protocol.ActionUnlock:
		verb = "Unlock"
	case protocol.ActionElevate:
		verb = "Elevate on"
	case protocol.ActionSudo:
		verb = "Run sudo on"
	}
	if r.Target != nil {
		return fmt.Sprintf("Remote desktop from %s to %s (tenant %s) as %s — action: %s", r.Device.Name, r.Target.Name, r.Device.Tenant, r.Account, protocol.ActionName(r.Action))
	}
	return fmt.Sprintf("%s %s (tenant %s) as %s — action: %s", verb, r.Device.Name, r.Device.Tenant, r.Account, protocol.ActionName(r.Action))
}

// AccountName returns the name of an account kind: "default", "local" or
// "domain".
func AccountName(k uint8) string {
	switch k {
	case protocol.AccountLocal:
		return "local"
	case protocol.AccountDomain:
		return "domain"
	case protocol.AccountDefault:
		return "default"
	}
	return fmt.Sprintf("account(%d)", k)
}

// ParseAccount parses "local" or "domain" ("" and "default": the default).
func ParseAccount(s string) (uint8, error) {
	switch s {
	case "", "default":
		return protocol.AccountDefault, nil
	case "local":
		return protocol.AccountLocal, nil
	case "domain":
		return protocol.AccountDomain, nil
	}
	return 0, fmt.Errorf("unknown account kind %q (want domain or local)", s)
}

// Decision is the technician's answer to a request.
type Decision struct {
	Approve bool
	Account uint8 // AccountDefault, or one of Request.Choices
	// Reason and Ticket justify an approval (SPEC.md 6.4); the tenant's
	// policy may require them.
	Reason, Ticket string
}

// ScanOptions configures one QR login.
type ScanOptions struct {
	// Decide shows the request and returns the technician's decision.
	Decide func(ctx context.Context, r *Request) (Decision, error)
	// SkipPolicyCheck lets the request reach the agent even when the
	// phone's own copy of the policy says no (testbed: exercise the
	// agent's refusal).
	SkipPolicyCheck bool
}

// Outcome statuses.
const (
	StatusApproved = "approved" // the account is ready
	StatusDenied   = "denied"   // the technician denied; the agent confirmed
	StatusRefused  = "refused"  // the device refused (before or after the decision)
)

// Outcome is how a QR login ended.
type Outcome struct {
	Status   string
	Request  *Request // nil when the device refused before sending its request
	Decision Decision
	Result   protocol.LoginResult
}

// Message is the outcome's screen text.
func (o *Outcome) Message() string {
	switch o.Status {
	case StatusApproved:
		if c := o.Request.Console; c != nil {
			return "approved: signed in to the web console at " + c.Origin
		}
		return fmt.Sprintf("approved: %s is ready on %s", o.Result.Account, o.Request.Device.Name)
	case StatusDenied:
		return "denied"
	}
	text := o.Result.Text
	if text == "" {
		text = "refused"
	}
	return "refused by the device: " + text
}

// Scan runs a QR login (FlowQRLogin) for the login code text, or a web
// console sign-in (FlowConsoleLogin) for a code with ActionConsole.
func (a *App) Scan(ctx context.Context, d Dialer, text string, opts ScanOptions) (*Outcome, error) {
	q, err := a.decodeQR(text, protocol.QRLogin)
	if err != nil {
		return nil, err
	}
	if q.Action == protocol.ActionConsole {
		return a.signIn(ctx, d, q, opts)
	}
	w := a.cfg.Wallet
	o, err := w.Current()
	if err != nil {
		return nil, err
	}
	v, err := Load(o)
	if err != nil {
		return nil, err
	}
	if err := a.preCheck(v, q.DeviceID, opts.SkipPolicyCheck); err != nil {
		return nil, err
	}
	key, err := w.ApprovalKey(a.cfg.Gate)
	if err != nil {
		return nil, err
	}
	psk, err := protocol.Derive(q.Secret[:], protocol.LabelQRPSK, nil, 32)
	if err != nil {
		return nil, err
	}
	sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelQRSession)
	if err != nil {
		return nil, err
	}
	c, err := d.Dial(ctx, channel.DialConfig{To: q.Addr(), Flow: protocol.FlowQRLogin, PeerStatic: q.Static, PSK: psk, Session: sid})
	if err != nil {
		return nil, dialErr("the computer", "the code may have been replaced on screen or already used, or the computer is offline; scan the code now on the screen", err)
	}
	defer c.Close()
	if err := c.Send(ctx, protocol.MsgLoginHello, &protocol.LoginHello{TechCert: o.TechCert}); err != nil {
		return nil, fmt.Errorf("scan: send: %w", err)
	}
	msg, err := c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan: receive request: %w", err)
	}
	if len(msg) > 0 && protocol.MsgType(msg[0]) != protocol.MsgLoginRequest {
		return a.result(msg, &Outcome{})
	}
	var lr protocol.LoginRequest
	if err := protocol.DecodeMsg(msg, protocol.MsgLoginRequest, &lr); err != nil {
		return nil, badPeer("the computer", err)
	}
	req, err := a.checkRequest(v, q, c, &lr, opts.SkipPolicyCheck)
	if err != nil {
		a.log.Warn("login request rejected", "err", err)
		c.SendError(ctx, protocol.CodeRefused, "refused by the phone")
		return nil, err
	}
	dec, err := opts.Decide(ctx, req)
	if err != nil {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	if dec.Account != protocol.AccountDefault && !slices.Contains(req.Choices, dec.Account) {
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, fmt.Errorf("%w: %s", ErrNotOffered, AccountName(dec.Account))
	}
	ap := protocol.Approval{
		Serial:        v.Tech.Serial,
		DeviceID:      q.DeviceID,
		Session:       c.ID,
		HandshakeHash: c.Session.HandshakeHash(),
		Action:        lr.Action,
		Account:       dec.Account,
		Decision:      protocol.DecisionDeny,
		Time:          a.cfg.Now().Unix(),
	}
	if req.Target != nil {
		// A remote desktop logon is a domain logon bound to both machines.
		if dec.Account != protocol.AccountDomain {
			c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
			return nil, fmt.Errorf("%w: remote desktop needs the domain account", ErrNotOffered)
		}
		ap.Target = req.Target.DeviceID
	}
	prompt := "Deny: " + req.Summary()
	if dec.Approve {
		ap.Decision, ap.Reason, ap.Ticket = protocol.DecisionApprove, dec.Reason, dec.Ticket
		prompt = "Approve: " + req.Summary()
	}
	if _, err := io.ReadFull(a.cfg.Rand, ap.Nonce[:]); err != nil {
		return nil, fmt.Errorf("scan: nonce: %w", err)
	}
	signed, err := protocol.SignP256(protocol.DocApproval, &ap, key.Signer(ctx, prompt), a.cfg.Rand)
	if err != nil {
		// Biometric failure or cancellation: nothing is signed, the agent
		// is told the request was not approved.
		c.SendError(ctx, protocol.CodeDenied, "cancelled on the phone")
		return nil, err
	}
	if err := c.Send(ctx, protocol.MsgApproval, &signed); err != nil {
		return nil, fmt.Errorf("scan: send approval: %w", err)
	}
	msg, err = c.RecvRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan: receive result: %w", err)
	}
	out, err := a.result(msg, &Outcome{Request: req, Decision: dec})
	if err == nil && out.Status == StatusApproved && len(out.Result.OfflineSecret) > 0 {
		a.storeDeviceSecret(o, req.Device.Tenant, q.DeviceID, out.Result.OfflineSecret)
	}
	return out, err
}

// result decodes a LoginResult or MsgError into the outcome.
func (a *App) result(msg []byte, out *Outcome) (*Outcome, error) {
	var res protocol.LoginResult
	err := protocol.DecodeMsg(msg, protocol.MsgLoginResult, &res)
	var pe *protocol.PeerError
	switch {
	case errors.As(err, &pe):
		res = protocol.LoginResult{Code: pe.Code, Text: pe.Text}
	case err != nil:
		return nil, badPeer("the computer", err)
	}
	out.Result = res
	switch {
	case res.OK && out.Request != nil && out.Decision.Approve:
		out.Status = StatusApproved
	case res.OK:
		// OK for a request never approved: the agent is confused; say so.
		return nil, fmt.Errorf("%w: success reported for a request the phone did not approve", ErrBadPeer)
	case res.Code == protocol.CodeDenied && out.Request != nil && !out.Decision.Approve:
		out.Status = StatusDenied
	default:
		out.Status = StatusRefused
	}
	return out, nil
}

// preCheck runs before anything is sent: a device the MSP removed, a
// device listed in another organisation's directory, a device of a tenant
// the technician is not delegated to, or a login the phone's copy of the
// policy refuses. A removed device is refused even with skipPolicy: the
// phone never contacts it (SPEC.md 11.10).
func (a *App) preCheck(v *View, id protocol.DeviceID, skipPolicy bool) error {
	if dev, ok := v.RemovedDevice(id); ok {
		return removedErr(&dev)
	}
	dev, ok := v.Device(id)
	if !ok {
		orgs, err := a.cfg.Wallet.Orgs()
		if err != nil {
			return err
		}
		for _, other := range orgs {
			if other.ID == v.Org.ID {
				continue
			}
			ov, err := Load(other)
			if err != nil {
				continue
			}
			if d, found := ov.Device(id); found {
				return fmt.Errorf("%w: %s is a device of %s (tenant %s); switch with: use %s", ErrOtherOrg, d.Name, other.Name, d.Tenant, other.ID)
			}
		}
		return nil // not in the directory yet: the agent's signed certificate decides
	}
	return a.policyCheck(v, &dev, skipPolicy)
}

func (a *App) policyCheck(v *View, dev *protocol.DeviceCert, skip bool) error {
	if !v.MaySee(dev.Tenant) {
		return fmt.Errorf("%w: %s belongs to tenant %s, which %s is not delegated to", ErrOtherTenant, dev.Name, dev.Tenant, v.Tech.Username)
	}
	if skip {
		return nil
	}
	p, ok := v.Policies[dev.Tenant]
	if !ok {
		return nil // no policy held for the tenant: the agent decides
	}
	if err := p.Authorize(&v.Tech, dev); err != nil {
		reason := "not allowed"
		switch {
		case errors.Is(err, protocol.ErrDeviceRevoked):
			return removedErr(dev)
		case errors.Is(err, protocol.ErrRevoked):
			reason = "your certificate is revoked"
		case errors.Is(err, protocol.ErrNotShared):
			reason = "the device is not shared with you"
		case errors.Is(err, protocol.ErrNotDelegated):
			reason = "you are not delegated to the tenant"
		}
		return fmt.Errorf("%w: %s on %s (tenant %s): %s", ErrPolicyDenied, v.Tech.Username, dev.Name, dev.Tenant, reason)
	}
	return nil
}

// checkRequest verifies the agent's request against the scanned code and
// the organisation: the device certificate is signed by the MSP key, names
// the device and Noise key of the code (which the handshake proved), and
// the request is for this session and the code's action.
func (a *App) checkRequest(v *View, q protocol.QRPayload, c *channel.Conn, lr *protocol.LoginRequest, skipPolicy bool) (*Request, error) {
	var dev protocol.DeviceCert
	if err := lr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, v.MSP, &dev); err != nil {
		return nil, fmt.Errorf("%w: the device's certificate is not from %s", ErrBadPeer, v.Org.Name)
	}
	switch {
	case dev.DeviceID != q.DeviceID:
		return nil, fmt.Errorf("%w: device certificate names another device", ErrBadPeer)
	case dev.NoiseKey != q.Static || !c.Session.PeerIs(dev.NoiseKey):
		return nil, fmt.Errorf("%w: device certificate names another key", ErrBadPeer)
	case lr.Session != c.ID:
		return nil, fmt.Errorf("%w: request for another session", ErrBadPeer)
	case lr.Action != q.Action:
		return nil, fmt.Errorf("%w: request for another action than the code's", ErrBadPeer)
	case lr.Number != 0:
		return nil, fmt.Errorf("%w: number matching in a QR login", ErrBadPeer)
	case lr.Account == "" || len(lr.Account) > protocol.MaxNameLen || !printable(lr.Account):
		// The account name goes into the approval prompt: no control
		// characters that could redraw what the technician reads.
		return nil, fmt.Errorf("%w: account name", ErrBadPeer)
	}
	for _, k := range lr.Choices {
		if k != protocol.AccountLocal && k != protocol.AccountDomain {
			return nil, fmt.Errorf("%w: unknown account kind offered", ErrBadPeer)
		}
	}
	if err := dev.Valid(a.cfg.Now()); err != nil {
		return nil, fmt.Errorf("%w: device certificate: %v", ErrBadPeer, err)
	}
	// R-46, whatever skipPolicy says: a device the MSP removed is never
	// approved.
	if p, ok := v.Policies[dev.Tenant]; ok && errors.Is(p.CheckDevice(&dev), protocol.ErrDeviceRevoked) {
		return nil, removedErr(&dev)
	}
	if err := a.policyCheck(v, &dev, skipPolicy); err != nil {
		return nil, err
	}
	req := &Request{
		Org: v.Org.ID, Username: v.Tech.Username, Device: dev, Account: lr.Account,
		Action: lr.Action, Choices: lr.Choices, Time: lr.Time,
	}
	if lr.Target.Body != nil {
		// RDP: the target is shown and signed into the approval; only a
		// domain logon can have one.
		var t protocol.DeviceCert
		if err := lr.Target.VerifyEd25519(protocol.DocDeviceCert, v.MSP, &t); err != nil {
			return nil, fmt.Errorf("%w: the RDP target's certificate is not from %s", ErrBadPeer, v.Org.Name)
		}
		switch {
		case t.Tenant != dev.Tenant || !t.DomainJoined || !dev.DomainJoined || t.DeviceID == dev.DeviceID:
			return nil, fmt.Errorf("%w: RDP target not a domain machine of the tenant", ErrBadPeer)
		case !slices.Contains(lr.Choices, protocol.AccountDomain) || lr.Action != protocol.ActionLogon:
			return nil, fmt.Errorf("%w: RDP target without a domain logon", ErrBadPeer)
		case t.Valid(a.cfg.Now()) != nil:
			return nil, fmt.Errorf("%w: RDP target certificate not valid now", ErrBadPeer)
		}
		if err := a.policyCheck(v, &t, skipPolicy); err != nil {
			return nil, err
		}
		req.Target = &t
	}
	return req, nil
}

// printable reports whether s holds only printable runes (the wire
// format already refuses strings that are not UTF-8).
func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// removedErr is the refusal of a device the MSP removed.
func removedErr(d *protocol.DeviceCert) error {
	return fmt.Errorf("%w: %s (tenant %s); this phone no longer logs in to it", ErrDeviceRemoved, d.Name, d.Tenant)
}

// storeDeviceSecret keeps a device's named-mode offline key (SPEC.md
// 11.6: 20 bytes, sent by the agent in an online login) for the otp
// command, replacing an older one.
func (a *App) storeDeviceSecret(o *wallet.Org, tenant string, id protocol.DeviceID, secret []byte) {
	if len(secret) != otpcode.KeySize {
		a.log.Warn("offline key ignored: wrong size", "tenant", tenant, "device_id", fmt.Sprintf("%x", id[:]), "bytes", len(secret))
		return
	}
	fresh, err := a.cfg.Wallet.Org(o.ID)
	if err != nil {
		a.log.Warn("store offline key", "err", err)
		return
	}
	fresh.SetDeviceKey(tenant, id, secret)
	if err := a.cfg.Wallet.SaveOrg(fresh); err != nil {
		a.log.Warn("store offline key", "err", err)
		return
	}
	a.log.Info("offline key stored", "tenant", tenant, "device_id", fmt.Sprintf("%x", id[:]))
}
