// Command jitkey-relay runs one jitkey relay.
//
// At start it prints one line to stdout that scripts can parse:
//
//	addr=127.0.0.1:4433 pin=<64 hex digits> metrics=127.0.0.1:9433
//
// SIGTERM or SIGINT drains the relay: peers are told to reconnect, queued
// frames are flushed, and the process exits within --drain-timeout.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitkey/jitkey/internal/cliflag"
	"github.com/jitkey/jitkey/relay/push"
	"github.com/jitkey/jitkey/relay/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// shortUsage follows a command-line error; --help prints every flag.
const shortUsage = `usage: jitkey-relay [--listen ADDR] [--cert FILE --key FILE] [--metrics-listen ADDR]
                    [--pin-file FILE] [--push-gateway URL [--push-key-file FILE]] [limits...]
run 'jitkey-relay --help' for every flag
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jitkey-relay", flag.ContinueOnError)
	var (
		cfg         server.Config
		l           = &cfg.Limits
		metricsAddr = fs.String("metrics-listen", "127.0.0.1:9433", "Prometheus metrics `address` (empty: off)")
		pinFile     = fs.String("pin-file", "", "also write the pin (hex) to this `file`")
		gateway     = fs.String("push-gateway", "", "push gateway webhook `URL` (empty: push off)")
		pushKeyFile = fs.String("push-key-file", "", "`file` with the 32-byte push key in hex (empty: random per start)")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		withPprof   = fs.Bool("pprof", false, "also serve /debug/pprof/ on the metrics listener (profiling; keep it private)")
	)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:4433", "UDP `address` to listen on (port 0: any)")
	fs.StringVar(&cfg.CertFile, "cert", "", "PEM certificate `file` (empty: generate a self-signed one)")
	fs.StringVar(&cfg.KeyFile, "key", "", "PEM private key `file`")
	fs.IntVar(&l.MaxPayload, "max-payload", 0, "payload bound in bytes (default 65536)")
	fs.IntVar(&l.QueueFrames, "queue-frames", 0, "frames queued per peer (default 64)")
	fs.IntVar(&l.QueueBytes, "queue-bytes", 0, "bytes queued per peer (default 512 KiB)")
	fs.Float64Var(&l.SendRate, "send-rate", 0, "Send frames per second per peer (default 100)")
	fs.IntVar(&l.SendBurst, "send-burst", 0, "Send burst per peer (default 200)")
	fs.DurationVar(&l.WriteTimeout, "write-timeout", 0, "write timeout per peer (default 5s)")
	fs.Float64Var(&l.AcceptRate, "accept-rate", 0, "new connections per second (default 1000)")
	fs.IntVar(&l.AcceptBurst, "accept-burst", 0, "new connection burst (default 2000)")
	fs.IntVar(&l.IPv6PrefixLen, "ipv6-prefix", 0, "IPv6 prefix `bits` that count as one source for the per-source limits, 32..128 (default 64; an IPv4 address is one source)")
	fs.IntVar(&l.ConnsPerAddr, "conns-per-addr", 0, "connections per source (default 1024)")
	fs.IntVar(&l.PendingPerAddr, "pending-per-addr", 0, "connections not yet authenticated per source (default -max-pending/16)")
	fs.Float64Var(&l.AcceptRatePerAddr, "accept-rate-per-addr", 0, "new connections per second per source (default 50)")
	fs.IntVar(&l.AcceptBurstPerAddr, "accept-burst-per-addr", 0, "new connection burst per source (default: -conns-per-addr)")
	fs.IntVar(&l.MaxAddrs, "max-addrs", 0, "sources whose admission state is kept (default 2 × -max-conns)")
	fs.IntVar(&l.MaxConns, "max-conns", 0, "connections in all, size to memory at about 70 KiB each (default 50000)")
	fs.IntVar(&l.MaxPending, "max-pending", 0, "connections not yet authenticated (default 4096)")
	fs.IntVar(&l.RetryPending, "retry-pending", 0, "unauthenticated connections from which new ones must pass a QUIC Retry (default -max-pending/8)")
	fs.DurationVar(&l.HandshakeTimeout, "handshake-timeout", 0, "QUIC handshake and Hello timeout (default 10s)")
	fs.DurationVar(&l.BusyHandshakeTimeout, "busy-handshake-timeout", 0, "QUIC handshake and Hello timeout under handshake pressure (default 2s)")
	fs.DurationVar(&l.IdleTimeout, "idle-timeout", 0, "idle timeout (default 60s)")
	fs.DurationVar(&l.KeepAlive, "keepalive", 0, "relay keep-alive period (default 0: peers keep alive)")
	fs.DurationVar(&l.DrainTimeout, "drain-timeout", 0, "bound on the drain at SIGTERM (default 10s)")
	fs.Float64Var(&l.WakeRatePerSender, "wake-rate-per-sender", 0, "push wake-ups per second per sender mailbox (default 1)")
	fs.IntVar(&l.WakeBurstPerSender, "wake-burst-per-sender", 0, "push wake-up burst per sender mailbox (default 20)")
	fs.Float64Var(&l.WakeRatePerToken, "wake-rate-per-token", 0, "push wake-ups per second per device token (default 0.1)")
	fs.IntVar(&l.WakeBurstPerToken, "wake-burst-per-token", 0, "push wake-up burst per device token (default 3)")
	pos, err := cliflag.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "usage: jitkey-relay [flags]\n\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q: jitkey-relay takes only flags", pos[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "jitkey-relay: %v\n%s", err, shortUsage)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "jitkey-relay: --log-level %q: want debug, info, warn or error\n%s", *logLevel, shortUsage)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	if *gateway != "" {
		cfg.Waker = &push.Webhook{URL: *gateway}
		if *pushKeyFile != "" {
			b, err := os.ReadFile(*pushKeyFile)
			if err != nil {
				fmt.Fprintf(stderr, "jitkey-relay: read push key file: %v\n", err)
				return 2
			}
			// A decoding error would quote the offending byte of the key.
			if cfg.PushKey, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(cfg.PushKey) != 32 {
				fmt.Fprintln(stderr, "jitkey-relay: push key file must hold 32 bytes in hex")
				return 2
			}
		}
	}
	s, err := server.New(cfg)
	if err != nil {
		log.Error("start relay", "err", err)
		return 1
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.ListenAndServe(context.Background()) }()
	select {
	case <-s.Ready():
	case err := <-serveErr:
		log.Error("listen", "err", err)
		return 1
	}
	pin := s.Pin()
	line := fmt.Sprintf("addr=%s pin=%s", s.Addr(), hex.EncodeToString(pin[:]))
	var ms *http.Server
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			log.Error("metrics listen", "err", err)
			s.Shutdown(context.Background())
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", s.MetricsHandler())
		if *withPprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		}
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go ms.Serve(ln)
		line += " metrics=" + ln.Addr().String()
	}
	if *pinFile != "" {
		if err := os.WriteFile(*pinFile, []byte(hex.EncodeToString(pin[:])+"\n"), 0o644); err != nil {
			log.Error("write pin file", "err", err)
		}
	}
	fmt.Fprintln(stdout, line)

	code := 0
	select {
	case <-ctx.Done():
		log.Info("signal received, draining")
		if err := s.Shutdown(context.Background()); err != nil {
			log.Warn("drain incomplete", "err", err)
		}
		if err := <-serveErr; err != nil && !errors.Is(err, server.ErrServerClosed) {
			log.Error("serve", "err", err)
			code = 1
		}
	case err := <-serveErr:
		log.Error("serve", "err", err)
		code = 1
	}
	if ms != nil {
		ms.Close()
	}
	return code
}
