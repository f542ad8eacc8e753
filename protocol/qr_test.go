package protocol

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func testQR(t testing.TB) QRPayload {
	f := newFixture(t)
	q := QRPayload{
		Kind: QRLogin, Action: ActionLogon, Time: testNow, DeviceID: f.device.DeviceID,
		Mailbox: MailboxID{5}, Secret: [QRSecretLen]byte{6}, Relay: testRelayA,
	}
	copy(q.Static[:], f.agent.Public)
	return q
}

func TestQRRoundTrip(t *testing.T) {
	login := testQR(t)
	pair := login
	pair.Kind, pair.Action, pair.DeviceID = QRPair, 0, DeviceID{}
	longRelay := login
	longRelay.Relay = strings.Repeat("r", MaxRelayAddrLen-5) + ":4433"
	sudo := login
	sudo.Action = ActionSudo
	for name, q := range map[string]QRPayload{"login": login, "pair": pair, "longest relay": longRelay, "sudo": sudo} {
		t.Run(name, func(t *testing.T) {
			text, err := q.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(text) > MaxQRText {
				t.Fatalf("encoded %d > MaxQRText %d", len(text), MaxQRText)
			}
			if strings.Trim(text[3:], base45Alphabet) != "" {
				t.Fatalf("not QR alphanumeric: %q", text)
			}
			got, err := DecodeQR(text, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(q.Time) {
				t.Fatalf("time %v", got.Time)
			}
			got.Time = q.Time
			if got != q {
				t.Fatalf("got %+v\nwant %+v", got, q)
			}
			if got.Addr() != (PeerAddr{Relay: q.Relay, Mailbox: q.Mailbox}) {
				t.Fatal("Addr")
			}
		})
	}
}

// qrText builds a QR text from a binary payload mutated by mod.
func qrText(t testing.TB, q QRPayload, mod func([]byte) []byte) string {
	b, err := q.appendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return qrPrefix + base45Encode(mod(b))
}

func TestQRReject(t *testing.T) {
	q := testQR(t)
	id := func(b []byte) []byte { return b }
	set := func(i int, v byte) func([]byte) []byte {
		return func(b []byte) []byte { b[i] = v; return b }
	}
	good := qrText(t, q, id)
	pair := q
	pair.Kind, pair.Action, pair.DeviceID = QRPair, 0, DeviceID{}
	pairText, _ := pair.Encode()
	tests := []struct {
		name string
		text string
		now  time.Time
		want error
	}{
		{"fresh", good, testNow, nil},
		{"at max age", good, testNow.Add(QRLoginMaxAge), nil},
		{"stale", good, testNow.Add(QRLoginMaxAge + time.Second), ErrQRStale},
		{"at max future", good, testNow.Add(-QRMaxFuture), nil},
		{"future", good, testNow.Add(-QRMaxFuture - time.Second), ErrQRStale},
		{"pair within its age", pairText, testNow.Add(QRPairMaxAge), nil},
		{"pair stale", pairText, testNow.Add(QRPairMaxAge + time.Second), ErrQRStale},
		{"oversized", good + strings.Repeat("0", MaxQRText-len(good)+1), testNow, ErrMalformed},
		{"empty", "", testNow, ErrMalformed},
		{"no prefix", good[3:], testNow, ErrMalformed},
		{"lowercase prefix", "jk:" + good[3:], testNow, ErrMalformed},
		{"lowercase base45", "JK:" + strings.ToLower(good[3:]), testNow, ErrMalformed},
		{"bad base45 length", good[:len(good)-2], testNow, ErrMalformed},
		{"truncated", qrText(t, q, func(b []byte) []byte { return b[:qrFixedLen] }), testNow, ErrMalformed},
		{"relay length too long", qrText(t, q, func(b []byte) []byte { b[103]++; return b }), testNow, ErrMalformed},
		{"relay length too short", qrText(t, q, func(b []byte) []byte { b[103]--; return b }), testNow, ErrMalformed},
		{"trailing byte", qrText(t, q, func(b []byte) []byte { return append(b, 0) }), testNow, ErrMalformed},
		{"version 0", qrText(t, q, set(0, 0)), testNow, ErrUnsupportedVersion},
		{"version 2", qrText(t, q, set(0, 2)), testNow, ErrUnsupportedVersion},
		{"kind 0", qrText(t, q, set(1, 0)), testNow, ErrMalformed},
		{"kind 3", qrText(t, q, set(1, 3)), testNow, ErrMalformed},
		{"login action 0", qrText(t, q, set(2, 0)), testNow, ErrMalformed},
		{"login action 5", qrText(t, q, set(2, 5)), testNow, ErrMalformed},
		{"pair with action", qrText(t, pair, set(2, 1)), testNow, ErrMalformed},
		{"pair with device id", qrText(t, pair, set(7, 1)), testNow, ErrMalformed},
		{"zero static key", qrText(t, q, func(b []byte) []byte { clear(b[23:55]); return b }), testNow, ErrMalformed},
		{"relay without port", qrText(t, q, func(b []byte) []byte { return append(b[:103], 4, 'h', 'o', 's', 't') }), testNow, ErrMalformed},
		{"relay with space", qrText(t, q, func(b []byte) []byte { return append(b[:103], 3, ' ', ':', '1') }), testNow, ErrMalformed},
		{"relay empty", qrText(t, q, func(b []byte) []byte { return append(b[:103], 0) }), testNow, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeQR(tt.text, tt.now)
			wantErr(t, err, tt.want)
		})
	}
}

