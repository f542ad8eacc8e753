package protocol

import (
	"bytes"
	"strings"
	"testing"
)

func TestE2EFrameRoundTrip(t *testing.T) {
	sid := SessionID{1, 2, 3}
	tests := []E2EFrame{
		{Session: sid, Kind: E2EHello, Flow: FlowQRLogin, Relay: testRelayB, Body: bytes.Repeat([]byte{1}, 144)},
		{Session: sid, Kind: E2EHello, Flow: FlowPolicy, Relay: testRelayA, Body: []byte{1}},
		{Session: sid, Kind: E2EReply, Body: bytes.Repeat([]byte{2}, 48)},
		{Session: sid, Kind: E2EData, Body: bytes.Repeat([]byte{3}, MaxE2EFrame-17)},
		{Session: sid, Kind: E2EAbort, Body: []byte{CodeRefused}},
	}
	for _, f := range tests {
		t.Run(string(rune('0'+f.Kind)), func(t *testing.T) {
			b, err := AppendE2EFrame(nil, f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[:16], sid[:]) || b[16] != f.Kind {
				t.Fatalf("header %x", b[:17])
			}
			g, err := ParseE2EFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			if g.Session != f.Session || g.Kind != f.Kind || g.Flow != f.Flow || g.Relay != f.Relay || !bytes.Equal(g.Body, f.Body) {
				t.Fatalf("round trip %+v", g)
			}
		})
	}
	hello, _ := AppendE2EFrame(nil, tests[0])
	if hello[17] != byte(FlowQRLogin) || int(hello[18]) != len(testRelayB) || string(hello[19:19+len(testRelayB)]) != testRelayB {
		t.Fatalf("hello layout %x", hello[:40])
	}
}

func TestE2EFrameReject(t *testing.T) {
	hdr := func(kind byte) []byte { return append(make([]byte, 16), kind) }
	hello := func(flow byte, relay string, body ...byte) []byte {
		b := append(hdr(E2EHello), flow, byte(len(relay)))
		return append(append(b, relay...), body...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"header only", hdr(E2EData), ErrMalformed},
		{"17 bytes", make([]byte, 17), ErrMalformed},
		{"kind 0", append(hdr(0), 1), ErrMalformed},
		{"kind 5", append(hdr(5), 1), ErrMalformed},
		{"abort without reason", hdr(E2EAbort), ErrMalformed},
		{"abort with two bytes", append(hdr(E2EAbort), 1, 2), ErrMalformed},
		{"hello truncated", append(hdr(E2EHello), 3, 0), ErrMalformed},
		{"hello unknown flow", hello(0, testRelayA, 1), ErrMalformed},
		{"hello flow 10", hello(10, testRelayA, 1), ErrMalformed},
		{"hello without body", hello(3, testRelayA), ErrMalformed},
		{"hello relay length past end", append(hdr(E2EHello), 3, 50, 'a', ':', '1'), ErrMalformed},
		{"hello empty relay", hello(3, "", 1), ErrMalformed},
		{"hello relay without port", hello(3, "relay", 1), ErrMalformed},
		{"hello relay with control byte", hello(3, "a\x01:1", 1), ErrMalformed},
		{"oversized", append(hdr(E2EData), make([]byte, MaxE2EFrame)...), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseE2EFrame(tt.in)
			wantErr(t, err, tt.want)
		})
	}
}

func TestE2EFrameEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		f    E2EFrame
	}{
		{"unknown kind", E2EFrame{Kind: 7, Body: []byte{1}}},
		{"empty data", E2EFrame{Kind: E2EData}},
		{"hello unknown flow", E2EFrame{Kind: E2EHello, Flow: 0, Relay: testRelayA, Body: []byte{1}}},
		{"hello bad relay", E2EFrame{Kind: E2EHello, Flow: FlowPair, Relay: strings.Repeat("a", 97), Body: []byte{1}}},
		{"abort long", E2EFrame{Kind: E2EAbort, Body: []byte{1, 2}}},
		{"too large", E2EFrame{Kind: E2EData, Body: make([]byte, MaxE2EFrame)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := AppendE2EFrame(nil, tt.f); err == nil {
				t.Fatal("encoded")
			}
		})
	}
}
