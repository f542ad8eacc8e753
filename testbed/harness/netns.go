//go:build linux

package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Netns is a network namespace joined to this machine's root namespace by
// a veth pair with addresses from a private /30 (HostAddr on the root
// side, NSAddr inside). Addresses in 127.0.0.0/8 cannot be routed between
// namespaces, so the testbed uses 10.214.x.y/30: both ends of the link are
// on this machine and nothing leaves it. A process started with Wrap runs
// inside the namespace; Cut and Restore take the link down and up.
//
// The namespace, its veth pair and its subnet are machine-wide, and
// several testbed runs may share the machine (engineers' checkouts, CI):
// each Netns holds a slot, numbered 0..255, under an exclusive lock
// (flock on a file in /run/lock) for as long as it exists, and its names
// and subnet carry the slot number. A run never touches another live
// run's namespace; the lock of a crashed run ends with its process, and
// the next run that takes the slot removes its leftovers.
type Netns struct {
	Name     string
	HostDev  string
	NSDev    string
	HostAddr string
	NSAddr   string
	Slot     int

	lock *os.File // holds the slot; closed by Close
}

// netnsLockDir holds the slot locks (one file per slot).
const netnsLockDir = "/run/lock"

// NewNetns creates a namespace named name-SLOT with a veth pair on subnet
// 10.214.SLOT.0/30, taking the first slot from idx on (wrapping after
// 255) that no other Netns of any process on this machine holds. Close
// removes it and frees the slot; call Close even if NewNetns failed half
// way (it removes what exists).
func NewNetns(ctx context.Context, name string, idx int) (*Netns, error) {
	n := &Netns{Slot: -1}
	for i := range 256 {
		slot := (idx + i) % 256
		f, err := lockSlot(slot)
		if err != nil {
			return n, err
		}
		if f != nil {
			n.Slot, n.lock = slot, f
			break
		}
	}
	if n.lock == nil {
		return n, errors.New("harness: netns: every slot is held by another run")
	}
	n.Name = fmt.Sprintf("%s-%d", name, n.Slot)
	n.HostDev = fmt.Sprintf("jkvh%d", n.Slot)
	n.NSDev = fmt.Sprintf("jkvn%d", n.Slot)
	n.HostAddr = fmt.Sprintf("10.214.%d.1", n.Slot)
	n.NSAddr = fmt.Sprintf("10.214.%d.2", n.Slot)
	n.removeLinks() // leftovers of a crashed run that held this slot
	steps := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", n.HostDev, "type", "veth", "peer", "name", n.NSDev},
		{"link", "set", n.NSDev, "netns", n.Name},
		{"addr", "add", n.HostAddr + "/30", "dev", n.HostDev},
		{"link", "set", n.HostDev, "up"},
		{"-n", n.Name, "addr", "add", n.NSAddr + "/30", "dev", n.NSDev},
		{"-n", n.Name, "link", "set", n.NSDev, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return n, err
		}
	}
	return n, nil
}

// lockSlot takes the lock of slot without waiting: the open lock file,
// or nil if another Netns (of this or another process) holds the slot.
// The file is opened close-on-exec, so the agents and phones started in
// the namespace do not inherit the lock.
func lockSlot(slot int) (*os.File, error) {
	if err := os.MkdirAll(netnsLockDir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: netns lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(netnsLockDir, fmt.Sprintf("jitkey-testbed-netns-%d.lock", slot)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("harness: netns lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("harness: netns lock slot %d: %w", slot, err)
	}
	return f, nil
}

// Wrap returns argv prefixed to run inside the namespace.
func (n *Netns) Wrap(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", n.Name}, argv...)
}

// Cut takes the link down: the namespace loses its only route out.
func (n *Netns) Cut(ctx context.Context) error { return ip(ctx, "link", "set", n.HostDev, "down") }

// Restore brings the link back up.
func (n *Netns) Restore(ctx context.Context) error {
	if err := ip(ctx, "link", "set", n.HostDev, "up"); err != nil {
		return err
	}
	return ip(ctx, "-n", n.Name, "link", "set", n.NSDev, "up")
}

// Close deletes the veth pair and the namespace, ignoring what is
// already gone, and frees the slot.
func (n *Netns) Close() error {
	if n.lock == nil {
		return nil // no slot taken: nothing of this Netns exists
	}
	err := n.removeLinks()
	n.lock.Close()
	n.lock = nil
	return err
}

// removeLinks deletes the veth pair and the namespace of n's slot,
// ignoring what is already gone. The slot lock must be held.
func (n *Netns) removeLinks() error {
	_ = ip(context.Background(), "link", "del", n.HostDev)
	if err := ip(context.Background(), "netns", "del", n.Name); err != nil && !strings.Contains(err.Error(), "No such file") {
		return err
	}
	return nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("harness: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
