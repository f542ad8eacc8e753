//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// IsService reports whether the process was started by the service
// control manager.
func IsService() (bool, error) { return svc.IsWindowsService() }

// Run runs f as the service Name until f returns or the service control
// manager asks it to stop (ctx is cancelled then). A non-nil error from f
// is reported to the manager as a service-specific exit code 1, so the
// recovery actions restart it.
func Run(f func(ctx context.Context) error) error {
	return svc.Run(Name, &handler{f: f})
}

type handler struct {
	f func(ctx context.Context) error
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.f(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			if err != nil {
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: 30000}
				cancel()
				err := <-done
				if err != nil && !errors.Is(err, context.Canceled) {
					return true, 1
				}
				return false, 0
			}
		}
	}
}

// Install registers the service to run exe with args as LocalSystem,
// started automatically, with the recovery actions, and the event log
// source.
func Install(exe string, args ...string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.CreateService(Name, exe, mgr.Config{
		DisplayName: DisplayName,
		Description: Description,
		StartType:   mgr.StartAutomatic,
	}, args...)
	if err != nil {
		return fmt.Errorf("service: create: %w", err)
	}
	defer s.Close()
	if err := setRecovery(s); err != nil {
		_ = s.Delete()
		return err
	}
	if err := eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		return fmt.Errorf("service: event log source: %w", err)
	}
	return nil
}

func setRecovery(s *mgr.Service) error {
	actions := make([]mgr.RecoveryAction, len(Recovery))
	for i, d := range Recovery {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d}
	}
	if err := s.SetRecoveryActions(actions, uint32(RecoveryReset/time.Second)); err != nil {
		return fmt.Errorf("service: recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("service: recovery on failure exit: %w", err)
	}
	return nil
}

// SetRecovery sets the recovery actions on an installed service (the
// MSI installs the service; wixl cannot write its failure actions).
func SetRecovery() error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return fmt.Errorf("service: open: %w", err)
	}
	defer s.Close()
	return setRecovery(s)
}

// Uninstall stops and deletes the service and removes the event log
// source.
func Uninstall() error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service: connect to the service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return fmt.Errorf("service: open: %w", err)
	}
	defer s.Close()
	_, _ = s.Control(svc.Stop)
	if err := s.Delete(); err != nil {
		return fmt.Errorf("service: delete: %w", err)
	}
	if err := eventlog.Remove(Name); err != nil {
		return fmt.Errorf("service: remove event log source: %w", err)
	}
	return nil
}

// OpenEventLog returns a handler writing to the Application event log
// under the service's source, and a function that closes it.
func OpenEventLog(level slog.Level) (slog.Handler, func(), error) {
	el, err := eventlog.Open(Name)
	if err != nil {
		return nil, nil, fmt.Errorf("service: open event log: %w", err)
	}
	return NewEventLogHandler(el, level), func() { _ = el.Close() }, nil
}
