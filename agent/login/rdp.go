package login

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/protocol"
)

// RDPTargets resolves the RDP target a login surface names (SPEC.md
// 5.7.1, 11.7). A Config.Domain that implements it (*dcclient.Client)
// allows remote domain logons from this computer.
type RDPTargets interface {
	// Target returns the certificate of the domain-joined device of this
	// computer's tenant that the directory lists under name (its Name,
	// or its DeviceID as 32 lowercase hex digits), valid at now.
	Target(ctx context.Context, name string, now time.Time) (protocol.Signed, protocol.DeviceCert, error)
}

// ErrNoTarget: the surface named an RDP target this computer may not ask
// for (unknown, not domain-joined, itself), or asked for one where
// remote domain logons are off.
var ErrNoTarget = errors.New("login: no remote desktop to this target")

// rdpTarget is a remote domain logon's target.
type rdpTarget struct {
	signed protocol.Signed
	cert   protocol.DeviceCert
}

// targetID is the DeviceID the approval must name: the target's, or zero
// for a logon at this computer.
func (r *Request) targetID() protocol.DeviceID {
	if r.target == nil {
		return protocol.DeviceID{}
	}
	return r.target.cert.DeviceID
}

// BeginTarget is Begin for a surface that names an RDP target (Begin
// field 3): the login obtains a domain account for a remote desktop from
// this computer to target, with an approval bound to both (SPEC.md
// 11.7). An empty target is Begin. A target this computer may not ask
// for is ErrNoTarget, before any code is shown.
func (s *Server) BeginTarget(ctx context.Context, action uint8, surface, target string) (*Request, error) {
	if target == "" {
		return s.Begin(ctx, action, surface)
	}
	t, err := s.rdpTarget(ctx, action, target)
	if err != nil {
		return nil, err
	}
	return s.begin(ctx, action, surface, t)
}

// rdpTarget checks that this computer may ask for a remote domain logon
// (action logon, a domain-joined certificate, a policy with
// DomainAccounts) and resolves the target in the directory.
func (s *Server) rdpTarget(ctx context.Context, action uint8, name string) (*rdpTarget, error) {
	targets, ok := s.cfg.Domain.(RDPTargets)
	if !ok || action != protocol.ActionLogon {
		return nil, fmt.Errorf("%w %q: remote desktop is a logon with a domain account", ErrNoTarget, name)
	}
	var enr store.Enrollment
	var pol protocol.Policy
	if err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		if enr, err = tx.Enrollment(); err != nil {
			return err
		}
		pol, _, err = policy.Current(tx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	var dev protocol.DeviceCert
	if err := enr.DeviceCert.VerifyEd25519(protocol.DocDeviceCert, enr.MSPKey, &dev); err != nil || !dev.DomainJoined || !pol.DomainAccounts {
		return nil, fmt.Errorf("%w %q: this computer has no domain accounts", ErrNoTarget, name)
	}
	signed, cert, err := targets.Target(ctx, name, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrNoTarget, name, err)
	}
	if cert.DeviceID == enr.DeviceID {
		return nil, fmt.Errorf("%w %q: it is this computer", ErrNoTarget, name)
	}
	return &rdpTarget{signed: signed, cert: cert}, nil
}

// rdpRequest makes lr a remote domain logon's request: the target's
// certificate for the phone to show and sign, and the domain account as
// the only choice. It refuses when the policy or this computer no longer
// allow it or no DC agent is known.
func (s *Server) rdpRequest(ctx context.Context, r *Request, pol *protocol.Policy, dev *protocol.DeviceCert, lr *protocol.LoginRequest) *denial {
	if s.cfg.Domain == nil || !pol.DomainAccounts || !dev.DomainJoined || r.Action != protocol.ActionLogon ||
		!s.cfg.Domain.Available(ctx, s.cfg.Now()) {
		return &denial{reason: "remote desktop: no domain accounts here", code: protocol.CodeRefused, err: ErrNoTarget}
	}
	lr.Target = r.target.signed
	lr.Choices = []uint8{protocol.AccountDomain}
	return nil
}

// RecordRefused audits a login surface's request that the IPC server
// refused before any login began or that it ended for the surface's
// conduct (SPEC.md 5.7 "Peers": a user's prompt asking for more than a
// remote desktop login, or too often): login.denied with reason, and the
// surface's peer in detail. It returns once the record is stored.
func (s *Server) RecordRefused(ctx context.Context, action uint8, reason, detail string) {
	s.record(ctx, protocol.AuditRecord{Event: audit.LoginDenied, Action: action, Reason: reason, Detail: detail})
}
