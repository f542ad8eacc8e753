//go:build linux

package harness

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// AuditLine is one line of `jitkey-console audit --json` (see package
// console/auditview): a verified record or a chain alarm.
type AuditLine struct {
	Type     string `json:"type"` // "record" or "alarm"
	Time     string `json:"time"`
	Tenant   string `json:"tenant"`
	Device   string `json:"device"`
	DeviceID string `json:"device_id"`
	Seq      uint64 `json:"seq"`
	Event    string `json:"event"`
	Username string `json:"username"`
	Account  string `json:"account"`
	Method   string `json:"method"`
	Online   bool   `json:"online"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail"`
	Kind     string `json:"kind"`
	Text     string `json:"text"`
	// FromRemoved: the console received the record after the device was
	// removed (SPEC.md 11.10).
	FromRemoved bool `json:"from_removed"`
}

// AuditLog is the console's audit trail as the testbed reads it.
type AuditLog []AuditLine

// Records returns the records (not alarms) of device (by name; "" = all).
func (l AuditLog) Records(device string) AuditLog {
	var out AuditLog
	for _, r := range l {
		if r.Type == "record" && (device == "" || r.Device == device) {
			out = append(out, r)
		}
	}
	return out
}

// Alarms returns the chain alarms (not the push-reported alarms of a
// technician's "this was not me", nor the breakglass-used alarm of a
// recovery code's use, which say nothing about the chain).
func (l AuditLog) Alarms() AuditLog {
	var out AuditLog
	for _, r := range l {
		if r.Type == "alarm" && r.Kind != "push-reported" && r.Kind != "breakglass-used" {
			out = append(out, r)
		}
	}
	return out
}

// Events returns the event names of l in order.
func (l AuditLog) Events() []string {
	var out []string
	for _, r := range l {
		out = append(out, r.Event)
	}
	return out
}

// Has reports whether some record has event and, if account is not "",
// that account.
func (l AuditLog) Has(event, account string) bool {
	return slices.ContainsFunc(l, func(r AuditLine) bool {
		return r.Type == "record" && r.Event == event && (account == "" || r.Account == account)
	})
}

// CheckContiguous returns an error unless there are no alarms and every
// device's records are numbered 1, 2, 3, ... without a gap: no record was
// lost between the agent and the console.
func (l AuditLog) CheckContiguous() error {
	if a := l.Alarms(); len(a) > 0 {
		var texts []string
		for _, x := range a {
			texts = append(texts, x.Kind+": "+x.Text)
		}
		return fmt.Errorf("audit alarms: %s", strings.Join(texts, "; "))
	}
	seqs := map[string][]uint64{}
	for _, r := range l.Records("") {
		seqs[r.Device] = append(seqs[r.Device], r.Seq)
	}
	for dev, s := range seqs {
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		for i, n := range s {
			if n != uint64(i+1) {
				return fmt.Errorf("audit of %s: record %d missing (have %v)", dev, i+1, s)
			}
		}
	}
	return nil
}

// Summary renders the records as text lines (for failure messages).
func (l AuditLog) Summary() string {
	var b strings.Builder
	for _, r := range l {
		fmt.Fprintf(&b, "%s #%d %s %s\n", r.Device, r.Seq, r.Event, r.Text)
	}
	return b.String()
}
