package push

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jitkey/jitkey/agent/store"
	"github.com/jitkey/jitkey/channel"
	"github.com/jitkey/jitkey/protocol"
)

// Second approver (SPEC.md 11.14): a login on a device whose policy
// names second approvers needs, after the technician's own approval, the
// signed approval of another technician, asked for over FlowPush as a
// push login is.

// MaxCoApprovers is how many second approvers are asked at a time.
const MaxCoApprovers = 4

// DefaultCoTimeout bounds the wait for a second approval
// (CoApprovalTimeout).
const DefaultCoTimeout = 2 * time.Minute

// Errors a second approval ends with.
var (
	// ErrNoCoApprover: the roster names nobody who may give the second
	// approval.
	ErrNoCoApprover = errors.New("push: no second approver in the roster")
	// ErrCoNoAnswer: no second approver answered in time.
	ErrCoNoAnswer = errors.New("push: no answer from a second approver")
	// ErrCoDenied: a second approver denied the login.
	ErrCoDenied = errors.New("push: denied by the second approver")
	// ErrCoRefused: a second approver's answer failed verification.
	ErrCoRefused = errors.New("push: second approval refused")
	// ErrCoRequired: the policy at the approval's use needs a second
	// approval the login does not carry, or no longer permits its
	// approver, or the second approval was used before.
	ErrCoRequired = errors.New("push: second approval required")
)

// CoRefusalText is the fixed LoginResult text the technician's phone
// shows for a login refused for its second approval, err being
// CoApprove's or UseCoApproval's: the denial, the timeout, or anything
// else as one opaque refusal. The full reason goes to the audit only
// (STYLE.md: failures are opaque to the peer).
func CoRefusalText(err error) string {
	switch {
	case errors.Is(err, ErrCoDenied):
		return "denied by the second approver"
	case errors.Is(err, ErrCoNoAnswer):
		return "second approval timed out"
	}
	return "second approval refused"
}

// CoRequest is a login that needs a second approval: the technician's
// verified certificate and signed approval, the device and policy it was
// decided under, and what it enables.
type CoRequest struct {
	Tech     *protocol.TechCert
	TechCert protocol.Signed // the technician's certificate as presented
	Approval protocol.Signed // the technician's verified approval
	Device   *protocol.DeviceCert
	DevCert  protocol.Signed
	MSPKey   protocol.IdentityKey
	Policy   *protocol.Policy
	Action   uint8
	Account  string
	Method   string // protocol.MethodQR or protocol.MethodPush
	Reason   string
	Ticket   string
}

// CoApproved is a verified approving second approval. Finish must be
// called once the login is decided: it answers the approver's phone and
// ends its session.
type CoApproved struct {
	Approver protocol.TechCert
	Approval protocol.CoApproval
	digest   [32]byte
	conn     *channel.Conn
	log      func(msg string, args ...any)
}

// Detail is the audit detail of the login it approved (SPEC.md 11.14).
func (c *CoApproved) Detail() string {
	return fmt.Sprintf("second approver %s (%s)", c.Approver.Username, c.Approver.TechID)
}

