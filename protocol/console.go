package protocol

import (
	"crypto/subtle"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxConsoleText bounds ConsoleRequest.Origin and ConsoleRequest.Client.
const MaxConsoleText = 128

// ConsoleRequest is what the console asks the phone in FlowConsoleLogin
// (message MsgConsoleRequest, SPEC.md 11.12): sign the technician in to
// the web console. The phone shows every field before the technician
// decides; the approval that answers it has Action ActionConsole and a
// zero DeviceID.
//
//	{1: Session bytes 16, 2: Action u8 (ActionConsole), 3: Org text,
//	 4: Origin text, 5: Client text, 6: Time int}
type ConsoleRequest struct {
	Session SessionID `cbor:"1,keyasint"`
	Action  uint8     `cbor:"2,keyasint"` // ActionConsole
	Org     string    `cbor:"3,keyasint"` // the MSP's organisation name
	Origin  string    `cbor:"4,keyasint"` // the web console's origin, e.g. https://console.example:8443
	Client  string    `cbor:"5,keyasint"` // the browser that shows the QR: address and user agent, shortened
	Time    int64     `cbor:"6,keyasint"` // console clock, Unix seconds
}

// Check verifies a ConsoleRequest received in the session with id
// session at now: the session's id, ActionConsole, a time within
// MaxApprovalSkew, and texts of printable characters within their bounds
// (they are shown on the approval screen, so no control characters that
// could redraw it). Any failure is ErrMalformed, ErrApprovalMismatch or
// ErrStale.
func (r *ConsoleRequest) Check(session SessionID, now time.Time) error {
	switch {
	case subtle.ConstantTimeCompare(r.Session[:], session[:]) != 1, r.Action != ActionConsole:
		return ErrApprovalMismatch
	case !consoleText(r.Org, MaxNameLen) || r.Org == "":
		return fmt.Errorf("%w: console request: organisation", ErrMalformed)
	case !consoleText(r.Origin, MaxConsoleText) || r.Origin == "":
		return fmt.Errorf("%w: console request: origin", ErrMalformed)
	case !consoleText(r.Client, MaxConsoleText):
		return fmt.Errorf("%w: console request: client", ErrMalformed)
	}
	d := now.Sub(time.Unix(r.Time, 0))
	if d > MaxApprovalSkew || d < -MaxApprovalSkew {
		return ErrStale
	}
	return nil
}

func consoleText(s string, limit int) bool {
	if len(s) > limit || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

// ConsoleQR returns the payload of a web console sign-in QR: a login QR
// (QRLogin) with ActionConsole and a zero device id, shown by the console
// (its Noise static key, mailbox and home relay) at t.
func ConsoleQR(static NoiseKey, mailbox MailboxID, relay string, secret [QRSecretLen]byte, t time.Time) QRPayload {
	return QRPayload{Kind: QRLogin, Action: ActionConsole, Time: t, Static: static, Mailbox: mailbox, Relay: relay, Secret: secret}
}
