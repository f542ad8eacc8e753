// Package auditview renders the console's audit trail for people (one
// plain sentence per record, e.g. "nik logged into W11-L-PASSWORD with
// account msp-nik (QR, online)") and for programs (JSON lines with every
// field). Chain alarms render as loud lines of their own.
package auditview

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jitkey/jitkey/console/store"
	"github.com/jitkey/jitkey/protocol"
)

// Sentence renders one record as a plain sentence, without time.
func Sentence(deviceName string, r *protocol.AuditRecord) string {
	who := r.Username
	if who == "" {
		who = "someone"
	}
	acct := r.Account
	paren := func(parts ...string) string {
		var ps []string
		for _, p := range parts {
			if p != "" {
				ps = append(ps, p)
			}
		}
		if len(ps) == 0 {
			return ""
		}
		return " (" + strings.Join(ps, ", ") + ")"
	}
	how := ""
	if r.Method != "" {
		online := "offline"
		if r.Online {
			online = "online"
		}
		how = paren(strings.ToUpper(r.Method), online)
	}
	why := r.Reason
	if why == "" {
		why = r.Detail
	}
	switch r.Event {
	case "login.approved":
		verb := "logged into"
		switch r.Action {
		case protocol.ActionUnlock:
			verb = "unlocked"
		case protocol.ActionElevate:
			verb = "elevated on"
		case protocol.ActionSudo:
			verb = "used sudo on"
		}
		s := fmt.Sprintf("%s %s %s", who, verb, deviceName)
		if acct != "" {
			s += " with account " + acct
		}
		s += how + justification(r)
		if r.Detail != "" {
			// The second approver (SPEC.md 11.14), the domain account.
			s += "; " + r.Detail
		}
		return s
	case protocol.EventBreakGlassUsed:
		return fmt.Sprintf("BREAK-GLASS: the recovery code of %s was used for account %s%s", deviceName, acct, paren(why))
	case "login.denied":
		return fmt.Sprintf("%s was denied on %s%s", who, deviceName, paren(why))
	case "login.cancelled":
		return fmt.Sprintf("%s cancelled a login on %s%s", who, deviceName, paren(why))
	case "account.created":
		return fmt.Sprintf("%s was created on %s%s", acct, deviceName, paren(why))
	case "account.enabled":
		s := fmt.Sprintf("%s was enabled on %s", acct, deviceName)
		if r.Username != "" {
			s += " for " + r.Username
		}
		return s + paren(why)
	case "account.disabled":
		return fmt.Sprintf("%s was disabled on %s%s%s", acct, deviceName, paren(why), receiptText(r.Receipt))
	case "account.deleted":
		return fmt.Sprintf("%s was deleted from %s%s", acct, deviceName, paren(why))
	case "session.ended":
		return fmt.Sprintf("%s's session as %s on %s ended%s", who, acct, deviceName, paren(why))
	case "session.announced":
		return fmt.Sprintf("%s's session as %s on %s was announced to the computer's users%s", who, acct, deviceName, paren(r.Reason))
	case "session.warned":
		return fmt.Sprintf("%s's session as %s on %s was warned of its end%s", who, acct, deviceName, paren(r.Detail, r.Reason))
	case "session.expired":
		return fmt.Sprintf("%s's session as %s on %s reached its maximum length%s", who, acct, deviceName, paren(why))
	case "policy.applied":
		return fmt.Sprintf("%s applied policy%s", deviceName, paren(why))
	case "policy.rejected":
		return fmt.Sprintf("%s rejected a policy%s", deviceName, paren(why))
	case "agent.recovered":
		return fmt.Sprintf("%s recovered after a restart%s", deviceName, paren(why))
	case protocol.EventPushReported:
		return fmt.Sprintf("%s reported a push login on %s as not theirs: push blocked%s", who, deviceName, paren(r.Detail))
	case "device.removed":
		return fmt.Sprintf("%s learned that the MSP removed it: jitkey logins disabled%s", deviceName, paren(why))
	}
	s := fmt.Sprintf("%s on %s", r.Event, deviceName)
	if r.Username != "" {
		s += " by " + r.Username
	}
	if acct != "" {
		s += " with account " + acct
	}
	return s + paren(why)
}

