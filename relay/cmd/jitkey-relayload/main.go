// Command jitkey-relayload measures a jitkey relay on loopback.
//
// It starts jitkey-relay as a child process, connects many authenticated
// peers from several loopback source addresses over shared UDP sockets, and
// reports peers held, memory per idle peer, frames forwarded per second at
// approval size, added latency at half that rate, and the relay's CPU. It
// then runs the same message flow through a plain TLS-over-TCP forwarder
// (this binary re-executed with -floor) as the floor for the machine and
// prints the ratios. `make bench-relay` runs it with its defaults.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// options are the load parameters.
type options struct {
	relayBin   string
	compareBin string // a second relay binary measured in the same run
	peers      int
	sources    int
	pairs      int
	payload    int
	duration   time.Duration
	dialers    int
	fillRate   int // connection attempts per second while filling; 0: as fast as the dialers go
	settle     time.Duration
	halfRate   float64 // 0: half the measured maximum
	skipFloor  bool
	floorServe string
	loadStart  string // machine load average when the run started
	profile    string // directory for pprof profiles; empty: none
	relayPprof string // the relay's pprof base URL while it is measured
	floodMode  bool   // measure admission under a flood instead (flood.go)
	flood      floodOptions
	// Idle cost and liveness (relay.go).
	memLimit        string        // GOMEMLIMIT of the relay process; empty: none
	gogc            string        // GOGC of the relay process; empty: the default
	idleCPU         time.Duration // measure the relay's CPU while idle for this long
	clientKeepAlive time.Duration // client.Config.KeepAlive (the app Ping)
	relayKeepAlive  time.Duration // the relay's -keepalive (QUIC PINGs from the relay)
	// CPU pinning (pin_linux.go): the forwarder under test (relay or
	// floor) and this load generator on disjoint CPUs, so that neither
	// takes the other's; empty: not pinned.
	relayCPUs, loadCPUs string
}

