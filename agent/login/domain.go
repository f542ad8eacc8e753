package login

import (
	"context"
	"errors"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/dcclient"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/agent/push"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// endAfterFailure bounds the DomainEnd sent after a domain request
// failed, which delays the denial.
const endAfterFailure = 5 * time.Second

// domainLogin is what serve verified for a domain-account approval.
type domainLogin struct {
	cert       *protocol.TechCert
	pol        *protocol.Policy
	signed     protocol.Signed // the approval
	techCert   protocol.Signed
	devCert    protocol.Signed
	atApproval func(*store.Tx) (protocol.Policy, error)
	co         *push.CoApproved // the second approval, when the device needs one (SPEC.md 11.14)
	target     *rdpTarget       // RDP target (rdp.go); nil for a logon at this computer
}

// domainLogin acts on an approved domain-account choice (SPEC.md 11.7):
// the approval is checked again and consumed here, then the DC agent is
// asked (DomainRequest over KK FlowDomain); its answer becomes the
// surface's Credential and an External session of the lifecycle manager,
// which logs the account off and sends DomainEnd when the session ends.
// Any failure denies the login: nothing is enabled on this computer, and
// the DC agent acts only when it answers OK.
func (s *Server) domainLogin(ctx context.Context, conn *channel.Conn, r *Request, rec protocol.AuditRecord, d domainLogin) {
	rec.Detail = "domain account"
	var target protocol.Signed
	if d.target != nil {
		rec.Detail += ", remote desktop to " + d.target.cert.Name
		target = d.target.signed
	}
	if d.co != nil {
		rec.Detail += ", " + d.co.Detail()
	}
	err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		_, err := d.atApproval(tx)
		return err
	})
	if dn, ok := errors.AsType[*denial](err); ok {
		s.deny(ctx, conn, r, rec, dn)
		return
	}
	if err != nil {
		s.deny(ctx, conn, r, rec, &denial{reason: "approval not recorded: " + err.Error(), code: protocol.CodeUnavailable, err: ErrUnavailable})
		return
	}
	// The exchange with the DC agent is not cut short by the phone going
	// away (dcclient bounds it): an answer that arrives is acted upon.
	res, err := s.cfg.Domain.Obtain(context.WithoutCancel(ctx), &protocol.DomainRequest{
		TechCert: d.techCert, Approval: d.signed, DeviceCert: d.devCert, Session: conn.ID, Target: target,
	}, s.cfg.Now())
	if err != nil {
		s.log.Warn("qr login: domain account not obtained", "technician", d.cert.Username, "err", err)
		dn := &denial{reason: "domain controller: " + err.Error(), code: protocol.CodeUnavailable, err: ErrDomainUnavailable}
		if errors.Is(err, dcclient.ErrRefused) {
			dn.code, dn.err = protocol.CodeRefused, ErrDomainRefused
		}
		if errors.Is(err, dcclient.ErrUnreachable) {
			// The DC agent may have acted on a request whose answer was
			// lost: end that session there now rather than at its
			// deadline (a DC agent without it refuses the DomainEnd).
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endAfterFailure)
			if err := s.cfg.Domain.End(ectx, conn.ID, rec.Account, s.cfg.Now()); err != nil {
				s.log.Info("qr login: DomainEnd after a failed domain request", "err", err)
			}
			cancel()
		}
		s.deny(ctx, conn, r, rec, dn)
		return
	}
	pw := []byte(res.Password)
	res.Password = ""
	secret := password.FromBytes(pw)
	clear(pw)
	now := s.cfg.Now()
	deadline := now.Add(time.Duration(d.pol.MaxSession) * time.Second)
	if res.Expires != 0 && time.Unix(res.Expires, 0).Before(deadline) {
		deadline = time.Unix(res.Expires, 0)
	}
	logon := s.cfg.Domain.LogonName(res.Account)
	rec.Account = logon
	session, account := conn.ID, res.Account
	s.cfg.Lifecycle.BeginExternal(lifecycle.External{
		Session: session, Account: logon, Deadline: deadline,
		Record: protocol.AuditRecord{TechID: rec.TechID, Username: rec.Username, Action: rec.Action}, Cert: d.cert,
		Finish: func(ctx context.Context) error { return s.cfg.Domain.End(ctx, session, account, s.cfg.Now()) },
	})
	approved := rec
	approved.Event = audit.LoginApproved
	s.record(ctx, approved)
	grant := lifecycle.Grant{Account: logon, Password: secret, Session: session, Deadline: deadline}
	if !r.finish(grant, nil) {
		grant.Password.Wipe()
		if err := s.cfg.Lifecycle.End(context.WithoutCancel(ctx), session, audit.SessionEnded); err != nil {
			s.log.Warn("end domain session of a cancelled login", "err", err)
		}
		s.send(ctx, conn, protocol.MsgLoginResult, &protocol.LoginResult{Code: protocol.CodeExpired, Text: "login screen went away"})
		return
	}
	s.log.Info("qr login approved (domain account)", "account", logon, "technician", d.cert.Username)
	s.send(ctx, conn, protocol.MsgLoginResult, &protocol.LoginResult{OK: true, Account: logon})
}
