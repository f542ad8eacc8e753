package pushgw_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/relay/push"
	"github.com/jitkey/jitkey/relay/push/pushgw"
)

// TestWebhookContract: what the relay's webhook client posts is what the
// stand-in accepts, token intact.
func TestWebhookContract(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(&pushgw.Gateway{OnWake: func(tok []byte) { got <- tok }})
	defer srv.Close()
	tok := bytes.Repeat([]byte{0xfe, 0x01}, 256) // 512 bytes, the longest
	if err := (&push.Webhook{URL: srv.URL}).Wake(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, tok) {
		t.Fatalf("token %x", b)
	}
}

func TestParseWake(t *testing.T) {
	good, err := pushgw.EncodeWake([]byte("device-1"))
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := pushgw.ParseWake(good); err != nil || string(tok) != "device-1" {
		t.Fatalf("%q %v", tok, err)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `null`,
		`{"token":"ZGV2aWNlLTE=","type":"sleep"}`,
		`{"token":"ZGV2aWNlLTE="}`,
		`{"type":"wake"}`,
		`{"token":"","type":"wake"}`,
		`{"token":"ZGV2aWNlLTE","type":"wake"}`, // unpadded
		`{"token":"ZGV2aWNlLTE=","type":"wake","x":1}`,
		`{"token":"ZGV2aWNlLTE=","type":"wake"} {}`,
		`{"token":"ZGV2aWNlLTE=","type":"wake"}x`,
		`{"token":"` + strings.Repeat("AAAA", 171) + `","type":"wake"}`, // 513 bytes
		`{"token":null,"type":"wake"}`,
	} {
		if _, err := pushgw.ParseWake([]byte(bad)); !errors.Is(err, pushgw.ErrBadWake) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestGatewayRefuses(t *testing.T) {
	woken := 0
	srv := httptest.NewServer(&pushgw.Gateway{OnWake: func([]byte) { woken++ }})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL, "application/json", strings.NewReader(`{"token":"AA==","type":"sleep"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || woken != 0 {
		t.Fatalf("bad body: %d, woken %d", resp.StatusCode, woken)
	}
}

// FuzzParseWake: no panic; whatever parses re-encodes to a body that
// parses to the same token.
func FuzzParseWake(f *testing.F) {
	for _, s := range []string{`{"token":"ZGV2aWNlLTE=","type":"wake"}`, `{"type":"wake","token":"AA=="}`, `{"token":"","type":"wake"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := pushgw.ParseWake(body)
		if err != nil {
			return
		}
		if len(tok) == 0 || len(tok) > pushgw.MaxToken {
			t.Fatalf("token of %d bytes accepted", len(tok))
		}
		again, err := pushgw.EncodeWake(tok)
		if err != nil {
			t.Fatal(err)
		}
		tok2, err := pushgw.ParseWake(again)
		if err != nil || !bytes.Equal(tok, tok2) {
			t.Fatalf("re-encoded %q: %v", again, err)
		}
	})
}
