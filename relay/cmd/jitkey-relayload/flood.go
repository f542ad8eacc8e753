package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/relay/client"
)

// floodOptions are the parameters of the admission flood (-flood).
type floodOptions struct {
	prefix   string        // IPv6 prefix the flood comes from
	addrs    int           // flood source addresses in it, one socket each
	conns    int           // flood connections kept open at once
	legit    int           // legitimate peers: half reconnect, half are new
	warmup   time.Duration // flood time before the legitimate peers dial
	deadline time.Duration // how long each legitimate peer may take
	retry    time.Duration // flood: wait after a refused attempt
}

// runFlood measures how many legitimate peers get in while one IPv6 prefix
// floods the relay with QUIC handshakes that never send Hello (security
// review F4). It must run where the flood prefix is local, e.g. in a
// private network namespace (see BENCHMARKS.md):
//
//	unshare -rn sh -c 'ip link set lo up &&
//	  ip -6 route add local 2001:db8:7::/64 dev lo &&
//	  sysctl -qw net.ipv6.ip_nonlocal_bind=1 && jitkey-relayload -flood'
//
// The relay listens on [::]:0 with its default limits; legitimate peers
// come from the IPv4 loopback sources (127.0.1.x, seen as IPv4-mapped),
// flood connections from addresses of the prefix. Half of the legitimate
// peers connect before the flood and reconnect during it (a relay restart
// or a phone changing networks); the other half connect for the first
// time during it (QR logins).
func runFlood(ctx context.Context, o options, log *slog.Logger, out io.Writer) error {
	f := o.flood
	pfx, err := netip.ParsePrefix(f.prefix)
	if err != nil || !pfx.Addr().Is6() {
		return fmt.Errorf("-flood-prefix %q: want an IPv6 prefix", f.prefix)
	}
	bin, err := relayBinary(o, log)
	if err != nil {
		return err
	}
	// Only flags that every relay version has, so that relays before and
	// after a change can be compared with the same load program.
	p, err := startProc(ctx, bin, "-listen", "[::]:0", "-metrics-listen", "127.0.0.1:0", "-log-level", "error")
	if err != nil {
		return err
	}
	defer p.stop()
	_, port, err := net.SplitHostPort(p.field("addr"))
	if err != nil {
		return fmt.Errorf("relay printed no address: %q", p.line)
	}
	metrics := p.field("metrics")
	pinb, err := hex.DecodeString(p.field("pin"))
	if err != nil || len(pinb) != 32 {
		return fmt.Errorf("relay printed no pin: %q", p.line)
	}
	pin := [32]byte(pinb)
	home := net.JoinHostPort("127.0.0.1", port)

	// Legitimate peers: one transport per IPv4 loopback source.
	trs := make([]*quic.Transport, o.sources)
	for i := range trs {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))})
		if err != nil {
			return fmt.Errorf("bind source %d: %w", i, err)
		}
		trs[i] = &quic.Transport{Conn: pc}
		defer trs[i].Close()
	}
	keys := make([]ed25519.PrivateKey, f.legit)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
	}
	var mu sync.Mutex
	var running []*client.Client
	var runWG sync.WaitGroup
	runCtx, stopRun := context.WithCancel(ctx)
	defer func() {
		mu.Lock()
		for _, c := range running {
			c.Close()
		}
		mu.Unlock()
		stopRun()
		runWG.Wait()
	}()
	// connect starts a client for key i and waits up to d for it.
	connect := func(i int, d time.Duration) (*client.Client, time.Duration, bool) {
		c, err := client.New(client.Config{Identity: keys[i], Home: home, Pins: [][32]byte{pin}, Transport: trs[i%len(trs)]})
		if err != nil {
			return nil, 0, false
		}
		mu.Lock()
		running = append(running, c)
		mu.Unlock()
		runWG.Add(1)
		go func() { defer runWG.Done(); c.Run(runCtx) }()
		t0 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err = c.WaitConnected(wctx)
		return c, time.Since(t0), err == nil
	}
	// dialAll connects the peers idx with at most o.dialers at once.
	dialAll := func(idx []int, before func(i int)) (ok int, took []time.Duration) {
		var next atomic.Int64
		var wg sync.WaitGroup
		var rmu sync.Mutex
		for range min(o.dialers, len(idx)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := int(next.Add(1) - 1)
					if n >= len(idx) {
						return
					}
					if before != nil {
						before(idx[n])
					}
					_, d, good := connect(idx[n], f.deadline)
					rmu.Lock()
					if good {
						ok++
						took = append(took, d)
					}
					rmu.Unlock()
				}
			}()
		}
		wg.Wait()
		return ok, took
	}
	half := f.legit / 2
	known, fresh := make([]int, half), make([]int, f.legit-half)
	for i := range known {
		known[i] = i
	}
	for i := range fresh {
		fresh[i] = half + i
	}
	log.Info("connecting known peers before the flood", "peers", half)
	first := make([]*client.Client, half)
	for _, i := range known {
		c, _, ok := connect(i, 30*time.Second)
		if !ok {
			return fmt.Errorf("peer %d did not connect before the flood", i)
		}
		first[i] = c
	}

	log.Info("flooding", "prefix", pfx, "addrs", f.addrs, "conns", f.conns)
	fctx, stopFlood := context.WithCancel(ctx)
	var floodWG sync.WaitGroup
	var junkUp, junkRefused atomic.Int64
	if err := flood(fctx, &floodWG, pfx, f, net.JoinHostPort("::1", port), &junkUp, &junkRefused); err != nil {
		stopFlood()
		return err
	}
	defer func() { stopFlood(); floodWG.Wait() }()
	time.Sleep(f.warmup)
	pendingAtStart := scrape(metrics, "jitkey_relay_connections_pending")

	log.Info("legitimate peers dial during the flood", "reconnecting", len(known), "new", len(fresh), "deadline", f.deadline)
	t0 := time.Now()
	var recOK, newOK int
	var recTook, newTook []time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// A reconnect: the old connection ends, the same identity dials again.
		recOK, recTook = dialAll(known, func(i int) { first[i].Close() })
	}()
	go func() { defer wg.Done(); newOK, newTook = dialAll(fresh, nil) }()
	wg.Wait()
	elapsed := time.Since(t0)
	pendingAtEnd := scrape(metrics, "jitkey_relay_connections_pending")
	refused := metricLines(metrics)
	stopFlood()
	floodWG.Wait()

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\njitkey relay admission under a flood (%s, flood from %d addresses of %s, %d connections kept open without Hello, retried %s after a refusal, warm-up %s, each peer may take %s, run took %s)\n\n",
		bin, f.addrs, pfx, f.conns, f.retry, f.warmup, f.deadline, elapsed.Round(time.Millisecond))
	fmt.Fprintln(tw, "metric\tvalue")
	fmt.Fprintf(tw, "known peers reconnected\t%d of %d\n", recOK, len(known))
	fmt.Fprintf(tw, "new peers connected\t%d of %d\n", newOK, len(fresh))
	fmt.Fprintf(tw, "time to connect p50 / p95 (those that did)\t%s / %s\n", quantile(append(recTook, newTook...), 50), quantile(append(recTook, newTook...), 95))
	fmt.Fprintf(tw, "unauthenticated connections at start / end\t%d / %d\n", pendingAtStart, pendingAtEnd)
	fmt.Fprintf(tw, "flood handshakes completed / refused\t%d / %d\n", junkUp.Load(), junkRefused.Load())
	for _, l := range refused {
		if strings.HasPrefix(l, "jitkey_relay_connections_refused_total{") || strings.HasPrefix(l, "jitkey_relay_retries_total{") || strings.HasPrefix(l, "jitkey_relay_auth_failures_total ") {
			k, v, _ := strings.Cut(l, " ")
			fmt.Fprintf(tw, "relay %s\t%s\n", k, v)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "\nmachine load average (1 min) at start %s, at end %s.\n", o.loadStart, loadavg())
	return nil
}

