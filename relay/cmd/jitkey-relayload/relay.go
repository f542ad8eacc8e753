package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// metricLines fetches a Prometheus text endpoint, one line per element,
// or nil if it cannot.
func metricLines(addr string) []string {
	// Bounded: a starved relay answers slowly, and the filling log
	// must go on.
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// scrape reads one metric from a Prometheus text endpoint, or returns -1.
func scrape(addr, name string) int64 {
	for _, l := range metricLines(addr) {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return -1
}

// scrapeSum adds up every series of a labelled metric, or returns -1.
func scrapeSum(addr, name string) int64 {
	lines := metricLines(addr)
	if lines == nil {
		return -1
	}
	var sum int64
	for _, l := range lines {
		if series, v, ok := strings.Cut(l, " "); ok && (series == name || strings.HasPrefix(series, name+"{")) {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			sum += n
		}
	}
	return sum
}

type relayEndpoint struct {
	c     *client.Client
	addrs []protocol.PeerAddr
}

func (e *relayEndpoint) send(ctx context.Context, to int, p []byte) error {
	return e.c.Send(ctx, e.addrs[to], p)
}

func (e *relayEndpoint) recv(ctx context.Context) ([]byte, error) {
	m, err := e.c.Recv(ctx)
	return m.Payload, err
}

// benchRelay measures jitkey-relay.
func benchRelay(ctx context.Context, o options, bin string, log *slog.Logger) (*result, error) {
	args := []string{"-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-log-level", "warn",
		// Raised for the bench: one machine opens every connection at once
		// and a few peers send far more than a technician's phone would.
		"-accept-rate", "100000", "-accept-burst", "100000",
		"-send-rate", "1000000", "-send-burst", "1000000",
		"-handshake-timeout", "30s", "-idle-timeout", "120s",
		// The default -max-conns is 50,000: with 50,000 peers connected,
		// a peer that reconnects would be refused until the relay ended
		// its previous connection (up to the idle timeout). A fifth more
		// than the peers leaves room for reconnections.
		"-max-conns", strconv.Itoa(max(50000, o.peers+o.peers/5))}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return nil, err
		}
		args = append(args, "-pprof")
	}
	if o.relayKeepAlive > 0 {
		args = append(args, "-keepalive", o.relayKeepAlive.String())
	}
	var env []string
	if o.memLimit != "" {
		env = append(env, "GOMEMLIMIT="+o.memLimit)
	}
	if o.gogc != "" {
		env = append(env, "GOGC="+o.gogc)
	}
	p, err := startProcEnv(ctx, env, o.relayCPUs, bin, args...)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	addr, metrics := p.field("addr"), p.field("metrics")
	if o.profile != "" {
		o.relayPprof = "http://" + metrics + "/debug/pprof/"
	}
	pinb, err := hex.DecodeString(p.field("pin"))
	if err != nil || len(pinb) != 32 {
		return nil, fmt.Errorf("relay printed no pin: %q", p.line)
	}
	pin := [32]byte(pinb)
	time.Sleep(500 * time.Millisecond)
	rss0 := p.rss()
	gor0 := scrape(metrics, "go_goroutines")
	heapOnly0, stack0 := scrape(metrics, "go_memstats_heap_inuse_bytes"), scrape(metrics, "go_memstats_stack_inuse_bytes")

	trs := make([]*quic.Transport, o.sources)
	for i := range trs {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))})
		if err != nil {
			return nil, fmt.Errorf("bind source %d: %w", i, err)
		}
		trs[i] = &quic.Transport{Conn: pc}
		defer trs[i].Close()
	}
	clients := make([]*client.Client, o.peers)
	addrs := make([]protocol.PeerAddr, o.peers)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var runWG sync.WaitGroup
	defer func() {
		var wg sync.WaitGroup
		for i := 0; i < len(clients); i += 500 {
			wg.Add(1)
			go func(cs []*client.Client) {
				defer wg.Done()
				for _, c := range cs {
					if c != nil {
						c.Close()
					}
				}
			}(clients[i:min(i+500, len(clients))])
		}
		wg.Wait()
		stopRun()
		runWG.Wait()
	}()
	for i := range clients {
		_, k, _ := ed25519.GenerateKey(nil)
		c, err := client.New(client.Config{
			Identity: k, Home: addr, Pins: [][32]byte{pin}, Transport: trs[i%len(trs)],
			HandshakeTimeout: 30 * time.Second, MinBackoff: time.Second, MaxBackoff: 10 * time.Second,
			KeepAlive: o.clientKeepAlive,
		})
		if err != nil {
			return nil, err
		}
		clients[i], addrs[i] = c, c.Addr()
	}
	log.Info("connecting peers", "peers", o.peers, "sources", o.sources, "dialers", o.dialers)
	t0 := time.Now()
	var next, failed, connected atomic.Int64
	stopMonitor := fillMonitor(ctx, o, p, metrics, &connected, log)
	var pace <-chan time.Time
	if o.fillRate > 0 {
		t := time.NewTicker(time.Second / time.Duration(o.fillRate))
		defer t.Stop()
		pace = t.C
	}
	var wg sync.WaitGroup
	for range o.dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if pace != nil {
					<-pace
				}
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				c := clients[i]
				runWG.Add(1)
				go func() { defer runWG.Done(); c.Run(runCtx) }()
				wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				if c.WaitConnected(wctx) != nil {
					failed.Add(1)
				} else {
					connected.Add(1)
				}
				cancel()
				if i%5000 == 4999 {
					log.Info("peers connected", "n", i+1, "elapsed", time.Since(t0).Round(time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	stopMonitor()
	log.Info("peers connected", "n", o.peers, "failed", failed.Load(), "elapsed", time.Since(t0).Round(time.Millisecond))
	// The relay's admission limits other than the accept rate are the
	// defaults: filling must need neither refusals nor Retries.
	refused, retries := scrapeSum(metrics, "jitkey_relay_connections_refused_total"), scrapeSum(metrics, "jitkey_relay_retries_total")
	if refused != 0 || retries != 0 {
		log.Warn("relay refused connections or asked for Retries while filling", "refused", refused, "retries", retries)
	} else {
		log.Info("admission", "refused", refused, "retries", retries)
	}
	time.Sleep(o.settle)
	r := &result{name: "relay", peers: scrape(metrics, "jitkey_relay_peers"), connectTime: time.Since(t0) - o.settle}
	// perPeerKiB is how much a metric grew since before filling, per peer.
	perPeerKiB := func(metric string, before int64) float64 {
		return float64(scrape(metrics, metric)-before) / float64(r.peers) / 1024
	}
	logSplit := func(msg string) {
		log.Info(msg, "heap_inuse_per_peer_kib", perPeerKiB("go_memstats_heap_inuse_bytes", heapOnly0),
			"stack_inuse_per_peer_kib", perPeerKiB("go_memstats_stack_inuse_bytes", stack0),
			"rss_per_peer_kib", float64(p.rss()-rss0)/float64(r.peers)/1024)
	}
	if r.peers > 0 {
		r.idleBytesRSS = float64(p.rss()-rss0) / float64(r.peers)
		r.goroutinesPerPeer = float64(scrape(metrics, "go_goroutines")-gor0) / float64(r.peers)
		r.idleBytesHeap = 1024 * (perPeerKiB("go_memstats_heap_inuse_bytes", heapOnly0) + perPeerKiB("go_memstats_stack_inuse_bytes", stack0))
		logSplit("idle split")
	}
	fetchProfile(ctx, o, "heap?gc=1", "relay-idle-heap.pb.gz", log)
	if r.peers > 0 && o.profile != "" && o.relayPprof != "" {
		// The heap profile forced a collection, which also frees the
		// stacks of exited goroutines (goroutines that run only while
		// they have work leave theirs behind until then).
		logSplit("idle split after GC")
	}
	fetchProfile(ctx, o, "goroutine", "relay-idle-goroutine.pb.gz", log)
	if o.idleCPU > 0 {
		log.Info("measuring idle cost", "duration", o.idleCPU)
		c0, u0, t0 := p.cpu(), udpInDatagrams(), time.Now()
		if o.profile != "" && o.relayPprof != "" {
			pairProfiles(ctx, o, "idle", o.idleCPU, log)
		} else {
			time.Sleep(o.idleCPU)
		}
		el := time.Since(t0).Seconds()
		r.idleCPU = (p.cpu() - c0) / el
		r.idlePktsIn = float64(udpInDatagrams()-u0) / el
		log.Info("idle cost", "relay_cores", r.idleCPU, "udp_datagrams_per_s", int(r.idlePktsIn))
	}
	log.Info("idle", "peers", r.peers, "rss_per_peer_kib", int(r.idleBytesRSS/1024), "heap_per_peer_kib", int(r.idleBytesHeap/1024))
	eps := make([]endpoint, 2*o.pairs)
	for i := range eps {
		eps[i] = &relayEndpoint{c: clients[i], addrs: addrs}
	}
	r.drops = scrape(metrics, "jitkey_relay_udp_receive_drops_total")
	drive(ctx, o, eps, p, r,
		func() int64 { return scrape(metrics, "jitkey_relay_frames_forwarded_total") },
		func() int64 { return scrape(metrics, "go_gc_cycles_total") }, log)
	r.dropsForwarding = scrape(metrics, "jitkey_relay_udp_receive_drops_total") - r.drops
	return r, nil
}
