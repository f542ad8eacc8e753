//go:build linux

package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config configures a Bed.
type Config struct {
	// Dir is the root for every state directory; it must exist.
	Dir string
	// Bin is the directory holding the binaries (see Binaries).
	Bin string
	// Log, if set, receives every captured line as it arrives, in
	// addition to Dir/testbed.log.
	Log io.Writer
}

// Bed is one testbed: a root directory, the binaries and the processes
// started from it. Close stops every process still running.
type Bed struct {
	Dir string
	Bin string

	logMu   sync.Mutex
	logFile *os.File
	extra   io.Writer
	start   time.Time

	mu    sync.Mutex
	procs []*Proc
}

// New returns a Bed writing its log to cfg.Dir/testbed.log.
func New(cfg Config) (*Bed, error) {
	if cfg.Dir == "" || cfg.Bin == "" {
		return nil, errors.New("harness: config needs Dir and Bin")
	}
	f, err := os.OpenFile(filepath.Join(cfg.Dir, "testbed.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("harness: open log: %w", err)
	}
	return &Bed{Dir: cfg.Dir, Bin: cfg.Bin, logFile: f, extra: cfg.Log, start: time.Now()}, nil
}

// LogPath returns the path of the combined log.
func (b *Bed) LogPath() string { return b.logFile.Name() }

// StateDir returns (and creates, mode 0700) Dir/name.
func (b *Bed) StateDir(name string) string {
	d := filepath.Join(b.Dir, name)
	_ = os.MkdirAll(d, 0o700)
	return d
}

// line writes one captured output line to the log.
func (b *Bed) line(name, text string) {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	s := fmt.Sprintf("%7.3fs %-14s| %s\n", time.Since(b.start).Seconds(), name, text)
	b.logFile.WriteString(s)
	if b.extra != nil {
		io.WriteString(b.extra, s)
	}
}

// logf writes a harness note to the log.
func (b *Bed) logf(format string, a ...any) { b.line("harness", fmt.Sprintf(format, a...)) }

// Logf writes a scenario note to the log (so the log reads as a story).
func (b *Bed) Logf(format string, a ...any) { b.line("scenario", fmt.Sprintf(format, a...)) }

// Proc creates (but does not start) a long-running process named name,
// running binary (a name in Bin, or an absolute path) with args.
func (b *Bed) Proc(name, binary string, args ...string) *Proc {
	p := &Proc{bed: b, Name: name, Argv: append([]string{b.path(binary)}, args...)}
	p.cond = sync.NewCond(&p.mu)
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p
}

func (b *Bed) path(binary string) string {
	if filepath.IsAbs(binary) || strings.Contains(binary, "/") {
		return binary
	}
	if p := filepath.Join(b.Bin, binary); fileExists(p) {
		return p
	}
	return binary // from PATH (ip, zbarimg, ...)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Result is the outcome of a command run to completion.
type Result struct {
	Argv   []string
	Stdout string
	Stderr string
	// Code is the exit status, or -1 if the command did not exit normally.
	Code int
	// Err is set when the command could not run or was killed.
	Err error
}

// OK reports whether the command exited with status 0.
func (r Result) OK() bool { return r.Err == nil && r.Code == 0 }

// JSON decodes the last JSON object line of stdout into v.
func (r Result) JSON(v any) error {
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "{") || strings.HasPrefix(l, "[") {
			if err := json.Unmarshal([]byte(l), v); err != nil {
				return fmt.Errorf("harness: decode json of %s: %w", r.name(), err)
			}
			return nil
		}
	}
	// Maybe pretty-printed over several lines.
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		return fmt.Errorf("harness: no json in output of %s: %q", r.name(), r.Stdout)
	}
	return nil
}

// JSONLines decodes every JSON object line of stdout.
func (r Result) JSONLines() ([]map[string]any, error) {
	var out []map[string]any
	for _, l := range strings.Split(r.Stdout, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			return nil, fmt.Errorf("harness: decode json of %s: %w", r.name(), err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (r Result) name() string {
	if len(r.Argv) == 0 {
		return "command"
	}
	return filepath.Base(r.Argv[0]) + " " + strings.Join(r.Argv[1:], " ")
}

// String describes the result for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("%s: exit %d (err %v)\nstdout:\n%s\nstderr:\n%s", r.name(), r.Code, r.Err, r.Stdout, r.Stderr)
}

// Run runs binary args to completion (bounded by ctx), logging its output
// under name, and returns what it printed and its exit status.
func (b *Bed) Run(ctx context.Context, name, binary string, args ...string) Result {
	return b.RunIn(ctx, nil, name, binary, args...)
}

// RunIn is Run with stdin.
func (b *Bed) RunIn(ctx context.Context, stdin []byte, name, binary string, args ...string) Result {
	argv := append([]string{b.path(binary)}, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	b.logf("%s: run: %s", name, strings.Join(argv, " "))
	err := cmd.Run()
	res := Result{Argv: argv, Stdout: stdout.String(), Stderr: stderr.String(), Code: -1}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.Exited() {
		res.Code = ee.ExitCode()
	} else if err != nil {
		res.Err = err
	} else {
		res.Code = 0
	}
	for _, l := range strings.Split(strings.TrimRight(res.Stdout, "\n"), "\n") {
		if l != "" {
			b.line(name, l)
		}
	}
	for _, l := range strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n") {
		if l != "" {
			b.line(name+"!", l)
		}
	}
	b.logf("%s: exit %d", name, res.Code)
	return res
}

// Close stops every process still running (SIGTERM, then SIGKILL after
// a few seconds) and closes the log.
func (b *Bed) Close() error {
	b.mu.Lock()
	procs := append([]*Proc(nil), b.procs...)
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { _ = p.Stop(5 * time.Second) })
	}
	wg.Wait()
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return b.logFile.Close()
}

// Tail returns the last n lines of the combined log.
func (b *Bed) Tail(n int) string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	data, err := os.ReadFile(b.logFile.Name())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
