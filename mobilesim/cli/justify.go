package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jitkey/jitkey/mobilesim/app"
	"github.com/jitkey/jitkey/mobilesim/wallet"
	"github.com/jitkey/jitkey/protocol"
)

// errJustification: the technician approved but gave no reason or no
// matching ticket where the tenant's policy requires them (SPEC.md 6.3,
// 6.4); nothing was signed.
var errJustification = errors.New("the tenant's policy requires a reason or ticket")

// stdin is the one buffered reader of Env.Stdin that every prompt of a
// command shares, so that an answer read ahead by one prompt is there for
// the next.
func (r *run) stdin() *bufio.Reader {
	if r.in == nil {
		r.in = bufio.NewReader(r.env.Stdin)
	}
	return r.in
}

// policyOf returns the phone's copy of tenant's policy in the current
// organisation, or nil if it holds none (then the agent alone decides).
func policyOf(w *wallet.Wallet, tenant string) *protocol.Policy {
	o, err := w.Current()
	if err != nil {
		return nil
	}
	v, err := app.Load(o)
	if err != nil {
		return nil
	}
	return v.Policies[tenant]
}

// justify completes the reason and ticket of an approval answered at the
// prompt: a value given by --reason or --ticket is kept; where the
// policy p requires one (RequireReason, TicketPattern) and no flag gave
// it, the technician is asked on stdin, as for the push number. An empty
// reason, or a ticket that does not match the pattern as a whole, is
// refused here with errJustification, before anything is signed.
func (r *run) justify(p *protocol.Policy, reason, ticket string) (string, string, error) {
	if p == nil {
		return reason, ticket, nil
	}
	out := r.stdout
	if r.g.json {
		out = r.stderr // stdout carries one JSON object per line
	}
	if p.RequireReason && strings.TrimSpace(reason) == "" {
		reason = ask(r.stdin(), out, "reason (required by the policy of "+p.Tenant+"): ")
		if reason == "" {
			return "", "", &said{msg: "the policy of tenant " + p.Tenant + " requires a reason; nothing was approved (give one at the prompt or with --reason)", err: errJustification}
		}
	}
	if p.TicketPattern != "" && ticket == "" {
		ticket = ask(r.stdin(), out, fmt.Sprintf("ticket (pattern %s): ", p.TicketPattern))
		re, err := protocol.CompileTicketPattern(p.TicketPattern)
		if err != nil || !re.MatchString(ticket) {
			return "", "", &said{msg: fmt.Sprintf("ticket %q does not match the pattern %s of tenant %s; nothing was approved (give one at the prompt or with --ticket)",
				ticket, p.TicketPattern, p.Tenant), err: errJustification}
		}
	}
	return reason, ticket, nil
}

// ask prints question and returns the answer line without surrounding
// white space ("" at the end of input).
func ask(in *bufio.Reader, out io.Writer, question string) string {
	fmt.Fprint(out, question)
	line, _ := in.ReadString('\n')
	return strings.TrimSpace(line)
}
