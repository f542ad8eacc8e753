package vectors

import (
	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// breakGlass writes the vectors of break-glass recovery codes (SPEC.md
// 11.15): the written form of a code and the escrow messages.
func (g *gen) breakGlass() {
	var code protocol.RecoveryCode
	copy(code[:], detrand.Bytes("recovery-code", 16))
	text := code.Text()
	rc := func(name, rule, desc, input, expect string) {
		g.add(Vector{Name: name, Rule: rule, Kind: "recovery-code", Description: desc, Input: input,
			Context: Context{Output: hx(code[:])}, Expect: expect})
	}
	rc("ok-recovery-code", "", "a recovery code in its written form: 7 groups of 4 Crockford base32 characters", text, "ok")
	lower := []byte(text)
	for i, c := range lower {
		if c >= 'A' && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	rc("ok-recovery-code-typed", "", "the same code typed in lower case without separators", string(dropDashes(lower)), "ok")
	typo := []byte(text)
	if typo[5] == '7' {
		typo[5] = '8'
	} else {
		typo[5] = '7'
	}
	rc("R66-recovery-code-check", "R-66", "one character changed: the check characters do not match", string(typo), "ErrMalformed")
	rc("R66-recovery-code-short", "R-66", "27 characters", text[:len(text)-1], "ErrMalformed")
	rc("R66-recovery-code-alphabet", "R-66", "a U, which the alphabet does not have", "U"+text[1:], "ErrMalformed")

	esc, err := protocol.EncodeMsg(protocol.MsgRecoveryEscrow, &protocol.RecoveryEscrow{Generation: 1, Code: code})
	check(err)
	g.add(Vector{Name: "ok-msg-recovery-escrow", Kind: "msg", Description: "RecoveryEscrow: generation 1 of a device's recovery code",
		Input: hx(esc), Context: Context{MsgType: uint8(protocol.MsgRecoveryEscrow), Type: "RecoveryEscrow"}})
	ack, err := protocol.EncodeMsg(protocol.MsgRecoveryAck, &protocol.RecoveryAck{Generation: 1})
	check(err)
	g.add(Vector{Name: "ok-msg-recovery-ack", Kind: "msg", Description: "RecoveryAck: generation 1 stored",
		Input: hx(ack), Context: Context{MsgType: uint8(protocol.MsgRecoveryAck), Type: "RecoveryAck"}})
	zero, err := protocol.EncodeMsg(protocol.MsgRecoveryEscrow, &protocol.RecoveryEscrow{Code: code})
	check(err)
	g.add(Vector{Name: "R66-msg-recovery-escrow-generation-zero", Rule: "R-66", Kind: "msg", Description: "RecoveryEscrow of generation 0",
		Input: hx(zero), Context: Context{MsgType: uint8(protocol.MsgRecoveryEscrow), Type: "RecoveryEscrow"}, Expect: "ErrMalformed"})
	zack, err := protocol.EncodeMsg(protocol.MsgRecoveryAck, &protocol.RecoveryAck{})
	check(err)
	g.add(Vector{Name: "R66-msg-recovery-ack-generation-zero", Rule: "R-66", Kind: "msg", Description: "RecoveryAck of generation 0",
		Input: hx(zack), Context: Context{MsgType: uint8(protocol.MsgRecoveryAck), Type: "RecoveryAck"}, Expect: "ErrMalformed"})
	g.add(Vector{Name: "R36-msg-recovery-escrow-for-audit-batch", Rule: "R-36", Kind: "msg", Description: "RecoveryEscrow where an AuditBatch is expected",
		Input: hx(esc), Context: Context{MsgType: uint8(protocol.MsgAuditBatch), Type: "AuditBatch"}, Expect: "ErrMalformed"})
}

func dropDashes(b []byte) []byte {
	out := b[:0]
	for _, c := range b {
		if c != '-' {
			out = append(out, c)
		}
	}
	return out
}
