package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReasons checks that the filling log's refusal and Retry columns
// list a labelled counter's nonzero series and nothing else.
func TestReasons(t *testing.T) {
	body := strings.Join([]string{
		`# HELP jitkey_relay_retries_total x`,
		`# TYPE jitkey_relay_retries_total counter`,
		`jitkey_relay_retries_total{reason="addr_rate"} 0`,
		`jitkey_relay_retries_total{reason="pending"} 40147`,
		`jitkey_relay_connections_refused_total{reason="max_conns"} 3`,
		`jitkey_relay_connections_refused_total{reason="addr_rate"} 12`,
		`jitkey_relay_peers 889`,
	}, "\n") + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, c := range []struct{ name, want string }{
		{"jitkey_relay_retries_total", "pending=40147"},
		{"jitkey_relay_connections_refused_total", "max_conns=3,addr_rate=12"},
		{"jitkey_relay_push_refused_total", "0"},
	} {
		if got := reasons(addr, c.name); got != c.want {
			t.Errorf("reasons(%s) = %q, want %q", c.name, got, c.want)
		}
	}
	if got := scrape(addr, "jitkey_relay_peers"); got != 889 {
		t.Errorf("scrape peers = %d, want 889", got)
	}
	if got := round2(0.046297); got != 0.05 {
		t.Errorf("round2 = %v, want 0.05", got)
	}
}
