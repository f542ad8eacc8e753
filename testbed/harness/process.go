//go:build linux

package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a long-running binary (relay, console serve, agent run, phone
// listen, login surface). Its stdout and stderr are read line by line into
// the Bed's log (prefixed with its name) and kept, so WaitFor can look for
// readiness lines. A Proc can be stopped, killed and started again with
// the same arguments and state.
type Proc struct {
	bed  *Bed
	Name string
	// Argv is the command line: Argv[0] is a path. Start uses it as is;
	// scenarios may change it between Stop and Start.
	Argv []string
	// Env is added to the environment of the process.
	Env []string
	// Interactive gives the process a stdin pipe for Send.
	Interactive bool
	// Unshare is added to the process's clone flags (Unshareflags):
	// CLONE_NEWNS for the account sandbox's private mount namespace (see
	// sandbox.Sandbox.Command).
	Unshare uintptr

	mu      sync.Mutex
	cond    *sync.Cond
	lines   []string // every line since the Proc was created
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	running bool
	exit    error // of the last run
	done    chan struct{}
	starts  int
}

// Start starts the process. It fails if it is already running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return fmt.Errorf("harness: %s already running", p.Name)
	}
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Unshareflags: p.Unshare}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("harness: start %s: %w", p.Name, err)
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("harness: start %s: %w", p.Name, err)
	}
	if p.Interactive {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return fmt.Errorf("harness: start %s: %w", p.Name, err)
		}
	}
	p.starts++
	p.bed.logf("%s: start #%d: %s", p.Name, p.starts, strings.Join(p.Argv, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("harness: start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.running = true
	p.exit = nil
	done := make(chan struct{})
	p.done = done
	var wg sync.WaitGroup
	wg.Add(2)
	go p.read(out, "", &wg)
	go p.read(errp, "!", &wg)
	go func() {
		wg.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.running = false
		p.exit = err
		p.mu.Unlock()
		p.bed.logf("%s: exited: %v", p.Name, exitText(err))
		p.cond.Broadcast()
		close(done)
	}()
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func (p *Proc) read(r io.Reader, mark string, wg *sync.WaitGroup) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	qr := false
	for sc.Scan() {
		line := sc.Text()
		if isTerminalQR(line) {
			if !qr {
				p.bed.line(p.Name+mark, "(a QR code drawn on the terminal)")
			}
			qr = true
			continue
		}
		qr = false
		p.bed.line(p.Name+mark, line)
		p.mu.Lock()
		p.lines = append(p.lines, line)
		p.mu.Unlock()
		p.cond.Broadcast()
	}
}

// Send writes text to the process's stdin (Interactive processes only).
func (p *Proc) Send(text string) error {
	p.mu.Lock()
	w := p.stdin
	p.mu.Unlock()
	if w == nil {
		return fmt.Errorf("harness: %s has no stdin", p.Name)
	}
	p.bed.logf("%s: stdin <- %q", p.Name, text)
	_, err := io.WriteString(w, text)
	return err
}

// Lines returns a copy of every output line so far (stdout and stderr
// interleaved as they arrived), over all runs.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns Lines joined with newlines.
func (p *Proc) Output() string { return strings.Join(p.Lines(), "\n") }

// Mark returns the number of lines so far; pass it to WaitFor to look
// only at what comes after.
func (p *Proc) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// ErrExited is returned by WaitFor when the process exits before the line
// appears.
var ErrExited = errors.New("harness: process exited")

// WaitFor waits until a line at index >= from matches re and returns its
// submatches. It fails when ctx ends or the process exits first.
func (p *Proc) WaitFor(ctx context.Context, from int, re *regexp.Regexp) ([]string, error) {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.cond.Broadcast()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	i := from
	for {
		for ; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				return m, nil
			}
		}
		if !p.running {
			return nil, fmt.Errorf("%w: %s (%v) before a line matching %q", ErrExited, p.Name, exitText(p.exit), re)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("harness: %s: no line matching %q: %w", p.Name, re, ctx.Err())
		}
		p.cond.Wait()
	}
}

// Running reports whether the process is running.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// Signal sends sig to the process (not its children).
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return fmt.Errorf("harness: %s not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill kills the process with SIGKILL (kill -9) and waits for it to go.
func (p *Proc) Kill() error {
	p.bed.logf("%s: kill -9", p.Name)
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	err := p.Wait(context.Background())
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return err
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns the process's exit error of a clean stop (nil for
// status 0), or an error saying it had to be killed. Stopping a process
// that is not running returns nil.
func (p *Proc) Stop(grace time.Duration) error {
	p.mu.Lock()
	running, done := p.running, p.done
	p.mu.Unlock()
	if !running {
		return nil
	}
	p.bed.logf("%s: stop (SIGTERM)", p.Name)
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.exit
	case <-time.After(grace):
	}
	p.bed.logf("%s: did not stop within %v, kill -9", p.Name, grace)
	_ = p.Signal(syscall.SIGKILL)
	<-done
	return fmt.Errorf("harness: %s did not stop within %v", p.Name, grace)
}

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// Pid returns the process id of the current run, or 0.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return 0
	}
	return p.cmd.Process.Pid
}

const sigterm = syscall.SIGTERM

// isTerminalQR reports whether line is a row of a QR code drawn with
// block characters, which the log leaves out.
func isTerminalQR(line string) bool {
	return strings.ContainsAny(line, "█▀▄") && strings.Trim(line, "█▀▄ ") == ""
}
