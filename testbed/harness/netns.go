//go:build linux

package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Netns is a network namespace joined to this machine's root namespace by
// a veth pair with addresses from a private /30 (HostAddr on the root
// side, NSAddr inside). Addresses in 127.0.0.0/8 cannot be routed between
// namespaces, so the testbed uses 10.213.x.y/30: both ends of the link are
// on this machine and nothing leaves it. A process started with Wrap runs
// inside the namespace; Cut and Restore take the link down and up.
type Netns struct {
	Name     string
	HostDev  string
	NSDev    string
	HostAddr string
	NSAddr   string
}

// NewNetns creates namespace name with a veth pair on subnet 10.213.idx.0/30
// (idx 0..255). Close removes it; call Close even if NewNetns failed half
// way (it removes what exists).
func NewNetns(ctx context.Context, name string, idx int) (*Netns, error) {
	n := &Netns{
		Name:     name,
		HostDev:  fmt.Sprintf("jkh%d", idx),
		NSDev:    fmt.Sprintf("jkn%d", idx),
		HostAddr: fmt.Sprintf("10.213.%d.1", idx),
		NSAddr:   fmt.Sprintf("10.213.%d.2", idx),
	}
	n.Close() // leftovers of a crashed run
	steps := [][]string{
		{"netns", "add", name},
		{"link", "add", n.HostDev, "type", "veth", "peer", "name", n.NSDev},
		{"link", "set", n.NSDev, "netns", name},
		{"addr", "add", n.HostAddr + "/30", "dev", n.HostDev},
		{"link", "set", n.HostDev, "up"},
		{"-n", name, "addr", "add", n.NSAddr + "/30", "dev", n.NSDev},
		{"-n", name, "link", "set", n.NSDev, "up"},
		{"-n", name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return n, err
		}
	}
	return n, nil
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
// already gone.
func (n *Netns) Close() error {
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
