package protocol

import (
	"errors"
	"regexp"
	"strings"
)

// Bounds of the justification a technician gives with an approval and of
// the policy's ticket pattern (SPEC.md 6.3, 6.4).
const (
	MaxReasonLen        = 512 // bytes of Approval.Reason
	MaxTicketLen        = 64  // bytes of Approval.Ticket
	MaxTicketPatternLen = 128 // bytes of Policy.TicketPattern
)

// ErrJustification is returned for an approval that lacks the reason or
// ticket its tenant's policy requires, whose ticket does not match the
// policy's pattern, or whose reason or ticket breaks its bound.
var ErrJustification = errors.New("protocol: approval lacks the reason or ticket the policy requires")

// CompileTicketPattern compiles a policy's ticket pattern: RE2 syntax
// (Go regexp), at most MaxTicketPatternLen bytes, anchored at both ends
// (the whole ticket must match). RE2 matches in time linear in the input,
// so no pattern can make the agent spin. An empty pattern compiles to nil:
// any ticket (or none) is accepted.
func CompileTicketPattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > MaxTicketPatternLen || !consoleText(p, MaxTicketPatternLen) {
		return nil, errors.New("protocol: ticket pattern too long or not printable")
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// checkJustification checks an approval's Reason and Ticket: within their
// bounds and printable always; for an approve decision also present when
// the policy requires them (a reason when requireReason, a ticket matching
// pattern when pattern is not empty).
func (a *Approval) checkJustification(requireReason bool, pattern string) error {
	if !consoleText(a.Reason, MaxReasonLen) || !consoleText(a.Ticket, MaxTicketLen) {
		return ErrJustification
	}
	if a.Decision != DecisionApprove {
		return nil
	}
	if requireReason && strings.TrimSpace(a.Reason) == "" {
		return ErrJustification
	}
	re, err := CompileTicketPattern(pattern)
	if err != nil {
		// A policy that passed Check always compiles; fail closed anyway.
		return ErrJustification
	}
	if re != nil && !re.MatchString(a.Ticket) {
		return ErrJustification
	}
	return nil
}