// justification renders the technician's reason and ticket of a login
// (SPEC.md 6.4), or "".
func justification(r *protocol.AuditRecord) string {
	var parts []string
	if r.Ticket != "" {
		parts = append(parts, "ticket "+r.Ticket)
	}
	if r.Justification != "" {
		parts = append(parts, fmt.Sprintf("reason %q", r.Justification))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// receiptText renders what an end receipt (SPEC.md 6.6) states, or "".
// The console verified it when the record arrived; one that did not
// verify raised a receipt-forged alarm, which the listing shows first.
func receiptText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s, err := protocol.DecodeSigned(b)
	var rc protocol.EndReceipt
	if err != nil || s.Type != protocol.DocEndReceipt || protocol.Unmarshal(s.Body, &rc) != nil {
		return "; end receipt unreadable"
	}
	var did []string
	for _, f := range []struct {
		ok   bool
		what string
	}{{rc.Disabled, "disabled"}, {rc.PasswordRotated, "password rotated"}, {rc.ProcessesEnded, "processes ended"}, {rc.AdminRemoved, "administrator rights removed"}} {
		if f.ok {
			did = append(did, f.what)
		}
	}
	return "; end receipt: " + strings.Join(did, ", ")
}

// AlarmLine renders an alarm loudly.
func AlarmLine(a *store.Alarm) string {
	switch a.Kind {
	case "receipt-missing", "receipt-forged":
		what := map[string]string{"receipt-missing": "MISSING", "receipt-forged": "FORGED"}[a.Kind]
		return fmt.Sprintf("!!! END RECEIPT %s on device %s (tenant %s) at seq %d: %s (detected %s)",
			what, a.DeviceName, a.Tenant, a.Seq, a.Detail, time.Unix(a.Time, 0).UTC().Format(time.RFC3339))
	}
	if a.Kind == "breakglass-used" {
		return fmt.Sprintf("!!! BREAK-GLASS RECOVERY CODE USED on device %s (tenant %s) at seq %d: %s (detected %s)",
			a.DeviceName, a.Tenant, a.Seq, a.Detail, time.Unix(a.Time, 0).UTC().Format(time.RFC3339))
	}
	if a.Kind == "push-reported" {
		return fmt.Sprintf("!!! PUSH LOGIN REPORTED AS FRAUD on device %s (tenant %s) at seq %d: %s (detected %s)",
			a.DeviceName, a.Tenant, a.Seq, a.Detail, time.Unix(a.Time, 0).UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("!!! AUDIT CHAIN BROKEN for device %s (tenant %s) at seq %d: %s: %s (detected %s)",
		a.DeviceName, a.Tenant, a.Seq, a.Kind, a.Detail, time.Unix(a.Time, 0).UTC().Format(time.RFC3339))
}

// Text writes alarms first, then one line per record: UTC time and sentence.
func Text(w io.Writer, rows []*store.AuditRow, alarms []*store.Alarm) error {
	for _, a := range alarms {
		if _, err := fmt.Fprintln(w, AlarmLine(a)); err != nil {
			return err
		}
	}
	for _, r := range rows {
		t := time.UnixMilli(r.Record.Time).UTC().Format("2006-01-02 15:04:05")
		mark := ""
		if r.FromRemoved {
			mark = "  [received after the device was removed]"
		}
		if _, err := fmt.Fprintf(w, "%s  %s%s\n", t, Sentence(r.DeviceName, &r.Record), mark); err != nil {
			return err
		}
	}
	return nil
}

// Line is the JSON form of one record or alarm.
type Line struct {
	Type     string `json:"type"` // "record" or "alarm"
	Time     string `json:"time"` // RFC 3339, UTC, milliseconds
	Tenant   string `json:"tenant"`
	Device   string `json:"device"`
	DeviceID string `json:"device_id"`
	Seq      uint64 `json:"seq"`
	Event    string `json:"event,omitempty"`
	TechID   string `json:"tech_id,omitempty"`
	Username string `json:"username,omitempty"`
	Account  string `json:"account,omitempty"`
	Method   string `json:"method,omitempty"`
	Online   bool   `json:"online"`
	Action   string `json:"action,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Detail   string `json:"detail,omitempty"`
	// Justification and Ticket are the technician's reason and ticket of
	// a login (SPEC.md 6.4).
	Justification string `json:"justification,omitempty"`
	Ticket        string `json:"ticket,omitempty"`
	Hash          string `json:"hash,omitempty"`
	Prev          string `json:"prev,omitempty"`
	Kind          string `json:"kind,omitempty"` // alarms
	Text          string `json:"text"`
	// FromRemoved: the record arrived after the MSP removed the device.
	FromRemoved bool `json:"from_removed,omitempty"`
}

// JSON writes alarms, then records, one JSON object per line.
func JSON(w io.Writer, rows []*store.AuditRow, alarms []*store.Alarm) error {
	enc := json.NewEncoder(w)
	for _, a := range alarms {
		if err := enc.Encode(Line{
			Type: "alarm", Time: time.Unix(a.Time, 0).UTC().Format(time.RFC3339), Tenant: a.Tenant,
			Device: a.DeviceName, DeviceID: hex.EncodeToString(a.DeviceID[:]), Seq: a.Seq, Kind: a.Kind,
			Detail: a.Detail, Text: AlarmLine(a),
		}); err != nil {
			return err
		}
	}
	for _, r := range rows {
		rec := &r.Record
		if err := enc.Encode(Line{
			Type: "record", Time: time.UnixMilli(rec.Time).UTC().Format("2006-01-02T15:04:05.000Z"), Tenant: r.Tenant,
			Device: r.DeviceName, DeviceID: hex.EncodeToString(r.DeviceID[:]), Seq: r.Seq, Event: rec.Event,
			TechID: rec.TechID, Username: rec.Username, Account: rec.Account, Method: rec.Method, Online: rec.Online,
			Action: protocol.ActionName(rec.Action), Reason: rec.Reason, Detail: rec.Detail,
			Justification: rec.Justification, Ticket: rec.Ticket,
			Hash: hex.EncodeToString(r.Hash[:]), Prev: hex.EncodeToString(rec.Prev[:]), Text: Sentence(r.DeviceName, rec),
			FromRemoved: r.FromRemoved,
		}); err != nil {
			return err
		}
	}
	return nil
}