// flood keeps f.conns QUIC connections to relay open from addresses of pfx,
// each completing the handshake and never sending Hello; when the relay
// closes one, another replaces it at once. It counts the handshakes that
// completed and those that failed.
func flood(ctx context.Context, wg *sync.WaitGroup, pfx netip.Prefix, f floodOptions, relay string, up, refused *atomic.Int64) error {
	ra, err := net.ResolveUDPAddr("udp", relay)
	if err != nil {
		return err
	}
	base := pfx.Masked().Addr().As16()
	trs := make([]*quic.Transport, f.addrs)
	for i := range trs {
		a := base
		a[12], a[13], a[14], a[15] = 0xf1, 0x00, byte(i>>8), byte(i)
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: a[:]})
		if err != nil {
			return fmt.Errorf("bind flood address %v (is %v local? see runFlood): %w", netip.AddrFrom16(a), pfx, err)
		}
		trs[i] = &quic.Transport{Conn: pc}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		for _, tr := range trs {
			tr.Close()
		}
	}()
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{protocol.RelayALPN}, MinVersion: tls.VersionTLS13}
	qconf := &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: time.Minute, KeepAlivePeriod: 5 * time.Second}
	for i := range f.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := trs[i%len(trs)]
			for ctx.Err() == nil {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				c, err := tr.Dial(dctx, ra, tlsConf, qconf)
				cancel()
				if err != nil {
					refused.Add(1)
					select {
					case <-time.After(f.retry):
					case <-ctx.Done():
					}
					continue
				}
				up.Add(1)
				select {
				case <-c.Context().Done():
				case <-ctx.Done():
					c.CloseWithError(0, "")
				}
			}
		}()
	}
	return nil
}

// quantile returns the q-th percentile of d, or 0.
func quantile(d []time.Duration, q int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, len(d)*q/100)].Round(time.Millisecond)
}
