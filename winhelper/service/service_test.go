package service_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/winhelper/service"
)

type event struct {
	kind string
	id   uint32
	msg  string
}

type fakeLog struct{ events []event }

func (f *fakeLog) add(kind string, id uint32, msg string) error {
	f.events = append(f.events, event{kind, id, msg})
	return nil
}
func (f *fakeLog) Info(id uint32, msg string) error    { return f.add("info", id, msg) }
func (f *fakeLog) Warning(id uint32, msg string) error { return f.add("warning", id, msg) }
func (f *fakeLog) Error(id uint32, msg string) error   { return f.add("error", id, msg) }

func TestEventLogHandler(t *testing.T) {
	el := &fakeLog{}
	log := slog.New(service.NewEventLogHandler(el, slog.LevelInfo)).With("component", "agent")
	log.Debug("not audit-relevant")
	log.Info("windows account enabled", "account", "msp-nik")
	log.WithGroup("ipc").Warn("ipc connection rejected", "sid", "S-1-5-21-1-2-3-1001", "pid", 42)
	log.Error("end session", "err", errors.New("access denied"), "pw", password.FromBytes([]byte("Secret-123")))
	want := []event{
		{"info", service.EventInfo, "windows account enabled component=agent account=msp-nik"},
		{"warning", service.EventWarning, "ipc connection rejected component=agent ipc.sid=S-1-5-21-1-2-3-1001 ipc.pid=42"},
		{"error", service.EventError, `end session component=agent err="access denied" pw=REDACTED`},
	}
	if !slices.Equal(el.events, want) {
		t.Fatalf("events:\n%+v\nwant\n%+v", el.events, want)
	}
}

func TestTee(t *testing.T) {
	a, b := &fakeLog{}, &fakeLog{}
	log := slog.New(service.Tee{service.NewEventLogHandler(a, slog.LevelInfo), service.NewEventLogHandler(b, slog.LevelWarn)})
	log.Info("one")
	log.Warn("two")
	if len(a.events) != 2 || len(b.events) != 1 || b.events[0].msg != "two" {
		t.Fatalf("a %v, b %v", a.events, b.events)
	}
	if !log.Enabled(context.Background(), slog.LevelInfo) || log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("Tee.Enabled")
	}
}
