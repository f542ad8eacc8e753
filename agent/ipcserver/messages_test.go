package ipcserver_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/agent/ipcserver"
)

// TestCredentialLogValue checks that logging a Credential, by value or by
// pointer, shows the username and never the password.
func TestCredentialLogValue(t *testing.T) {
	const pw = "Pw-leak-canary-7Q"
	c := ipcserver.Credential{Username: "jk-alice", Password: []byte(pw)}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("x", "cred", c, "ptr", &c)
	}
	out := buf.String()
	if !strings.Contains(out, "jk-alice") || !strings.Contains(out, "REDACTED") {
		t.Fatalf("log %q: want the username and REDACTED", out)
	}
	for _, leak := range []string{pw, "UHctbGVh", "80 119 45"} { // raw, base64, decimal
		if strings.Contains(out, leak) {
			t.Errorf("password %q in log %q", leak, out)
		}
	}
}
