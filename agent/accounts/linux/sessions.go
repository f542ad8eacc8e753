//go:build linux

package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults of EndSessions.
const (
	// defaultLogindDir is where systemd-logind keeps one state file per
	// user it tracks, named by uid.
	defaultLogindDir = "/run/systemd/users"
	// defaultEndTimeout bounds how long EndSessions keeps killing.
	defaultEndTimeout = 10 * time.Second
)

// ErrStillRunning is returned (wrapped) by EndSessions when processes of
// the account are still there after its time bound.
var ErrStillRunning = errors.New("linux: processes of the account still running")

// errBadUID: the account's uid is 0, unparsable, or belongs to another
// account on the host; EndSessions signals nothing.
var errBadUID = errors.New("linux: refusing to kill the processes of this uid")

// EndSessions implements accounts.Backend. The uid comes from the account
// database the Runner sees (the sandbox's in sandbox mode), and the
// processes are the host's, so it refuses a uid of 0 and a uid that the
// host's own account database gives to another name (a sandbox account
// sharing a uid with a real user). If systemd-logind tracks the uid (it
// has a state file for it in Config.LogindDir), it runs loginctl
// terminate-user UID first; a failure there is logged, not returned,
// since the kill that follows is what ends the processes. Then it scans
// /proc and sends SIGSTOP to every process that holds the uid as real,
// effective, saved or filesystem uid, scanning again until no new one
// appears (a stopped process forks no more), then SIGKILL to all of them,
// and repeats until a scan finds none or Config.EndTimeout passes. Zombies
// do not count (they run nothing), except a thread group leader that
// exited while its other threads run on. Processes are signalled through
// a pidfd opened before their credentials are read, so a pid reused by
// another process in between is never hit; without pidfds (before Linux
// 5.3, or out of file descriptors) kill(2) is used, which leaves a window
// of microseconds for that.
func (b *Backend) EndSessions(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("linux: end sessions: %w", err)
	}
	uid, err := b.accountUID(ctx, name)
	if err != nil {
		return fmt.Errorf("linux: end sessions of %s: %w", name, err)
	}
	if _, err := os.Stat(filepath.Join(b.logindDir, strconv.Itoa(uid))); err == nil {
		if _, err := b.run.Run(ctx, nil, "loginctl", "terminate-user", strconv.Itoa(uid)); err != nil {
			b.log.WarnContext(ctx, "loginctl terminate-user failed; killing the processes anyway", "account", name, "uid", uid, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, b.endTimeout)
	defer cancel()
	killed, err := killUID(ctx, uid)
	if err != nil {
		b.log.ErrorContext(ctx, "account sessions not ended", "account", name, "uid", uid, "killed", killed, "err", err)
		return fmt.Errorf("linux: end sessions of %s: %w", name, err)
	}
	if killed > 0 {
		b.log.InfoContext(ctx, "account sessions ended", "account", name, "uid", uid, "killed", killed)
	}
	return nil
}

// accountUID returns name's uid from the Runner's account database, after
// checking that it is not 0 and that the host does not know the uid under
// another name.
func (b *Backend) accountUID(ctx context.Context, name string) (int, error) {
	pw, err := b.passwd(ctx, name)
	if err != nil {
		return 0, err
	}
	uid, err := strconv.Atoi(pw[2])
	if err != nil || uid <= 0 {
		return 0, fmt.Errorf("%w: uid %q", errBadUID, pw[2])
	}
	u, err := user.LookupId(pw[2])
	var unknown user.UnknownUserIdError
	switch {
	case errors.As(err, &unknown):
		// Only the sandbox knows the account.
	case err != nil:
		return 0, fmt.Errorf("look up uid %d on the host: %w", uid, err)
	case u.Username != name:
		return 0, fmt.Errorf("%w: uid %d is %q's on the host", errBadUID, uid, u.Username)
	}
	return uid, nil
}

// killUID stops and kills every process holding uid until none is left or
// ctx ends, and returns how many times it sent SIGKILL.
func killUID(ctx context.Context, uid int) (int, error) {
	killed := 0
	for {
		// Whatever freeze caught is killed even if it stopped early.
		held, ferr := freeze(ctx, uid)
		for _, p := range held {
			if p.signal(unix.SIGKILL) == nil {
				killed++
			}
		}
		werr := waitExit(ctx, held)
		closeAll(held)
		if err := errors.Join(ferr, werr); err != nil {
			return killed, stillRunning(uid, err)
		}
		if len(held) == 0 {
			return killed, nil
		}
	}
}

// stillRunning reports the processes of uid left after cause (ctx's end,
// or a failure to scan or signal). It allows processes already killed a
// moment to exit.
func stillRunning(uid int, cause error) error {
	var pids []int
	for range 20 {
		var err error
		if pids, err = scan(uid); err != nil {
			return errors.Join(cause, err)
		}
		if len(pids) == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%w: uid %d: pids %v (%w)", ErrStillRunning, uid, pids, cause)
}

// freeze sends SIGSTOP to every process holding uid, scanning /proc again
// until a scan finds none it has not stopped yet: a stopped process forks
// no more, so the loop ends once it has caught up with the forks made
// meanwhile. It returns the processes stopped.
func freeze(ctx context.Context, uid int) (map[int]*proc, error) {
	held := map[int]*proc{}
	for {
		if err := ctx.Err(); err != nil {
			return held, err
		}
		pids, err := scan(uid)
		if err != nil {
			return held, err
		}
		fresh := 0
		for _, pid := range pids {
			if _, ok := held[pid]; ok {
				continue
			}
			p, err := open(pid, uid)
			if err != nil {
				return held, err
			}
			if p == nil {
				continue // gone, or no longer the uid's
			}
			if p.signal(unix.SIGSTOP) != nil {
				p.close()
				continue
			}
			held[pid] = p
			fresh++
		}
		if fresh == 0 {
			return held, nil
		}
	}
}

// waitExit waits until every process in held has exited, or ctx ends.
func waitExit(ctx context.Context, held map[int]*proc) error {
	var fds []unix.PollFd
	for _, p := range held {
		if p.fd < 0 {
			// No pidfd: the next scan tells whether it is gone.
			continue
		}
		fds = append(fds, unix.PollFd{Fd: int32(p.fd), Events: unix.POLLIN})
	}
	for len(fds) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := unix.Poll(fds, 50)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfds: %w", err)
		}
		fds = slices.DeleteFunc(fds, func(f unix.PollFd) bool { return f.Revents != 0 })
		for i := range fds {
			fds[i].Revents = 0
		}
	}
	return nil
}

