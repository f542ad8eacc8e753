package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/audit"
	"github.com/jitkey/jitkey/agent/lifecycle"
	"github.com/jitkey/jitkey/agent/policy"
	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// outcome is how a push session ended: the surface's error and what is
// audited and told the phone.
type outcome struct {
	err    error  // for the surface
	event  string // audit event; "" records nothing
	reason string // audited and logged, never sent to the phone
	code   uint8  // LoginResult code to the phone; 0 sends nothing
	text   string // fixed LoginResult text; "" is the code's
}

// result is the phone's answer: the code and a fixed text, never the
// audited reason (STYLE.md: failures are opaque to the peer).
func (o *outcome) result() *protocol.LoginResult {
	text := "not allowed on this device"
	switch o.code {
	case protocol.CodeDenied:
		text = "denied"
	case protocol.CodeUnavailable:
		text = "temporarily unavailable"
	case protocol.CodeExpired:
		text = "login request no longer open"
	}
	if o.text != "" {
		text = o.text
	}
	return &protocol.LoginResult{Code: o.code, Text: text}
}

// ask reaches the phone of t (retrying while it is not reached) and runs
// the session until the phone's answer or ctx's end.
func (s *Server) ask(ctx context.Context, r *Request, t *target) (lifecycle.Grant, error) {
	rec := protocol.AuditRecord{TechID: t.entry.TechID, Username: t.entry.Username, Method: protocol.MethodPush, Online: true, Action: r.action}
	conn, err := s.reach(ctx, t.entry)
	if err != nil {
		s.timedOut(ctx, rec)
		return lifecycle.Grant{}, endErr(ctx)
	}
	defer conn.Close()
	g, o := s.serve(ctx, conn, r, t)
	if o == nil {
		return g, nil
	}
	if errors.Is(o.err, ErrNoAnswer) || errors.Is(o.err, ErrCancelled) {
		if ctx.Err() != nil {
			s.timedOut(ctx, rec)
			return lifecycle.Grant{}, endErr(ctx)
		}
	}
	if o.event != "" {
		rec.Event, rec.Reason = o.event, o.reason
		s.record(ctx, rec)
	}
	if o.code != 0 {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = conn.Send(sctx, protocol.MsgLoginResult, o.result())
		cancel()
	}
	s.log.Info("push login ended", "technician", t.entry.Username, "reason", o.reason)
	return lifecycle.Grant{}, o.err
}

// reach opens a FlowPush session to the phone of e (KK to its Noise key
// at its relay), retrying every Retry while it is not reached and
// attaching its push ticket, if it left one, so that a phone not
// connected is woken through its relay's push gateway (SPEC.md 12.6). It
// fails only when ctx ends. Push logins and second approvals (11.14)
// reach phones so.
func (s *Server) reach(ctx context.Context, e protocol.RosterEntry) (*channel.Conn, error) {
	addr := protocol.PeerAddr{Relay: e.Relay, Mailbox: protocol.MailboxFor(e.IdentityKey[:])}
	var ticket []byte
	err := s.cfg.Store.View(ctx, func(tx *store.Tx) error {
		var err error
		ticket, err = tx.PushTicket(e.TechID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("push: cannot read the push ticket", "err", err)
	}
	for {
		c, err := s.cfg.Dial(ctx, channel.DialConfig{To: addr, Flow: protocol.FlowPush, PeerStatic: e.NoiseKey, Ticket: ticket})
		if err == nil {
			return c, nil
		}
		s.log.Info("push: phone not reached; trying again", "technician", e.Username, "err", err)
		wait := time.NewTimer(s.cfg.Retry)
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil, ctx.Err()
		case <-wait.C:
		}
	}
}

// timedOut records a push that got no answer.
func (s *Server) timedOut(ctx context.Context, rec protocol.AuditRecord) {
	reason := "push timed out"
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = "push cancelled at the login screen"
	}
	rec.Event, rec.Reason = audit.LoginCancelled, reason
	s.record(ctx, rec)
}

