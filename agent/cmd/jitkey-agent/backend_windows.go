//go:build windows

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/windows"

	"github.com/jitkey/jitkey/agent/accounts"
	"github.com/jitkey/jitkey/agent/daemon"
	"github.com/jitkey/jitkey/agent/ipcserver"
	"github.com/jitkey/jitkey/agent/password"
	"github.com/jitkey/jitkey/winhelper/dpapi"
	"github.com/jitkey/jitkey/winhelper/netuser"
	"github.com/jitkey/jitkey/winhelper/netuser/netusertest"
	"github.com/jitkey/jitkey/winhelper/pipe"
	"github.com/jitkey/jitkey/winhelper/service"
)

// backend returns the netapi32 backend, or with --sandbox (tests, and
// Wine, whose netapi32 user functions are stubs) an in-memory SAM that
// follows the netapi32 documentation (netusertest): accounts then exist
// only inside the agent process.
func backend(_ context.Context, sandboxDir string, log *slog.Logger) (accounts.Backend, int, error) {
	var api netuser.API
	if sandboxDir != "" {
		log.Warn("sandbox: Windows accounts are simulated in memory (netusertest); nothing changes on this computer")
		api = netusertest.New(netusertest.Config{})
	} else {
		var err error
		if api, err = netuser.NewSystemAPI(); err != nil {
			return nil, 0, err
		}
	}
	b, err := netuser.New(netuser.Config{API: api, Logger: log})
	return b, accounts.MaxNameWindows, err
}

func pamLogin(context.Context, string, string, string, password.Secret) error {
	return errors.ErrUnsupported
}

// defaultIPC is the agent's named pipe.
func defaultIPC() string { return pipe.DefaultName }

// platform makes the agent serve the named pipe and seal its secrets with
// DPAPI. The pipe admits SYSTEM and interactive users (whom the agent
// serves only remote desktop logins, SPEC.md 5.7), or SYSTEM only when
// the state directory holds pipe.SystemOnlyFile; in a sandbox (tests under Wine,
// where everything runs as one user) also the agent's own user, and the
// secrets stay sealed with the state's key file as on Linux.
func platform(cfg *daemon.Config, sandboxDir string, log *slog.Logger) error {
	if strings.HasPrefix(cfg.IPCPath, `\\.\pipe\`) {
		pc := pipe.Config{Name: cfg.IPCPath, Logger: log}
		only, err := pipe.SystemOnlyIn(cfg.StateDir)
		if err != nil {
			return err
		}
		pc.SystemOnly = only
		if sandboxDir != "" {
			u, err := currentUserSID()
			if err != nil {
				return err
			}
			pc.AllowedSIDs = []string{pipe.SIDSystem, u}
			pc.SDDL = fmt.Sprintf("D:P(A;;GA;;;SY)(A;;GA;;;%s)", u)
		}
		cfg.IPCListen = func(ctx context.Context) (ipcserver.Listener, error) { return pipe.Listen(ctx, pc) }
	}
	if sandboxDir != "" {
		// A sandboxed state is enrolled by the Linux build of the agent
		// (the Wine test: Wine has no UDP for the enrollment's QUIC),
		// which seals the offline secrets with the state directory's key
		// file: keep that (daemon.Config.Vault nil).
		log.Warn("sandbox: offline secrets are sealed with the state directory's key file, not DPAPI")
		return nil
	}
	v, err := dpapi.New()
	if err != nil {
		return err
	}
	cfg.Vault = v
	return nil
}

func currentUserSID() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("current user: %w", err)
	}
	return u.User.Sid.String(), nil
}

const serviceUsage = `  jitkey-agent service install --state DIR    (as an administrator)
  jitkey-agent service recovery               (restart actions for the MSI-installed service)
  jitkey-agent service uninstall
  jitkey-agent service run --state DIR        (started by the service manager)
`

// cmdService installs, removes or runs the Windows service. The service
// runs "jitkey-agent service run --state DIR" as LocalSystem and writes
// its records from Info up to the Application event log as well.
func cmdService(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) == 0 {
		return usagef(serviceUsage, "service needs install, uninstall or run")
	}
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	state := fs.String("state", `C:\ProgramData\jitkey`, "state directory")
	if _, err := parseFlags(fs, args[1:], serviceUsage); err != nil {
		return err
	}
	switch args[0] {
	case "install":
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		return service.Install(exe, "service", "run", "--state", *state)
	case "recovery":
		return service.SetRecovery()
	case "uninstall":
		return service.Uninstall()
	case "run":
		h, closeLog, err := service.OpenEventLog(slog.LevelInfo)
		if err != nil {
			return err
		}
		defer closeLog()
		elog := slog.New(service.Tee{log.Handler(), h})
		return service.Run(func(ctx context.Context) error {
			return cmdRun(ctx, []string{"--state", *state}, elog)
		})
	}
	return usagef(serviceUsage, "unknown service command %q", args[0])
}

// stateSDDL protects the state directory: SYSTEM and Administrators
// only, inherited by every file in it, nothing inherited from above
// (ProgramData lets Users read).
const stateSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// protectState creates dir and gives it stateSDDL: the keys, the
// database and the DPAPI-sealed secrets are readable by nobody else.
func protectState(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(stateSDDL)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("state directory %s: set ACL: %w", dir, err)
	}
	return nil
}