// proc is a process found holding the uid, with a pidfd for it when the
// kernel has pidfd_open (Linux 5.3), else -1.
type proc struct {
	pid, fd int
}

// open returns a handle on pid if it holds uid and is alive (not a
// zombie), or nil if not. The pidfd is opened before the credentials are
// read: if they show uid, the pidfd refers to that process or to one
// that has exited (signals to it then fail harmlessly), never to a
// process that reused the pid later.
func open(pid, uid int) (*proc, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil, nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
		// Before Linux 5.3, or out of file descriptors (thousands of
		// processes): fall back to kill(2), with the small window between
		// reading the credentials and signalling.
		fd = -1
	case err != nil:
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	holds, err := holdsUID(pid, uid)
	if err != nil || !holds {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, nil // gone, or not the uid's
	}
	return &proc{pid: pid, fd: fd}, nil
}

func (p *proc) signal(sig unix.Signal) error {
	if p.fd < 0 {
		return unix.Kill(p.pid, sig)
	}
	return unix.PidfdSendSignal(p.fd, sig, nil, 0)
}

func (p *proc) close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

func closeAll(held map[int]*proc) {
	for _, p := range held {
		p.close()
	}
}

// scan returns the pids of the live processes holding uid.
func scan(uid int) ([]int, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	var pids []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		if holds, _ := holdsUID(pid, uid); holds {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// holdsUID reads /proc/PID/status and reports whether the process is alive
// and has uid as its real, effective, saved or filesystem uid. The status
// file is read, not the owner of /proc/PID, which a process can turn to
// root by making itself non-dumpable. A zombie runs nothing, unless it is
// a thread group leader that exited while its other threads run on (it
// then still counts them in Threads).
func holdsUID(pid, uid int) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false, err
	}
	var dead, match bool
	threads := -1
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "State":
			// "Z (zombie)" or "X (dead)".
			dead = val == "" || val[0] == 'Z' || val[0] == 'X'
		case "Uid":
			for _, f := range strings.Fields(val) {
				if id, err := strconv.Atoi(f); err == nil && id == uid {
					match = true
				}
			}
		case "Threads":
			threads, _ = strconv.Atoi(val)
		}
	}
	if threads < 0 {
		return false, fmt.Errorf("/proc/%d/status: no Threads line", pid)
	}
	return match && (!dead || threads > 1), nil
}