// serve runs one FlowPush session. It returns the grant, or the outcome
// of a push that did not succeed.
func (s *Server) serve(ctx context.Context, conn *channel.Conn, r *Request, t *target) (lifecycle.Grant, *outcome) {
	noAnswer := &outcome{err: ErrNoAnswer}
	refuse := func(reason string) *outcome {
		return &outcome{err: ErrNoAnswer, event: audit.LoginDenied, reason: reason, code: protocol.CodeRefused}
	}
	var hello protocol.LoginHello
	if err := conn.Recv(ctx, protocol.MsgLoginHello, &hello); err != nil {
		s.log.Info("push login: no hello", "err", err)
		return lifecycle.Grant{}, noAnswer
	}
	var cert protocol.TechCert
	if err := hello.TechCert.VerifyEd25519(protocol.DocTechCert, t.enr.MSPKey, &cert); err != nil {
		return lifecycle.Grant{}, refuse("technician certificate: " + err.Error())
	}
	if err := cert.Valid(s.cfg.Now()); err != nil {
		return lifecycle.Grant{}, refuse("technician certificate: " + err.Error())
	}
	if !conn.Session.PeerIs(cert.NoiseKey) || cert.TechID != t.entry.TechID {
		return lifecycle.Grant{}, refuse("technician certificate: not the roster's technician or key")
	}
	if err := t.pol.Authorize(&cert, &t.dev); err != nil {
		return lifecycle.Grant{}, refuse("access rule: " + err.Error())
	}
	s.keepTicket(ctx, cert.TechID, hello.PushTicket)
	account, err := s.cfg.Lifecycle.AccountFor(ctx, cert.TechID, cert.Username, &t.pol)
	if err != nil {
		o := refuse("account: " + err.Error())
		o.err, o.code = ErrUnavailable, protocol.CodeUnavailable
		return lifecycle.Grant{}, o
	}
	cands, err := s.candidates(r.number)
	if err != nil {
		return lifecycle.Grant{}, &outcome{err: ErrUnavailable, reason: err.Error()}
	}
	req := protocol.PushRequest{DeviceCert: t.enr.DeviceCert, Session: conn.ID, Action: r.action, Account: account,
		Choices: []uint8{}, Time: s.cfg.Now().Unix(), Candidates: cands}
	if err := conn.Send(ctx, protocol.MsgPushRequest, &req); err != nil {
		return lifecycle.Grant{}, noAnswer
	}
	msg, err := conn.RecvRaw(ctx)
	if err != nil {
		return lifecycle.Grant{}, noAnswer
	}
	if len(msg) > 0 && protocol.MsgType(msg[0]) == protocol.MsgPushReport {
		return lifecycle.Grant{}, s.reported(ctx, conn, msg, &cert, &t.pol)
	}
	var signed protocol.Signed
	if err := protocol.DecodeMsg(msg, protocol.MsgApproval, &signed); err != nil {
		if _, ok := errors.AsType[*protocol.PeerError](err); ok {
			// Cancelled on the phone: as a deny without a signature.
			return lifecycle.Grant{}, &outcome{err: ErrDenied, event: audit.LoginDenied, reason: "cancelled on the phone"}
		}
		return lifecycle.Grant{}, refuse("approval: " + err.Error())
	}
	var a protocol.Approval
	if err := signed.VerifyP256(protocol.DocApproval, cert.ApprovalKey, &a); err != nil {
		return lifecycle.Grant{}, refuse("approval signature: " + err.Error())
	}
	// Every field but the number first: the number decides only an
	// approve (a deny carries 0).
	err = a.Match(protocol.ApprovalExpect{
		Serial: cert.Serial, DeviceID: t.dev.DeviceID, Session: conn.ID, HandshakeHash: conn.Session.HandshakeHash(),
		Action: r.action, Number: a.Number, Now: s.cfg.Now(), RequireReason: t.pol.RequireReason, TicketPattern: t.pol.TicketPattern,
	})
	if err != nil {
		return lifecycle.Grant{}, refuse("approval: " + err.Error())
	}
	if a.Decision == protocol.DecisionDeny {
		return lifecycle.Grant{}, &outcome{err: ErrDenied, event: audit.LoginDenied, reason: "denied by the technician", code: protocol.CodeDenied}
	}
	if a.Number != uint16(r.number) {
		return lifecycle.Grant{}, &outcome{err: ErrWrongNumber, event: audit.LoginDenied,
			reason: fmt.Sprintf("wrong number picked: %d, the screen showed %d", a.Number, r.number), code: protocol.CodeRefused}
	}
	var co *CoApproved
	if NeedsCoApproval(&t.pol, t.dev.DeviceID) {
		r.coWaitOnce.Do(func() { close(r.coWait) })
		var err error
		co, err = s.CoApprove(ctx, &CoRequest{Tech: &cert, TechCert: hello.TechCert, Approval: signed, Device: &t.dev,
			DevCert: t.enr.DeviceCert, MSPKey: t.enr.MSPKey, Policy: &t.pol, Action: r.action, Account: account,
			Method: protocol.MethodPush, Reason: a.Reason, Ticket: a.Ticket})
		if err != nil {
			return lifecycle.Grant{}, coRefusal(err)
		}
	}
	return s.approve(ctx, conn, r, t, &cert, &a, signed, account, co)
}

