// Package dcclient is the workstation agent's side of selective login
// with domain accounts (SPEC.md 11.7): it keeps the DC agents of its
// tenant that the console lists in its policy push (8.2), asks one, over
// KK FlowDomain, for a domain account with the technician's signed
// approval (DomainRequest), and tells it when the session ends
// (DomainEnd). It never stores the password it obtains.
package dcclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/dcagent"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// DefaultStepTimeout bounds one FlowDomain exchange by default.
const DefaultStepTimeout = 30 * time.Second

// Errors of Obtain and End.
var (
	// ErrNoDC: the console listed no DC agent for this workstation.
	ErrNoDC = errors.New("dcclient: no domain controller known")
	// ErrUnreachable: the DC agent did not answer, or answered that the
	// directory is unavailable (code 3).
	ErrUnreachable = errors.New("dcclient: domain controller unreachable")
	// ErrRefused: the DC agent refused the request (codes 1, 2, 4).
	ErrRefused = errors.New("dcclient: domain controller refused the domain account")
)

// Config configures a Client.
type Config struct {
	Store *store.Store
	// Dial opens a session (the agent's channel.Mux.Dial).
	Dial   func(context.Context, channel.DialConfig) (*channel.Conn, error)
	MSPKey protocol.IdentityKey
	Tenant string
	// Domain is the domain's NetBIOS name: a logon name is then
	// DOMAIN\account (SPEC.md 5.7.3); "" gives the account name alone.
	Domain      string
	StepTimeout time.Duration
}

// Client asks the tenant's DC agent for domain accounts.
type Client struct{ cfg Config }

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = DefaultStepTimeout
	}
	return &Client{cfg: cfg}
}

// SetDCs replaces the DC agents this workstation may ask (the Directory
// of its policy push): each certificate must verify with the MSP key, be
// of the tenant and say DC; others are skipped. It returns how many it
// kept.
func (c *Client) SetDCs(ctx context.Context, certs []protocol.Signed) (int, error) {
	dcs := dcagent.Peers(certs, c.cfg.MSPKey, c.cfg.Tenant, func(d *protocol.DeviceCert) bool { return d.DC })
	if err := c.cfg.Store.Update(ctx, func(tx *store.Tx) error { return tx.SetDomainWorkstations(dcs) }); err != nil {
		return 0, fmt.Errorf("dcclient: store DCs: %w", err)
	}
	return len(dcs), nil
}

// dc returns the DC agent to ask: the first listed (by mailbox) whose
// certificate is valid now. One DC only: an approval is single use per
// DC agent, so a request is never sent to a second one.
func (c *Client) dc(ctx context.Context, now time.Time) (protocol.DeviceCert, error) {
	var rows []store.DomainWorkstation
	if err := c.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		rows, err = tx.DomainWorkstations()
		return err
	}); err != nil {
		return protocol.DeviceCert{}, fmt.Errorf("dcclient: %w", err)
	}
	for _, r := range rows {
		sd, err := protocol.DecodeSigned(r.Cert)
		if err != nil {
			continue
		}
		var d protocol.DeviceCert
		if sd.VerifyEd25519(protocol.DocDeviceCert, c.cfg.MSPKey, &d) != nil || !d.DC || d.Tenant != c.cfg.Tenant || d.Valid(now) != nil {
			continue
		}
		return d, nil
	}
	return protocol.DeviceCert{}, ErrNoDC
}

// Available reports whether a DC agent is known, so that a login may
// offer a domain account.
func (c *Client) Available(ctx context.Context, now time.Time) bool {
	_, err := c.dc(ctx, now)
	return err == nil
}

// LogonName is the name the login surface logs on with (SPEC.md 5.7.3).
func (c *Client) LogonName(account string) string {
	if c.cfg.Domain == "" {
		return account
	}
	return c.cfg.Domain + `\` + account
}

func (c *Client) dial(ctx context.Context, now time.Time) (*channel.Conn, error) {
	d, err := c.dc(ctx, now)
	if err != nil {
		return nil, err
	}
	to := protocol.PeerAddr{Relay: d.Relay, Mailbox: protocol.MailboxFor(d.IdentityKey.Public())}
	conn, err := c.cfg.Dial(ctx, channel.DialConfig{To: to, Flow: protocol.FlowDomain, PeerStatic: d.NoiseKey})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, d.Name, err)
	}
	return conn, nil
}

// classify maps a FlowDomain failure to ErrRefused or ErrUnreachable.
func classify(err error) error {
	if pe, ok := errors.AsType[*protocol.PeerError](err); ok && pe.Code != protocol.CodeUnavailable {
		return fmt.Errorf("%w (code %d)", ErrRefused, pe.Code)
	}
	if errors.Is(err, ErrRefused) || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNoDC) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// Obtain sends r to the DC agent and returns its DomainResult (the
// account and the one-time password, which the caller hands to the login
// surface and never stores).
func (c *Client) Obtain(ctx context.Context, r *protocol.DomainRequest, now time.Time) (protocol.DomainResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StepTimeout)
	defer cancel()
	conn, err := c.dial(ctx, now)
	if err != nil {
		return protocol.DomainResult{}, classify(err)
	}
	defer conn.Close()
	res, err := dcagent.Ask(ctx, conn, r)
	if err != nil {
		return protocol.DomainResult{}, classify(err)
	}
	if res.Account == "" || res.Password == "" {
		return protocol.DomainResult{}, fmt.Errorf("%w: answer without account or password", ErrRefused)
	}
	return res, nil
}

// End tells the DC agent that the domain session ended (DomainEnd).
func (c *Client) End(ctx context.Context, session protocol.SessionID, account string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StepTimeout)
	defer cancel()
	conn, err := c.dial(ctx, now)
	if err != nil {
		return classify(err)
	}
	defer conn.Close()
	if err := dcagent.Finish(ctx, conn, &protocol.DomainEnd{Session: session, Account: account}); err != nil {
		return classify(err)
	}
	return nil
}
