package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"
)

// fillMonitor logs, while peers connect, the counters that tell what
// holds the filling back: the relay's peers and accepted connections,
// handshake and authentication failures, Retries and refusals, datagrams
// dropped on its socket and on the machine's (RcvbufErrors since the
// filling began), the CPU of the relay and of this program over
// the interval, the relay's RSS and the machine's load. With -profile, the
// first interval in which fewer than 1 % of the missing peers connected
// (a stall) is profiled: the relay's CPU and this program's, 5 s each, at
// the same time (relay-stall-cpu.pb.gz, load-stall-cpu.pb.gz).
func fillMonitor(ctx context.Context, o options, p *proc, metrics string, connected *atomic.Int64, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		const every = 5 * time.Second
		tick := time.NewTicker(every)
		defer tick.Stop()
		c0, l0, t0, n0 := p.cpu(), selfCPU(), time.Now(), connected.Load()
		_, rb0 := udpCounters()
		profiled := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			c, l, t, n := p.cpu(), selfCPU(), time.Now(), connected.Load()
			_, rb := udpCounters()
			el := t.Sub(t0).Seconds()
			log.Info("filling",
				"connected", n, "relay_peers", scrape(metrics, "jitkey_relay_peers"),
				"accepted", scrape(metrics, "jitkey_relay_connections_accepted_total"),
				"pending", scrape(metrics, "jitkey_relay_connections_pending"),
				"handshake_failures", scrape(metrics, "jitkey_relay_handshake_failures_total"),
				"auth_failures", scrape(metrics, "jitkey_relay_auth_failures_total"),
				"retries", reasons(metrics, "jitkey_relay_retries_total"),
				"refused", reasons(metrics, "jitkey_relay_connections_refused_total"),
				"socket_drops", scrape(metrics, "jitkey_relay_udp_receive_drops_total"),
				// The machine's, so the load generator's sockets too.
				"rcvbuf_errors", rb-rb0,
				"relay_cores", round2((c-c0)/el), "load_cores", round2((l-l0)/el),
				"relay_rss_mib", p.rss()>>20, "loadavg", loadavg())
			stalled := n < int64(o.peers) && float64(n-n0)/el < 2
			c0, l0, t0, n0 = c, l, t, n
			if stalled && !profiled && o.profile != "" && o.relayPprof != "" {
				profiled = true
				log.Info("filling stalled: profiling the relay and this program for 5 s")
				pairProfiles(ctx, o, "stall", 5*time.Second, log)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// pairProfiles writes CPU profiles of the relay and of this program,
// taken at the same time for d: relay-WHAT-cpu.pb.gz, load-WHAT-cpu.pb.gz.
func pairProfiles(ctx context.Context, o options, what string, d time.Duration, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fetchProfile(ctx, o, fmt.Sprintf("profile?seconds=%d", max(1, int(d/time.Second))), "relay-"+what+"-cpu.pb.gz", log)
	}()
	f, err := os.Create(filepath.Join(o.profile, "load-"+what+"-cpu.pb.gz"))
	if err == nil {
		if err = pprof.StartCPUProfile(f); err == nil {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			pprof.StopCPUProfile()
		}
		f.Close()
	}
	if err != nil {
		log.Warn("load generator profile", "err", err)
	}
	<-done
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// reasons returns a labelled counter's nonzero series as
// reason=value,...; "0" if there are none.
func reasons(addr, name string) string {
	var out []string
	for _, l := range metricLines(addr) {
		series, v, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(series, name+"{") || strings.TrimSpace(v) == "0" {
			continue
		}
		r := strings.TrimSuffix(strings.TrimPrefix(series, name+"{reason=\""), "\"}")
		out = append(out, r+"="+strings.TrimSpace(v))
	}
	if out == nil {
		return "0"
	}
	return strings.Join(out, ",")
}