func TestQREncodeRejects(t *testing.T) {
	good := testQR(t)
	tests := []struct {
		name string
		mod  func(*QRPayload)
	}{
		{"kind", func(q *QRPayload) { q.Kind = 9 }},
		{"action", func(q *QRPayload) { q.Action = 0 }},
		{"relay", func(q *QRPayload) { q.Relay = "" }},
		{"relay too long", func(q *QRPayload) { q.Relay = strings.Repeat("r", MaxRelayAddrLen) + ":1" }},
		{"time before 1970", func(q *QRPayload) { q.Time = time.Unix(-1, 0) }},
		{"time after 2106", func(q *QRPayload) { q.Time = time.Unix(1<<32, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := good
			tt.mod(&q)
			if _, err := q.Encode(); err == nil {
				t.Fatal("encoded")
			}
		})
	}
}

func TestQRLayout(t *testing.T) {
	q := testQR(t)
	b, err := q.appendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != qrFixedLen+len(q.Relay) || b[0] != QRVersion || b[1] != QRLogin || b[2] != ActionLogon ||
		binary.BigEndian.Uint32(b[3:7]) != uint32(testNow.Unix()) || !bytes.Equal(b[7:23], q.DeviceID[:]) ||
		!bytes.Equal(b[23:55], q.Static[:]) || !bytes.Equal(b[55:87], q.Mailbox[:]) ||
		!bytes.Equal(b[87:103], q.Secret[:]) || int(b[103]) != len(q.Relay) || string(b[104:]) != q.Relay {
		t.Fatalf("layout %x", b)
	}
}

func TestBase45(t *testing.T) {
	// RFC 9285 section 4.3 examples.
	tests := []struct{ in, out string }{
		{"AB", "BB8"},
		{"Hello!!", "%69 VD92EX0"},
		{"base-45", "UJCLQE7W581"},
		{"ietf!", "QED8WEX0"},
		{"", ""},
		{"\x00", "00"},
		{"\xff\xff", "FGW"},
	}
	for _, tt := range tests {
		t.Run(tt.out, func(t *testing.T) {
			if got := base45Encode([]byte(tt.in)); got != tt.out {
				t.Fatalf("encode %q = %q", tt.in, got)
			}
			got, err := base45Decode(tt.out)
			if err != nil || string(got) != tt.in {
				t.Fatalf("decode %q = %q, %v", tt.out, got, err)
			}
		})
	}
	for _, bad := range []string{"GGW", "GGW0", ":::", "A", "aa", "6Z", "ÄÄ"} {
		t.Run("reject "+bad, func(t *testing.T) {
			if b, err := base45Decode(bad); err == nil {
				t.Fatalf("decoded %q to %x", bad, b)
			}
		})
	}
}
