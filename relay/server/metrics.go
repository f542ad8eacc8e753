package server

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// metrics are the relay's counters, exported in Prometheus text format.
type metrics struct {
	connsAccepted   atomic.Int64 // QUIC handshakes completed
	connsCurrent    atomic.Int64 // authenticated peers
	handshakeFailed atomic.Int64
	authFailed      atomic.Int64
	framesForwarded atomic.Int64
	bytesForwarded  atomic.Int64
	replaced        atomic.Int64
	pushWakes       atomic.Int64
	pushFailures    atomic.Int64

	// admission, if set, reads the admission gauges.
	admission func() admissionStats
	// wakes, if set, reads the wake limit gauges.
	wakes func() wakeStats
	// socketDrops, if set, reads the datagrams the kernel dropped on the
	// relay's socket (sockdrops_linux.go).
	socketDrops atomic.Pointer[func() (int64, bool)]

	mu      sync.Mutex
	drops   map[string]int64 // by reason
	refused map[string]int64 // connection refusals by reason
	retries map[string]int64 // Retries sent, by reason
	pushRef map[string]int64 // wake-ups refused before the gateway, by reason
}

func newMetrics() *metrics {
	return &metrics{drops: make(map[string]int64), refused: make(map[string]int64), retries: make(map[string]int64), pushRef: make(map[string]int64)}
}

func (m *metrics) drop(reason string) { m.dropN(reason, 1) }

func (m *metrics) dropN(reason string, n int) {
	m.mu.Lock()
	m.drops[reason] += int64(n)
	m.mu.Unlock()
}

func (m *metrics) refuse(reason string) {
	m.mu.Lock()
	m.refused[reason]++
	m.mu.Unlock()
}

func (m *metrics) retry(reason string) {
	m.mu.Lock()
	m.retries[reason]++
	m.mu.Unlock()
}

func (m *metrics) pushRefuse(reason string) {
	m.mu.Lock()
	m.pushRef[reason]++
	m.mu.Unlock()
}

func (m *metrics) write(w io.Writer) {
	p := func(name, typ, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	p("jitkey_relay_connections_accepted_total", "counter", "QUIC connections that completed the handshake.", m.connsAccepted.Load())
	p("jitkey_relay_peers", "gauge", "Authenticated peers connected now.", m.connsCurrent.Load())
	p("jitkey_relay_handshake_failures_total", "counter", "Connection attempts that failed or timed out before the QUIC handshake completed.", m.handshakeFailed.Load())
	p("jitkey_relay_auth_failures_total", "counter", "Connections closed because Hello was missing, late or invalid.", m.authFailed.Load())
	p("jitkey_relay_frames_forwarded_total", "counter", "Frames queued to a connected recipient.", m.framesForwarded.Load())
	p("jitkey_relay_bytes_forwarded_total", "counter", "Payload bytes queued to a connected recipient.", m.bytesForwarded.Load())
	p("jitkey_relay_mailbox_replaced_total", "counter", "Connections replaced by a newer one for the same mailbox.", m.replaced.Load())
	p("jitkey_relay_push_wakes_total", "counter", "Wake-ups accepted by the push gateway.", m.pushWakes.Load())
	p("jitkey_relay_push_failures_total", "counter", "Sends with a ticket answered push-failed: bad ticket, gateway error, capacity.", m.pushFailures.Load())
	labelled := func(name, help string, vals map[string]int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		m.mu.Lock()
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s{reason=%q} %d\n", name, k, vals[k])
		}
		m.mu.Unlock()
	}
	labelled("jitkey_relay_drops_total", "Frames refused or dropped, by reason.", m.drops)
	labelled("jitkey_relay_connections_refused_total", "Connection attempts refused before the handshake, by reason; counted per Initial packet (a first flight is often two).", m.refused)
	labelled("jitkey_relay_retries_total", "Initial packets answered with a QUIC Retry (source address validation), by reason; a first flight is often two.", m.retries)
	labelled("jitkey_relay_push_refused_total", "Wake-ups refused before the gateway call, by reason (sender_rate and token_rate answered rate-limited; bad_ticket and capacity push-failed).", m.pushRef)
	if m.wakes != nil {
		ws := m.wakes()
		p("jitkey_relay_push_limit_keys", "gauge", "Senders and gateway tokens whose wake-up buckets the relay keeps.", int64(ws.keys))
		p("jitkey_relay_push_limit_keys_forgotten_total", "counter", "Wake-up bucket entries forgotten because their table was full.", ws.forgotten)
	}
	if m.admission != nil {
		a := m.admission()
		p("jitkey_relay_connections", "gauge", "Connections admitted and not yet ended, authenticated or not.", int64(a.conns))
		p("jitkey_relay_connections_pending", "gauge", "Connections admitted and not yet authenticated.", int64(a.pending))
		p("jitkey_relay_admission_addrs", "gauge", "Source addresses whose admission state the relay keeps.", int64(a.addrs))
		p("jitkey_relay_admission_addrs_forgotten_total", "counter", "Source addresses forgotten before they were idle because the address table was full.", a.forgotten)
	}
	if f := m.socketDrops.Load(); f != nil {
		if n, ok := (*f)(); ok {
			p("jitkey_relay_udp_receive_drops_total", "counter", "Datagrams the kernel dropped on the relay's UDP socket because its receive buffer was full (the relay's packet reader fell behind); each costs a peer a QUIC retransmission timeout.", n)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p("go_goroutines", "gauge", "Number of goroutines.", int64(runtime.NumGoroutine()))
	p("go_memstats_heap_inuse_bytes", "gauge", "Heap bytes in use.", int64(ms.HeapInuse))
	p("go_memstats_sys_bytes", "gauge", "Bytes obtained from the OS.", int64(ms.Sys))
	p("go_memstats_stack_inuse_bytes", "gauge", "Stack bytes in use.", int64(ms.StackInuse))
	p("go_gc_cycles_total", "counter", "Completed garbage collection cycles.", int64(ms.NumGC))
	p("go_gc_pause_microseconds_total", "counter", "Stop-the-world pause time of the garbage collector.", int64(ms.PauseTotalNs/1000))
}

// ServeHTTP writes the metrics in Prometheus text format.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m.write(w)
}
