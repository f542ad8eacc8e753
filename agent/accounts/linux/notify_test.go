//go:build linux

package linux

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPrintable: no escape sequence of a notice reaches a terminal.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"ends at 15:04\nsave":     "ends at 15:04\nsave",
		"\x1b[2Jcleared\x07\r":    "[2Jcleared",
		"über\u202eevil\u0000end": "überevilend",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAnnounce: the end-user notice reaches a real pseudo-terminal a
// regular user owns, without control characters, and not one root owns.
func TestAnnounce(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root (CI runs as root): the test gives terminals to other uids")
	}
	b, err := New(Config{Runner: ExecRunner{}})
	if err != nil {
		t.Fatal(err)
	}
	user, _ := openPTY(t, 61234)
	root, rootSlave := openPTY(t, 0)
	if err := b.Announce(t.Context(), "jitkey: technician nik started a session\x1b[2J"); err != nil {
		t.Fatal(err)
	}
	got := readUntil(t, user, "[2J")
	if !strings.Contains(got, "jitkey: technician nik started a session[2J") || strings.Contains(got, "\x1b") {
		t.Fatalf("user's terminal got %q", got)
	}
	// Writes to one terminal arrive in order: whatever Announce wrote to
	// root's would come before this marker.
	if _, err := unix.Write(rootSlave, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	if got := readUntil(t, root, "marker"); got != "marker" {
		t.Fatalf("root's terminal got %q", got)
	}
}

// openPTY opens a pseudo-terminal whose terminal side uid owns and holds
// that side open; it returns both sides (the master non-blocking).
func openPTY(t *testing.T, uid int) (master, slave int) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	if err := os.Chown(name, uid, -1); err != nil {
		t.Fatal(err)
	}
	sl, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sl) })
	return fd, sl
}

// readUntil reads the master side fd until want arrived (the terminal
// delivers asynchronously), polling for at most 5 s.
func readUntil(t *testing.T, fd int, want string) string {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(out), want) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 5000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("terminal: %v, got %q, want %q", err, out, want)
		}
		r, err := unix.Read(fd, buf)
		if err != nil && err != unix.EAGAIN {
			t.Fatalf("read: %v", err)
		}
		out = append(out, buf[:max(r, 0)]...)
	}
	return string(out)
}
