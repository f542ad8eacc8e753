// Package service runs the jitkey agent as a Windows service: Run hands a
// function to the service control manager (golang.org/x/sys/windows/svc)
// and cancels its context on Stop or Shutdown; Install registers the
// service (automatic start, LocalSystem) with recovery actions (restart
// after 5 s, 30 s and 2 min; the failure count resets after a day) and
// the event log source; Uninstall removes both. EventLogHandler is a
// slog.Handler that copies the agent's records from Info up (account
// changes, logins, session ends, refusals) into the Application event
// log, where Windows administrators and their monitoring look.
//
// The record formatting and the event ids are portable and tested on
// Linux; the service calls are Windows only (errors.ErrUnsupported
// elsewhere).
package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Name is the service's name and its event log source.
const Name = "jitkey-agent"

// DisplayName is what services.msc shows.
const DisplayName = "jitkey agent"

// Description is the service's description.
const Description = "Just-in-time administrator accounts for MSP technicians (jitkey)."

// Recovery is the service's restart policy after a crash.
var Recovery = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute}

// RecoveryReset is the period without failure after which the failure
// count starts again.
const RecoveryReset = 24 * time.Hour

// Event ids in the event log, one per level.
const (
	EventInfo    = 1
	EventWarning = 2
	EventError   = 3
)

// EventLog is the part of eventlog.Log the handler writes to.
type EventLog interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// EventLogHandler is a slog.Handler writing to an EventLog.
type EventLogHandler struct {
	el     EventLog
	level  slog.Level
	prefix string // attributes from WithAttrs, formatted
	group  string
}

// NewEventLogHandler returns a handler that writes records at level and
// above to el.
func NewEventLogHandler(el EventLog, level slog.Level) *EventLogHandler {
	return &EventLogHandler{el: el, level: level}
}

// Enabled implements slog.Handler.
func (h *EventLogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

// Handle implements slog.Handler: one event per record, "message
// key=value ..." with the attributes' LogValue (secrets print REDACTED).
func (h *EventLogHandler) Handle(_ context.Context, r slog.Record) error {
	msg := Format(r, h.prefix, h.group)
	switch {
	case r.Level >= slog.LevelError:
		return h.el.Error(EventError, msg)
	case r.Level >= slog.LevelWarn:
		return h.el.Warning(EventWarning, msg)
	}
	return h.el.Info(EventInfo, msg)
}

// WithAttrs implements slog.Handler.
func (h *EventLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		writeAttr(&b, h.group, a)
	}
	n.prefix = b.String()
	return &n
}

// WithGroup implements slog.Handler.
func (h *EventLogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.group = h.group + name + "."
	return &n
}

// Format renders a record as an event message.
func Format(r slog.Record, prefix, group string) string {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, group, a)
		return true
	})
	return b.String()
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			writeAttr(b, group+a.Key+".", g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	s := v.String()
	if strings.ContainsAny(s, " \"=\r\n\t") || s == "" {
		s = fmt.Sprintf("%q", s)
	}
	fmt.Fprintf(b, " %s%s=%s", group, a.Key, s)
}

// Tee is a slog.Handler that sends each record to all its handlers.
type Tee []slog.Handler

// Enabled implements slog.Handler.
func (t Tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

// Handle implements slog.Handler; it returns the first error.
func (t Tee) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// WithAttrs implements slog.Handler.
func (t Tee) WithAttrs(as []slog.Attr) slog.Handler {
	n := make(Tee, len(t))
	for i, h := range t {
		n[i] = h.WithAttrs(as)
	}
	return n
}

// WithGroup implements slog.Handler.
func (t Tee) WithGroup(name string) slog.Handler {
	n := make(Tee, len(t))
	for i, h := range t {
		n[i] = h.WithGroup(name)
	}
	return n
}