// coRefusal is the outcome of a login whose second approval failed:
// audited login.denied, nothing enabled (SPEC.md 11.14).
func coRefusal(err error) *outcome {
	o := &outcome{err: ErrCoRefused, event: audit.LoginDenied, reason: "second approval: " + err.Error(), code: protocol.CodeRefused, text: CoRefusalText(err)}
	if errors.Is(err, ErrCoDenied) {
		o.err, o.code = ErrCoDenied, protocol.CodeDenied
	}
	return o
}

// approve makes the account ready for a verified approval, checking the
// certificates and the access rule again in the transaction that uses
// the approval, and answers the phone.
func (s *Server) approve(ctx context.Context, conn *channel.Conn, r *Request, t *target, cert *protocol.TechCert, a *protocol.Approval,
	signed protocol.Signed, account string, co *CoApproved) (lifecycle.Grant, *outcome) {
	approved := protocol.AuditRecord{Event: audit.LoginApproved, TechID: cert.TechID, Username: cert.Username, Account: account,
		Method: protocol.MethodPush, Online: true, Action: r.action, Justification: a.Reason, Ticket: a.Ticket}
	if co != nil {
		approved.Detail = co.Detail()
	}
	var offlineKey []byte
	defer func() { clear(offlineKey) }()
	var refusal, refusalText string
	grant, err := s.cfg.Lifecycle.Begin(ctx, lifecycle.Request{
		TechID: cert.TechID, Username: cert.Username, Cert: cert, Policy: &t.pol, Session: conn.ID, Action: r.action,
		Method: protocol.MethodPush, Online: true,
		Record: func(tx *store.Tx, _ string) error {
			now := s.cfg.Now()
			refuse := func(reason string) error { refusal = reason; return errRefused }
			if err := t.dev.Valid(now); err != nil {
				return refuse("device certificate at approval: " + err.Error())
			}
			if err := cert.Valid(now); err != nil {
				return refuse("technician certificate at approval: " + err.Error())
			}
			cur, _, err := policy.Current(tx)
			if err != nil {
				return refuse("policy: " + err.Error())
			}
			if err := cur.Authorize(cert, &t.dev); err != nil {
				return refuse("access rule at approval: " + err.Error())
			}
			if !cur.PushLogin {
				return refuse("push login disabled by the policy at approval")
			}
			if err := tx.UseApproval(digest(signed), now, time.Unix(a.Time, 0).Add(2*protocol.MaxApprovalSkew)); err != nil {
				if errors.Is(err, store.ErrReplay) {
					return refuse("approval replayed")
				}
				return err
			}
			if err := UseCoApproval(tx, &cur, co, cert, &t.dev, now); err != nil {
				if errors.Is(err, ErrCoRequired) {
					refusalText = CoRefusalText(err)
					return refuse("second approval at approval: " + err.Error())
				}
				return err
			}
			if s.cfg.OfflineKey != nil {
				if offlineKey, err = s.cfg.OfflineKey(tx, cert.TechID, &cur); err != nil {
					return err
				}
			}
			return s.cfg.Audit.Append(tx, approved)
		},
	})
	co.Finish(ctx, err == nil, account)
	switch {
	case errors.Is(err, errRefused):
		return lifecycle.Grant{}, &outcome{err: ErrNoAnswer, event: audit.LoginDenied, reason: refusal, code: protocol.CodeRefused, text: refusalText}
	case err != nil:
		s.log.Warn("push login: account not ready", "account", account, "err", err)
		return lifecycle.Grant{}, &outcome{err: ErrUnavailable, event: audit.LoginDenied, reason: "account not ready: " + err.Error(), code: protocol.CodeUnavailable}
	}
	if s.cfg.Recorded != nil {
		s.cfg.Recorded()
	}
	s.log.Info("push login approved", "account", account, "technician", cert.Username, "action", protocol.ActionName(r.action))
	if err := conn.Send(ctx, protocol.MsgLoginResult, &protocol.LoginResult{OK: true, Account: account, OfflineSecret: offlineKey}); err != nil {
		s.log.Warn("push login: result not sent to the phone", "err", err)
	}
	return grant, nil
}

