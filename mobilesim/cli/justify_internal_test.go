package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

// TestJustify: the prompt listen's push answers go through (scan's is
// tested end to end in TestJustificationPrompt): flags win, only what
// the policy requires is asked, answers are checked before anything is
// signed, and with --json the questions go to stderr so that stdout
// stays one JSON object per line.
func TestJustify(t *testing.T) {
	strict := &protocol.Policy{Tenant: "acme", RequireReason: true, TicketPattern: "INC-[0-9]+"}
	for _, c := range []struct {
		name           string
		p              *protocol.Policy
		json           bool
		stdin          string
		reason, ticket string // flags
		wantR, wantT   string
		asked          string // what the prompt printed
		err            bool
	}{
		{name: "no policy held", p: nil, stdin: "x\n", reason: "r", wantR: "r"},
		{name: "nothing required", p: &protocol.Policy{Tenant: "acme"}, stdin: "x\n", ticket: "T-1", wantT: "T-1"},
		{name: "both asked", p: strict, stdin: "stuck\nINC-1\n", wantR: "stuck", wantT: "INC-1",
			asked: "reason (required by the policy of acme): ticket (pattern INC-[0-9]+): "},
		{name: "flags kept", p: strict, stdin: "x\n", reason: "given", ticket: "INC-9", wantR: "given", wantT: "INC-9"},
		{name: "blank reason flag asks", p: strict, stdin: "real\n", reason: "  ", ticket: "INC-9", wantR: "real", wantT: "INC-9",
			asked: "reason (required by the policy of acme): "},
		{name: "json asks on stderr", p: strict, json: true, stdin: "stuck\nINC-1\n", wantR: "stuck", wantT: "INC-1",
			asked: "reason (required by the policy of acme): ticket (pattern INC-[0-9]+): "},
		{name: "empty reason", p: strict, stdin: "\n", err: true},
		{name: "partial ticket", p: strict, stdin: "r\nINC-1 and more\n", err: true},
		{name: "no ticket", p: strict, stdin: "r\n", err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			r := &run{env: &Env{Stdin: strings.NewReader(c.stdin)}, stdout: &out, stderr: &errb}
			r.g.json = c.json
			gotR, gotT, err := r.justify(c.p, c.reason, c.ticket)
			if c.err {
				if !errors.Is(err, errJustification) {
					t.Fatalf("err = %v, want errJustification", err)
				}
				return
			}
			if err != nil || gotR != c.wantR || gotT != c.wantT {
				t.Fatalf("justify = %q, %q, %v; want %q, %q", gotR, gotT, err, c.wantR, c.wantT)
			}
			prompt, other := out.String(), errb.String()
			if c.json {
				prompt, other = other, prompt
			}
			if prompt != c.asked || other != "" {
				t.Fatalf("prompt %q (other stream %q), want %q", prompt, other, c.asked)
			}
		})
	}
}