func main() {
	var o options
	fs := flag.NewFlagSet("jitkey-relayload", flag.ExitOnError)
	fs.StringVar(&o.relayBin, "relay-bin", "", "jitkey-relay binary (default: bin/jitkey-relay, else built with go build)")
	fs.StringVar(&o.compareBin, "compare-bin", "", "also measure this jitkey-relay `binary` in the same run, after the first and before the floor (profiles go to DIR/compare), and print its ratios to the same floor")
	fs.IntVar(&o.peers, "peers", 20000, "concurrent authenticated peers to hold")
	fs.IntVar(&o.sources, "sources", 25, "loopback source addresses (127.0.1.x), one UDP socket each")
	fs.IntVar(&o.pairs, "pairs", 256, "sender→receiver pairs in the forwarding phases")
	fs.IntVar(&o.payload, "payload", 1024, "payload bytes per frame (approval size)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each forwarding phase")
	fs.IntVar(&o.dialers, "dialers", 64, "concurrent connection attempts while filling")
	fs.IntVar(&o.fillRate, "fill-rate", 0, "at most this many connection attempts per second while filling (0: as fast as the dialers go)")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait before measuring idle memory")
	fs.Float64Var(&o.halfRate, "latency-rate", 0, "frames/s of the latency phase (default: half the measured maximum)")
	fs.BoolVar(&o.skipFloor, "skip-floor", false, "do not measure the TLS-over-TCP floor")
	fs.StringVar(&o.profile, "profile", "", "write pprof profiles to this `dir`: the relay's heap when idle and its CPU at maximum rate, and this program's CPU")
	fs.StringVar(&o.floorServe, "floor", "", "internal: serve the TLS-over-TCP floor forwarder on this address")
	fs.BoolVar(&o.floodMode, "flood", false, "instead: count the legitimate peers that connect while one IPv6 prefix floods the relay with handshakes that never send Hello (run it in a network namespace: see flood.go)")
	fs.StringVar(&o.flood.prefix, "flood-prefix", "2001:db8:7::/64", "with -flood: the flooding IPv6 `prefix`, which must be local")
	fs.IntVar(&o.flood.addrs, "flood-addrs", 256, "with -flood: flood source addresses in the prefix")
	fs.IntVar(&o.flood.conns, "flood-conns", 6000, "with -flood: flood connections kept open at once")
	fs.IntVar(&o.flood.legit, "flood-peers", 1000, "with -flood: legitimate peers, half reconnecting and half new")
	fs.DurationVar(&o.flood.warmup, "flood-warmup", 5*time.Second, "with -flood: flood time before legitimate peers dial")
	fs.DurationVar(&o.flood.deadline, "flood-deadline", 15*time.Second, "with -flood: time each legitimate peer may take to connect")
	fs.DurationVar(&o.flood.retry, "flood-retry", 100*time.Millisecond, "with -flood: wait of a flood connection after a refused attempt")
	fs.StringVar(&o.memLimit, "relay-memlimit", "", "GOMEMLIMIT of the relay process (e.g. 1500MiB; empty: none)")
	fs.StringVar(&o.gogc, "relay-gogc", "", "GOGC of the relay process (e.g. 200 or off; empty: the default, 100)")
	fs.DurationVar(&o.idleCPU, "idle-cpu", 0, "also measure the relay's CPU and packets while the peers are idle for this long")
	fs.DurationVar(&o.clientKeepAlive, "client-keepalive", 0, "peers' keep-alive period: the app Ping after this much silence (default the client's 15s)")
	fs.DurationVar(&o.relayKeepAlive, "relay-keepalive", 0, "relay's QUIC keep-alive period (default 0: off)")
	pin := fs.Bool("pin", false, "split the CPUs: the relay and the floor on the upper half, this load generator on the lower half (same as -relay-cpus N/2-N-1 -load-cpus 0-N/2-1)")
	fs.StringVar(&o.relayCPUs, "relay-cpus", "", "bind the relay and the floor to these CPUs (taskset list, e.g. 1)")
	fs.StringVar(&o.loadCPUs, "load-cpus", "", "bind this load generator to these CPUs (taskset list, e.g. 0)")
	fs.Parse(os.Args[1:])
	if n := runtime.NumCPU(); *pin && n >= 2 && o.relayCPUs == "" && o.loadCPUs == "" {
		o.loadCPUs = cpuRange(0, n/2-1)
		o.relayCPUs = cpuRange(n/2, n-1)
	}
	// The relay admits at most 1,024 connections per source address.
	o.sources = max(o.sources, (o.peers+999)/1000)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := checkCPUs(o.relayCPUs); err != nil {
		log.Error("pin", "relay_cpus", o.relayCPUs, "err", err)
		os.Exit(1)
	}
	if err := pinSelf(o.loadCPUs); err != nil {
		log.Error("pin", "load_cpus", o.loadCPUs, "err", err)
		os.Exit(1)
	}
	if o.floorServe != "" {
		err := serveFloor(context.Background(), o.floorServe, os.Stdout)
		log.Error("floor", "err", err)
		os.Exit(1)
	}
	if o.floodMode {
		o.loadStart = loadavg()
		if err := runFlood(context.Background(), o, log, os.Stdout); err != nil {
			log.Error("flood", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := runBench(context.Background(), o, log, os.Stdout); err != nil {
		log.Error("bench", "err", err)
		os.Exit(1)
	}
}

// result is one system's figures.
type result struct {
	name              string
	peers             int64
	idleBytesRSS      float64
	idleBytesHeap     float64
	drops             int64   // datagrams dropped on the relay's socket until idle (-1: unknown)
	dropsForwarding   int64   // and during the forwarding phases
	idleCPU           float64 // relay CPU while idle, cores
	idlePktsIn        float64 // UDP datagrams/s received on loopback while idle
	goroutinesPerPeer float64
	connectTime       time.Duration
	fps               float64
	cpuAtMax          float64
	latRate           float64
	p50, p99          time.Duration
	cpuAtHalf         float64
	loadCPUAtMax      float64 // load generator's CPU, cores
	loadCPUAtHalf     float64
	gcAtMax, gcAtHalf int64 // forwarder GC cycles in each phase; -1: unknown
	errs              int64
}

// endpoint is one peer of either system, for the flow driver.
type endpoint interface {
	send(ctx context.Context, to int, payload []byte) error
	recv(ctx context.Context) ([]byte, error)
}

// proc is a child process whose CPU and memory we read from /proc.
type proc struct {
	cmd  *exec.Cmd
	line string // first stdout line
}

func startProc(ctx context.Context, name string, args ...string) (*proc, error) {
	return startProcEnv(ctx, nil, "", name, args...)
}

// startProcEnv is startProc with variables added to the environment, bound
// to cpus unless that is empty.
func startProcEnv(ctx context.Context, env []string, cpus, name string, args ...string) (*proc, error) {
	name, args = pinnedCommand(cpus, name, args)
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("read %s start line: %w", name, err)
	}
	go io.Copy(io.Discard, out)
	return &proc{cmd: cmd, line: strings.TrimSpace(line)}, nil
}

func (p *proc) field(k string) string {
	for _, f := range strings.Fields(p.line) {
		if v, ok := strings.CutPrefix(f, k+"="); ok {
			return v
		}
	}
	return ""
}

// cpu returns user+system CPU seconds used so far.
func (p *proc) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// rss returns resident memory in bytes.
func (p *proc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// relayBinary finds or builds jitkey-relay.
func relayBinary(o options, log *slog.Logger) (string, error) {
	if o.relayBin != "" {
		return o.relayBin, nil
	}
	if fi, err := os.Stat("bin/jitkey-relay"); err == nil && !fi.IsDir() {
		return "bin/jitkey-relay", nil
	}
	dir, err := os.MkdirTemp("", "relayload")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "jitkey-relay")
	log.Info("building jitkey-relay", "out", out)
	cmd := exec.Command("go", "build", "-o", out, "./relay/cmd/jitkey-relay")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build jitkey-relay: %w", err)
	}
	return out, nil
}

// cpuRange writes CPUs a..b as a taskset list.
func cpuRange(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

// loadavg returns the 1-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func runBench(ctx context.Context, o options, log *slog.Logger, out io.Writer) error {
	start := time.Now()
	o.loadStart = loadavg()
	_, rcvErrs0 := udpCounters()
	defer func() {
		_, rcvErrs := udpCounters()
		fmt.Fprintf(out, "UDP receive-buffer errors on the machine during the run (/proc/net/snmp RcvbufErrors): %d\n", rcvErrs-rcvErrs0)
	}()
	bin, err := relayBinary(o, log)
	if err != nil {
		return err
	}
	rel, err := benchRelay(ctx, o, bin, log)
	if err != nil {
		return err
	}
	var relB *result
	if o.compareBin != "" {
		ob := o
		if o.profile != "" {
			ob.profile = filepath.Join(o.profile, "compare")
		}
		if relB, err = benchRelay(ctx, ob, o.compareBin, log); err != nil {
			return err
		}
	}
	var floor *result
	if !o.skipFloor {
		if floor, err = benchFloor(ctx, o, rel, log); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nrelay: %s\n", bin)
	printResults(out, o, rel, floor, time.Since(start))
	if relB != nil {
		fmt.Fprintf(out, "\ncompared relay, same run: %s\n", o.compareBin)
		printResults(out, o, relB, floor, time.Since(start))
	}
	return nil
}

// drive runs the forwarding phases over pairs of endpoints: a closed loop
// at maximum rate, then an open loop at the latency rate.
// gcCycles, if not nil, reads the forwarder's completed GC cycles, to count
// those of each phase.
func drive(ctx context.Context, o options, eps []endpoint, p *proc, r *result, forwarded, gcCycles func() int64, log *slog.Logger) {
	pairs := o.pairs
	if 2*pairs > len(eps) {
		pairs = len(eps) / 2
	}
	var errs atomic.Int64
	lat := newLatencies()
	// Receivers run through both phases.
	rctx, rcancel := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	for i := range pairs {
		rwg.Add(1)
		go func(ep endpoint) {
			defer rwg.Done()
			for {
				b, err := ep.recv(rctx)
				if err != nil {
					return
				}
				if len(b) >= 8 {
					sent := int64(uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]))
					if sent != 0 {
						lat.add(time.Duration(time.Now().UnixNano() - sent))
					}
				}
			}
		}(eps[pairs+i])
	}
	gc := func() int64 {
		if gcCycles == nil {
			return -1
		}
		return gcCycles()
	}
	phase := func(rate float64) (fps, cpu, loadCPU float64, gcs int64) {
		pctx, cancel := context.WithTimeout(ctx, o.duration)
		defer cancel()
		f0, c0, l0, t0, g0 := forwarded(), p.cpu(), selfCPU(), time.Now(), gc()
		var wg sync.WaitGroup
		for i := range pairs {
			wg.Add(1)
			go func(ep endpoint, to, i int) {
				defer wg.Done()
				payload := make([]byte, o.payload)
				var tick *time.Ticker
				if rate > 0 {
					// Senders are staggered over the period so that the
					// offered load is even, not a burst of every pair at once.
					period := time.Duration(float64(time.Second) * float64(pairs) / rate)
					select {
					case <-time.After(period * time.Duration(i) / time.Duration(pairs)):
					case <-pctx.Done():
						return
					}
					tick = time.NewTicker(period)
					defer tick.Stop()
				}
				for pctx.Err() == nil {
					if tick != nil {
						select {
						case <-tick.C:
						case <-pctx.Done():
							return
						}
						stamp(payload, time.Now().UnixNano())
					} else {
						stamp(payload, 0)
					}
					if err := ep.send(pctx, to, payload); err != nil && pctx.Err() == nil {
						errs.Add(1)
					}
				}
			}(eps[i], pairs+i, i)
		}
		wg.Wait()
		el := time.Since(t0).Seconds()
		gcs = -1
		if g0 >= 0 {
			gcs = gc() - g0
		}
		return float64(forwarded()-f0) / el, (p.cpu() - c0) / el, (selfCPU() - l0) / el, gcs
	}
	log.Info("forwarding at maximum rate", "system", r.name, "pairs", pairs, "duration", o.duration)
	stopProfile := profileMax(ctx, o, r.name, log)
	r.fps, r.cpuAtMax, r.loadCPUAtMax, r.gcAtMax = phase(0)
	stopProfile()
	r.latRate = o.halfRate
	if r.latRate <= 0 {
		r.latRate = r.fps / 2
	}
	lat.reset()
	log.Info("forwarding at latency rate", "system", r.name, "rate", int(r.latRate))
	var got float64
	got, r.cpuAtHalf, r.loadCPUAtHalf, r.gcAtHalf = phase(r.latRate)
	r.latRate = got
	time.Sleep(200 * time.Millisecond)
	r.p50, r.p99 = lat.quantiles()
	rcancel()
	rwg.Wait()
	r.errs = errs.Load()
}