// Finish answers the approver's phone: the login was enabled (ok) or not.
func (c *CoApproved) Finish(ctx context.Context, ok bool, account string) {
	if c == nil || c.conn == nil {
		return
	}
	res := &protocol.LoginResult{OK: true, Account: account}
	if !ok {
		res = &protocol.LoginResult{Code: protocol.CodeRefused, Text: "login not enabled"}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.conn.Send(sctx, protocol.MsgLoginResult, res); err != nil {
		c.log("second approval: result not sent to the approver's phone", "err", err)
	}
	c.conn.Close()
	c.conn = nil
}

// NeedsCoApproval reports whether a login on dev under pol needs a
// second approval (SPEC.md 6.3: Policy 27, else 26).
func NeedsCoApproval(pol *protocol.Policy, dev protocol.DeviceID) bool {
	_, need := pol.SecondApproverList(dev)
	return need
}

// UseCoApproval is the check of R-65, run in the transaction that uses
// the technician's approval, with the policy held then: a device that
// needs a second approval must have co, its approver still valid and
// permitted, and co unused (recorded as used here). co may be nil when
// none was asked for.
func UseCoApproval(tx *store.Tx, cur *protocol.Policy, co *CoApproved, tech *protocol.TechCert, dev *protocol.DeviceCert, now time.Time) error {
	if !NeedsCoApproval(cur, dev.DeviceID) {
		if co == nil {
			return nil
		}
		// Asked under an older policy: the approval is still single use.
	} else if co == nil {
		return fmt.Errorf("%w: none given", ErrCoRequired)
	} else {
		if err := co.Approver.Valid(now); err != nil {
			return fmt.Errorf("%w: approver's certificate: %w", ErrCoRequired, err)
		}
		if err := cur.MaySecondApprove(&co.Approver, tech, dev); err != nil {
			return fmt.Errorf("%w: %w", ErrCoRequired, err)
		}
	}
	err := tx.UseApproval(co.digest[:], now, time.Unix(co.Approval.Time, 0).Add(2*protocol.MaxApprovalSkew))
	if errors.Is(err, store.ErrReplay) {
		return fmt.Errorf("%w: second approval replayed", ErrCoRequired)
	}
	return err
}

// CoApprove asks the second approvers of q (SPEC.md 11.14 steps 2-4):
// every roster entry other than the technician that the policy permits,
// at most MaxCoApprovers, in parallel, each reached as a push login's
// phone is (woken with its push ticket, retried). The first answer
// decides; it returns the verified approving second approval, or an
// error wrapping ErrNoCoApprover, ErrCoNoAnswer, ErrCoDenied or
// ErrCoRefused. The wait is bounded by CoTimeout and ctx.
func (s *Server) CoApprove(ctx context.Context, q *CoRequest) (*CoApproved, error) {
	first, err := q.Approval.Hash()
	if err != nil {
		return nil, err
	}
	var asked []protocol.RosterEntry
	for _, e := range q.Policy.Roster {
		c := e.Cert(q.Policy.Tenant)
		if e.TechID == q.Tech.TechID || q.Policy.MaySecondApprove(&c, q.Tech, q.Device) != nil {
			continue
		}
		asked = append(asked, e)
		if len(asked) == MaxCoApprovers {
			break
		}
	}
	if len(asked) == 0 {
		return nil, ErrNoCoApprover
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CoTimeout)
	defer cancel()
	type answer struct {
		co  *CoApproved
		err error
	}
	answers := make(chan answer, len(asked))
	for _, e := range asked {
		go func() {
			co, err := s.coAsk(ctx, q, e, first)
			answers <- answer{co, err}
		}()
	}
	var decided *answer
	for range asked {
		a := <-answers
		switch {
		case decided != nil:
			// Decided by another approver: this one's session ends.
			if a.co != nil {
				sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_ = a.co.conn.SendError(sctx, protocol.CodeExpired, "decided by another approver")
				scancel()
				a.co.conn.Close()
			}
		case a.err == nil || !errors.Is(a.err, ErrCoNoAnswer):
			decided = &a
			cancel() // the others stop
		}
	}
	if decided == nil {
		return nil, ErrCoNoAnswer
	}
	return decided.co, decided.err
}

// coAsk asks one second approver. An answer it cannot verify, or a
// deny, is returned as an error with the approver's session answered
// and closed; a phone not reached or not answering is ErrCoNoAnswer.
func (s *Server) coAsk(ctx context.Context, q *CoRequest, e protocol.RosterEntry, first [32]byte) (*CoApproved, error) {
	conn, err := s.reach(ctx, e)
	if err != nil {
		return nil, ErrCoNoAnswer
	}
	co, code, err := s.coServe(ctx, conn, q, e, first)
	if err == nil {
		return co, nil
	}
	if code != 0 {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = conn.Send(sctx, protocol.MsgLoginResult, (&outcome{code: code}).result())
		cancel()
	}
	conn.Close()
	return nil, err
}

func (s *Server) coServe(ctx context.Context, conn *channel.Conn, q *CoRequest, e protocol.RosterEntry, first [32]byte) (*CoApproved, uint8, error) {
	var hello protocol.LoginHello
	if err := conn.Recv(ctx, protocol.MsgLoginHello, &hello); err != nil {
		return nil, 0, ErrCoNoAnswer
	}
	var approver protocol.TechCert
	if err := hello.TechCert.VerifyEd25519(protocol.DocTechCert, q.MSPKey, &approver); err != nil {
		return nil, protocol.CodeRefused, fmt.Errorf("%w: approver's certificate: %w", ErrCoRefused, err)
	}
	// Valid now, before the request's details (technician, device,
	// account, reason, ticket) go to this phone; VerifyCoApproval checks
	// it again when the answer arrives (R-10 at both times).
	if err := approver.Valid(s.cfg.Now()); err != nil {
		return nil, protocol.CodeRefused, fmt.Errorf("%w: approver's certificate: %w", ErrCoRefused, err)
	}
	if !conn.Session.PeerIs(approver.NoiseKey) || approver.TechID != e.TechID {
		return nil, protocol.CodeRefused, fmt.Errorf("%w: approver's certificate: not the roster's technician or key", ErrCoRefused)
	}
	s.keepTicket(ctx, approver.TechID, hello.PushTicket)
	req := protocol.CoApprovalRequest{DeviceCert: q.DevCert, Session: conn.ID, Action: q.Action, Account: q.Account,
		Time: s.cfg.Now().Unix(), First: first, TechCert: q.TechCert, Method: q.Method, Reason: q.Reason, Ticket: q.Ticket}
	if err := conn.Send(ctx, protocol.MsgCoApprovalRequest, &req); err != nil {
		return nil, 0, ErrCoNoAnswer
	}
	var signed protocol.Signed
	if err := conn.Recv(ctx, protocol.MsgCoApproval, &signed); err != nil {
		if _, ok := errors.AsType[*protocol.PeerError](err); ok {
			return nil, 0, fmt.Errorf("%w: cancelled on %s's phone", ErrCoDenied, approver.Username)
		}
		if ctx.Err() != nil {
			return nil, 0, ErrCoNoAnswer
		}
		return nil, protocol.CodeBadRequest, fmt.Errorf("%w: %w", ErrCoRefused, err)
	}
	c, err := protocol.VerifyCoApproval(signed, protocol.CoApprovalExpect{
		Approver: &approver, First: q.Tech, Device: q.Device, Policy: q.Policy,
		Session: conn.ID, HandshakeHash: conn.Session.HandshakeHash(), FirstHash: first,
		Action: q.Action, Account: q.Account, Now: s.cfg.Now(),
	})
	if err != nil {
		return nil, protocol.CodeRefused, fmt.Errorf("%w: %s: %w", ErrCoRefused, approver.Username, err)
	}
	if c.Decision == protocol.DecisionDeny {
		return nil, protocol.CodeDenied, fmt.Errorf("%w %s", ErrCoDenied, approver.Username)
	}
	return &CoApproved{Approver: approver, Approval: c, digest: sha256.Sum256(signed.Body), conn: conn, log: s.log.Warn}, 0, nil
}