// reported handles "this was not me": the technician's pushes are blocked
// on this device for the policy's PushBlock, and push.reported recorded
// in the same transaction.
func (s *Server) reported(ctx context.Context, conn *channel.Conn, msg []byte, cert *protocol.TechCert, pol *protocol.Policy) *outcome {
	var rep protocol.PushReport
	if err := protocol.DecodeMsg(msg, protocol.MsgPushReport, &rep); err != nil || rep.Session != conn.ID {
		return &outcome{err: ErrNoAnswer, event: audit.LoginDenied, reason: "malformed report", code: protocol.CodeBadRequest}
	}
	now := s.cfg.Now()
	_, _, block := pol.PushLimits()
	until := now.Add(block)
	rec := protocol.AuditRecord{Event: protocol.EventPushReported, TechID: cert.TechID, Username: cert.Username,
		Method: protocol.MethodPush, Online: true,
		Reason: "the technician reported a push login they did not request",
		Detail: "push logins blocked until " + until.UTC().Format(time.RFC3339)}
	err := s.cfg.Store.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		if err := tx.BlockPush(cert.TechID, until); err != nil {
			return err
		}
		return s.cfg.Audit.Append(tx, rec)
	})
	if err != nil {
		s.log.Error("push login: cannot record a report", "err", err)
	} else if s.cfg.Recorded != nil {
		s.cfg.Recorded()
	}
	s.log.Warn("push login reported as not requested by the technician; push blocked", "technician", cert.Username, "until", until)
	return &outcome{err: ErrReported, code: protocol.CodeDenied, reason: "reported"}
}

// keepTicket stores the phone's sealed push ticket for later wake-ups.
func (s *Server) keepTicket(ctx context.Context, techID string, ticket []byte) {
	if len(ticket) == 0 || len(ticket) > protocol.MaxRelayPushTicket {
		return
	}
	err := s.cfg.Store.Update(ctx, func(tx *store.Tx) error { return tx.PutPushTicket(techID, ticket, s.cfg.Now()) })
	if err != nil {
		s.log.Warn("push login: cannot keep the push ticket", "err", err)
	}
}
