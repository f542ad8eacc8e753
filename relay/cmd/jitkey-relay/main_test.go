package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRunPrintsPinAndDrains starts the relay on port 0, parses the line it
// prints, scrapes its metrics listener and stops it as SIGTERM would.
func TestRunPrintsPinAndDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-log-level", "error",
			"-max-conns", "1000", "-max-pending", "100", "-retry-pending", "10", "-accept-rate-per-addr", "20", "-accept-burst-per-addr", "40", "-max-addrs", "2000",
			"-ipv6-prefix", "56", "-pending-per-addr", "10", "-busy-handshake-timeout", "1s"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	if pin, err := hex.DecodeString(fields["pin"]); err != nil || len(pin) != 32 {
		t.Fatalf("no pin in %q", line)
	}
	if !strings.HasPrefix(fields["addr"], "127.0.0.1:") || strings.HasSuffix(fields["addr"], ":0") {
		t.Fatalf("no bound address in %q", line)
	}
	resp, err := http.Get("http://" + fields["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "jitkey_relay_peers 0") || !strings.Contains(string(body), "jitkey_relay_connections_pending 0") {
		t.Fatalf("metrics: %s", body)
	}
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not stop")
	}
}

func TestRunBadFlags(t *testing.T) {
	if code := run(context.Background(), []string{"-nope"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if code := run(context.Background(), []string{"-cert", "/nonexistent"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}