func stamp(b []byte, ns int64) {
	for i := range 8 {
		b[i] = byte(uint64(ns) >> (56 - 8*i))
	}
}

// latencies collects samples.
type latencies struct {
	mu sync.Mutex
	s  []time.Duration
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.s = append(l.s, d)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.s = l.s[:0]
	l.mu.Unlock()
}

func (l *latencies) quantiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.s) == 0 {
		return 0, 0
	}
	sort.Slice(l.s, func(i, j int) bool { return l.s[i] < l.s[j] })
	return l.s[len(l.s)/2], l.s[len(l.s)*99/100]
}

func printResults(w io.Writer, o options, r, f *result, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\njitkey relay load (%d CPUs, %s, payload %d B, %d pairs, %s per phase, run took %s)\n\n", runtime.NumCPU(), runtime.Version(), o.payload, o.pairs, o.duration, took.Round(time.Second))
	fmt.Fprintln(tw, "metric\tjitkey relay (QUIC)\tfloor (TLS/TCP)\tratio relay/floor\tgoal")
	na := func(f *result, g func(*result) string) string {
		if f == nil {
			return "-"
		}
		return g(f)
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(tw, "peers held\t%d\t-\t-\t>= 20000\n", r.peers)
	fmt.Fprintf(tw, "memory per idle peer (RSS)\t%.1f KiB\t-\t-\t<= 32 KiB\n", r.idleBytesRSS/1024)
	fmt.Fprintf(tw, "memory per idle peer (Go heap+stacks)\t%.1f KiB\t-\t-\t\n", r.idleBytesHeap/1024)
	fmt.Fprintf(tw, "relay goroutines per idle peer\t%.2f\t-\t-\t\n", r.goroutinesPerPeer)
	if o.idleCPU > 0 {
		fmt.Fprintf(tw, "relay CPU while idle (cores, over %s)\t%.3f\t-\t-\t\n", o.idleCPU, r.idleCPU)
		fmt.Fprintf(tw, "UDP datagrams/s on the machine while idle\t%.0f\t-\t-\t\n", r.idlePktsIn)
	}
	fmt.Fprintf(tw, "time to connect all peers\t%s\t-\t-\t\n", r.connectTime.Round(time.Millisecond))
	fmt.Fprintf(tw, "frames forwarded/s (max, %d B)\t%.0f\t%s\t%s\t>= 20000\n", o.payload, r.fps, na(f, func(f *result) string { return fmt.Sprintf("%.0f", f.fps) }), na(f, func(f *result) string { return ratio(r.fps, f.fps) }))
	fmt.Fprintf(tw, "forwarder CPU at max (cores)\t%.2f\t%s\t\t\n", r.cpuAtMax, na(f, func(f *result) string { return fmt.Sprintf("%.2f", f.cpuAtMax) }))
	fmt.Fprintf(tw, "load generator CPU at max (cores)\t%.2f\t%s\t\t\n", r.loadCPUAtMax, na(f, func(f *result) string { return fmt.Sprintf("%.2f", f.loadCPUAtMax) }))
	fmt.Fprintf(tw, "CPU µs per frame at max\t%.1f\t%s\t%s\t\n", 1e6*r.cpuAtMax/r.fps, na(f, func(f *result) string { return fmt.Sprintf("%.1f", 1e6*f.cpuAtMax/f.fps) }), na(f, func(f *result) string { return ratio(r.cpuAtMax/r.fps, f.cpuAtMax/f.fps) }))
	fmt.Fprintf(tw, "latency phase rate (frames/s)\t%.0f\t%s\t\t\n", r.latRate, na(f, func(f *result) string { return fmt.Sprintf("%.0f", f.latRate) }))
	fmt.Fprintf(tw, "one-way latency p50\t%s\t%s\t%s\t\n", r.p50.Round(time.Microsecond), na(f, func(f *result) string { return f.p50.Round(time.Microsecond).String() }), na(f, func(f *result) string { return ratio(float64(r.p50), float64(f.p50)) }))
	fmt.Fprintf(tw, "one-way latency p99\t%s\t%s\t%s\t<= 2ms\n", r.p99.Round(time.Microsecond), na(f, func(f *result) string { return f.p99.Round(time.Microsecond).String() }), na(f, func(f *result) string { return ratio(float64(r.p99), float64(f.p99)) }))
	fmt.Fprintf(tw, "forwarder CPU at latency rate (cores)\t%.2f\t%s\t\t\n", r.cpuAtHalf, na(f, func(f *result) string { return fmt.Sprintf("%.2f", f.cpuAtHalf) }))
	fmt.Fprintf(tw, "load generator CPU at latency rate (cores)\t%.2f\t%s\t\t\n", r.loadCPUAtHalf, na(f, func(f *result) string { return fmt.Sprintf("%.2f", f.loadCPUAtHalf) }))
	gcs := func(n int64) string {
		if n < 0 {
			return "-"
		}
		return strconv.FormatInt(n, 10)
	}
	fmt.Fprintf(tw, "forwarder GC cycles at max, at latency rate\t%s, %s\t%s\t\t\n", gcs(r.gcAtMax), gcs(r.gcAtHalf), na(f, func(f *result) string { return gcs(f.gcAtMax) + ", " + gcs(f.gcAtHalf) }))
	fmt.Fprintf(tw, "send errors\t%d\t%s\t\t\n", r.errs, na(f, func(f *result) string { return strconv.FormatInt(f.errs, 10) }))
	fmt.Fprintf(tw, "datagrams dropped on the relay's socket: connecting, forwarding\t%d, %d\t-\t\t\n", r.drops, r.dropsForwarding)
	tw.Flush()
	fmt.Fprintf(w, "\nmachine load average (1 min) at start %s, at end %s: a value above %d means other processes competed for the CPUs.\n", o.loadStart, loadavg(), runtime.NumCPU())
	fmt.Fprintln(w, "latency is sender→forwarder→receiver one-way time on one clock, including both client stacks;")
	if o.relayCPUs != "" || o.loadCPUs != "" {
		fmt.Fprintf(w, "the relay's added latency is at most that. Forwarder on CPUs %q, load generator on CPUs %q.\n", o.relayCPUs, o.loadCPUs)
	} else {
		fmt.Fprintln(w, "the relay's added latency is at most that. Load generator and forwarder share the machine's CPUs.")
	}
}

// udpInDatagrams returns the machine's UDP InDatagrams counter
// (/proc/net/snmp), or 0 where there is none.
func udpInDatagrams() int64 {
	n, _ := udpCounters()
	return n
}

// udpCounters returns the machine's UDP InDatagrams and RcvbufErrors.
func udpCounters() (in, rcvbufErrors int64) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i := 1; i < len(f) && i < len(names); i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			switch names[i] {
			case "InDatagrams":
				in = v
			case "RcvbufErrors":
				rcvbufErrors = v
			}
		}
		return in, rcvbufErrors
	}
	return 0, 0
}
