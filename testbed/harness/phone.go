//go:build linux

package harness

import (
	"context"
	"path/filepath"
)

// Phone is a technician's phone: a jitkey-phone state directory. Every
// command runs as its own process, as each tap in the app would.
type Phone struct {
	bed   *Bed
	Name  string
	State string
	// Netns, if set, runs the phone inside this network namespace.
	Netns *Netns
	// ClockOffset, if not empty, is passed as --clock-offset.
	ClockOffset string
}

// NewPhone returns a phone with its own state directory.
func (b *Bed) NewPhone(name string) *Phone {
	return &Phone{bed: b, Name: name, State: filepath.Join(b.StateDir("phone-"+name), "state")}
}

func (p *Phone) argv(args ...string) []string {
	argv := []string{p.bed.path(PhoneBin), "--state", p.State}
	if p.ClockOffset != "" {
		argv = append(argv, "--clock-offset", p.ClockOffset)
	}
	argv = append(argv, args...)
	if p.Netns != nil {
		argv = p.Netns.Wrap(argv...)
	}
	return argv
}

// Run runs jitkey-phone --state STATE ARGS... (add "--json" to parse).
func (p *Phone) Run(ctx context.Context, args ...string) Result {
	argv := p.argv(args...)
	return p.bed.Run(ctx, "phone-"+p.Name, argv[0], argv[1:]...)
}

// Start starts a long-running phone command (scan without --approve, which
// asks on stdin; listen) as a Proc.
func (p *Phone) Start(label string, args ...string) (*Proc, error) {
	argv := p.argv(args...)
	pr := p.bed.Proc("phone-"+p.Name+"-"+label, argv[0], argv[1:]...)
	pr.Interactive = true
	return pr, pr.Start()
}
