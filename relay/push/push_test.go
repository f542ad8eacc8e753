package push_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/relay/push"
)

// TestWakeErrorHidesURL checks that a failed wake-up, which the relay
// logs, does not repeat the gateway URL and the credentials in its query.
func TestWakeErrorHidesURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the POST fails to connect
	w := &push.Webhook{URL: "http://" + addr + "/wake?key=s3cr3t-gateway-key"}
	err = w.Wake(context.Background(), []byte("token"))
	if err == nil {
		t.Fatal("Wake succeeded with no gateway listening")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error reveals the gateway URL: %v", err)
	}
}
