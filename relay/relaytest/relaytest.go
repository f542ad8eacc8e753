// Package relaytest holds helpers shared by the relay's client and server
// tests: a log sink safe for concurrent writers, a metrics scraper and a
// bounded receive.
package relaytest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitkey/jitkey/relay/client"
)

// LogBuffer collects log lines written from many goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Metric scrapes the value of one metric line, such as
// `jitkey_relay_peers` or `jitkey_relay_drops_total{reason="queue-full"}`,
// from h, a relay's metrics handler. A labelled line is written only once
// its counter is non-zero, so its absence reads as 0; an unlabelled metric
// is always written, so its absence (a misspelt name) fails the test.
func Metric(t testing.TB, h http.Handler, name string) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v int64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric %s: %q: %v", name, rest, err)
			}
			return v
		}
	}
	if !strings.Contains(name, "{") {
		t.Fatalf("metric %s is not exported", name)
	}
	return 0
}

// Recv returns the next message c receives, failing the test after 5 s.
func Recv(t testing.TB, c *client.Client) client.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return m
}
