package protocol

import (
	"encoding/base32"
	"fmt"
	"log/slog"
	"strings"
)

// Break-glass recovery codes (SPEC.md 11.15). A recovery code is 16
// random bytes (128 bits) chosen by an agent. It is written for people as
// 28 characters of the Crockford base32 alphabet in 7 groups of 4,
//
//	XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX
//
// the first 128 bits the code's bytes, the last 12 the first 12 bits of
// Derive(code, LabelRecoveryCheck, "", 4): a check that catches a mistyped
// character before the agent counts the attempt against the code.
// ParseRecoveryCode takes either case, ignores '-' and spaces, and reads
// O as 0 and I and L as 1, so that a code dictated over the telephone is
// typed reliably.

// RecoveryCodeLen is the number of characters of a recovery code, not
// counting the group separators.
const RecoveryCodeLen = 28

// BreakGlassUsername is what a technician types as the username at a
// login surface's offline-code prompt to enter a recovery code in place
// of a TOTP code; the session's account is BreakGlassAccount.
const BreakGlassUsername = "breakglass"

// BreakGlassAccount is the local account a recovery code enables, on
// every platform and in both login modes.
const BreakGlassAccount = "msp-breakglass"

// EventBreakGlassUsed is the audit event of a recovery code accepted by
// an agent; the console raises it as the alarm breakglass-used.
const EventBreakGlassUsed = "breakglass.used"

// MethodBreakGlass is the AuditRecord method of a login with a recovery
// code.
const MethodBreakGlass = "breakglass"

// crockford is the Crockford base32 alphabet: digits and upper-case
// letters without I, L, O and U.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// RecoveryCode is a break-glass recovery code. It is a secret: it logs
// as Redacted.
type RecoveryCode [16]byte

// LogValue implements slog.LogValuer; the code logs as Redacted.
func (RecoveryCode) LogValue() slog.Value { return slog.StringValue(Redacted) }

// check returns the code's 12 check bits in the top of 2 bytes.
func (c RecoveryCode) check() ([2]byte, error) {
	var out [2]byte
	b, err := Derive(c[:], LabelRecoveryCheck, nil, 4)
	if err != nil {
		return out, err
	}
	out[0], out[1] = b[0], b[1]&0xf0
	return out, nil
}

// Text returns the code in its written form, 7 groups of 4 characters
// separated by '-'.
func (c RecoveryCode) Text() string {
	chk, err := c.check()
	if err != nil {
		return ""
	}
	raw := make([]byte, 0, 18)
	raw = append(append(raw, c[:]...), chk[:]...)
	s := crockford.EncodeToString(raw)[:RecoveryCodeLen] // the 29th character holds the 4 zero bits
	var b strings.Builder
	for i := 0; i < RecoveryCodeLen; i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i : i+4])
	}
	return b.String()
}

// String implements fmt.Stringer without revealing the code.
func (RecoveryCode) String() string { return Redacted }

// MaxRecoveryCodeText bounds the text ParseRecoveryCode looks at: the
// written form with room for spaces around the separators.
const MaxRecoveryCodeText = 64

// ParseRecoveryCode reads a recovery code as a person typed it. Text
// that is too long, has a character outside the alphabet, the wrong
// number of characters or a wrong check fails with ErrMalformed.
func ParseRecoveryCode(s string) (RecoveryCode, error) {
	var c RecoveryCode
	if len(s) > MaxRecoveryCodeText {
		return c, fmt.Errorf("%w: recovery code of %d bytes", ErrMalformed, len(s))
	}
	buf := make([]byte, 0, RecoveryCodeLen+1)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '-' || ch == ' ':
			continue
		case ch >= 'a' && ch <= 'z':
			ch -= 'a' - 'A'
		}
		switch ch {
		case 'O':
			ch = '0'
		case 'I', 'L':
			ch = '1'
		case 'U':
			return c, fmt.Errorf("%w: recovery code has a character outside its alphabet", ErrMalformed)
		}
		if !(ch >= '0' && ch <= '9' || ch >= 'A' && ch <= 'Z') {
			return c, fmt.Errorf("%w: recovery code has a character outside its alphabet", ErrMalformed)
		}
		buf = append(buf, ch)
	}
	if len(buf) != RecoveryCodeLen {
		return c, fmt.Errorf("%w: recovery code of %d characters, want %d", ErrMalformed, len(buf), RecoveryCodeLen)
	}
	buf = append(buf, '0') // the 4 zero bits after the check
	raw, err := crockford.DecodeString(string(buf))
	if err != nil || len(raw) != 18 {
		return c, fmt.Errorf("%w: recovery code does not decode", ErrMalformed)
	}
	copy(c[:], raw)
	chk, err := c.check()
	if err != nil {
		return RecoveryCode{}, err
	}
	if raw[16] != chk[0] || raw[17] != chk[1] {
		return RecoveryCode{}, fmt.Errorf("%w: recovery code check characters do not match (mistyped?)", ErrMalformed)
	}
	return c, nil
}

// Message types of recovery code escrow (FlowAudit, SPEC.md 11.15).
const (
	// MsgRecoveryEscrow is agent -> console: the agent's current
	// recovery code, sent after its audit records are acknowledged.
	MsgRecoveryEscrow MsgType = 33
	// MsgRecoveryAck is console -> agent: the code is stored.
	MsgRecoveryAck MsgType = 34
)

// RecoveryEscrow hands a device's recovery code to the console, inside
// the device's FlowAudit Noise session:
//
//	map { 1: Generation uint (>= 1), 2: Code bytes 16 }
type RecoveryEscrow struct {
	Generation uint64       `cbor:"1,keyasint"`
	Code       RecoveryCode `cbor:"2,keyasint"`
}

// LogValue implements slog.LogValuer: the code logs as Redacted.
func (e RecoveryEscrow) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("generation", e.Generation), slog.String("code", Redacted))
}

// Check applies the bounds of SPEC.md 8.2 a decoder does not: Generation
// is at least 1.
func (e *RecoveryEscrow) Check() error {
	if e.Generation == 0 {
		return fmt.Errorf("%w: recovery code generation 0", ErrMalformed)
	}
	return nil
}

// RecoveryAck acknowledges an escrowed code:
//
//	map { 1: Generation uint (>= 1) }
type RecoveryAck struct {
	Generation uint64 `cbor:"1,keyasint"`
}

// Check applies the bound Generation >= 1.
func (a *RecoveryAck) Check() error {
	if a.Generation == 0 {
		return fmt.Errorf("%w: recovery code generation 0", ErrMalformed)
	}
	return nil
}

// BreakGlassUsedDetail is the Detail of a breakglass.used record (SPEC.md
// 11.15 step 5): generation used was accepted and generation next created.
// The console reads the used generation back with ParseBreakGlassUsedDetail
// to mark its escrowed copy used; both live here so that they cannot drift.
func BreakGlassUsedDetail(used, next uint64) string {
	return fmt.Sprintf("recovery code generation %d used; generation %d created, escrowed at the next contact with the console", used, next)
}

// ParseBreakGlassUsedDetail returns the generation a breakglass.used
// record's Detail names, or false if the Detail is not one that
// BreakGlassUsedDetail writes.
func ParseBreakGlassUsedDetail(detail string) (used uint64, ok bool) {
	var next uint64
	if _, err := fmt.Sscanf(detail, "recovery code generation %d used; generation %d created", &used, &next); err != nil || used == 0 || next != used+1 {
		return 0, false
	}
	return used, detail == BreakGlassUsedDetail(used, next)
}
