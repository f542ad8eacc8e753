package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// relayFrameSamples is one valid frame of every type, also the fuzz seeds.
func relayFrameSamples() []RelayFrame {
	var mb MailboxID
	for i := range mb {
		mb[i] = byte(i)
	}
	h := &RelayHello{}
	h.Identity[0], h.Signature[63] = 1, 2
	return []RelayFrame{
		h,
		&RelayWelcome{Mailbox: mb, MaxPayload: MaxRelayPayload, PushKey: bytes.Repeat([]byte{7}, 32)},
		&RelayWelcome{Mailbox: mb, MaxPayload: 1000},
		&RelaySend{Seq: 7, To: mb, Payload: []byte("hello")},
		&RelaySend{Seq: 1<<32 - 1, To: mb, Ticket: []byte("ticket"), Payload: bytes.Repeat([]byte{1}, MaxRelayPayload)},
		&RelaySend{Seq: 0, To: mb},
		&RelayAck{Seq: 9},
		&RelayNack{Seq: 9, Reason: NackQueueFull},
		&RelayDeliver{From: mb, Payload: []byte("x")},
		&RelayDeliver{From: mb},
		&RelayGoAway{Reason: GoAwayShutdown, RetryAfterMs: 1500},
		&RelayReplaced{},
		&RelayPing{Data: [8]byte{1, 2, 3}},
		&RelayPong{Data: [8]byte{4, 5, 6}},
	}
}

func TestRelayFrameRoundTrip(t *testing.T) {
	for _, f := range relayFrameSamples() {
		t.Run(reflect.TypeOf(f).Elem().Name(), func(t *testing.T) {
			b, err := EncodeRelayFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != byte(f.Type()) {
				t.Fatalf("type byte %x", b[0])
			}
			g, err := DecodeRelayFrame(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(f, g) {
				t.Fatalf("round trip: got %#v want %#v", g, f)
			}
			r, err := ReadRelayFrame(bytes.NewReader(b), nil)
			if err != nil || !reflect.DeepEqual(f, r) {
				t.Fatalf("read: %v %#v", err, r)
			}
		})
	}
}

// TestRelayFrameLayout pins the byte layout of a Send frame.
func TestRelayFrameLayout(t *testing.T) {
	var to MailboxID
	to[0], to[31] = 0xaa, 0xbb
	b, err := EncodeRelayFrame(&RelaySend{Seq: 0x01020304, To: to, Ticket: []byte{0xcc}, Payload: []byte{0xdd, 0xee}})
	if err != nil {
		t.Fatal(err)
	}
	want := "03" + "00000029" + "01020304" + "aa" + "000000000000000000000000000000000000000000000000000000000000" + "bb" + "0001" + "cc" + "ddee"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("layout\n got %s\nwant %s", got, want)
	}
}

func TestRelayFrameReject(t *testing.T) {
	valid := func(f RelayFrame) []byte {
		b, err := EncodeRelayFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := valid(&RelaySend{Seq: 1, Payload: []byte("p")})
	hello := valid(&RelayHello{})
	nack := valid(&RelayNack{Seq: 1, Reason: NackTooLarge})
	goaway := valid(&RelayGoAway{Reason: GoAwayShutdown})
	welcome := valid(&RelayWelcome{PushKey: []byte{1, 2}})
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	tests := []struct {
		name    string
		in      []byte
		tooLong bool
	}{
		{"empty", nil, false},
		{"short header", []byte{3, 0, 0}, false},
		{"unknown type", []byte{0x7f, 0, 0, 0, 0}, false},
		{"type zero", []byte{0, 0, 0, 0, 0}, false},
		{"trailing byte", append(bytes.Clone(send), 0), false},
		{"truncated body", send[:len(send)-1], false},
		{"send too large", mut(send, func(b []byte) []byte {
			b[1], b[2], b[3], b[4] = 0, 1, 0x10, 0
			return b
		}), true},
		{"send payload over max", mut(valid(&RelaySend{Payload: make([]byte, MaxRelayPayload)}), func(b []byte) []byte {
			b[4]++
			return append(b, 0)
		}), true},
		{"send ticket overruns", mut(send, func(b []byte) []byte { b[5+36], b[5+37] = 0, 9; return b }), false},
		{"hello bad version", mut(hello, func(b []byte) []byte { b[5] = 2; return b }), false},
		{"hello short", mut(hello, func(b []byte) []byte { b[4]--; return b[:len(b)-1] }), false},
		{"nack unknown reason", mut(nack, func(b []byte) []byte { b[9] = 99; return b }), false},
		{"nack zero reason", mut(nack, func(b []byte) []byte { b[9] = 0; return b }), false},
		{"goaway unknown reason", mut(goaway, func(b []byte) []byte { b[5] = 9; return b }), false},
		{"welcome key length mismatch", mut(welcome, func(b []byte) []byte { b[5+38] = 3; return b }), false},
		{"welcome max payload", mut(welcome, func(b []byte) []byte { b[5+33] = 1; return b }), false},
		{"replaced with body", []byte{byte(FrameReplaced), 0, 0, 0, 1, 0}, false},
		{"ack long", []byte{byte(FrameAck), 0, 0, 0, 5, 0, 0, 0, 0, 0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRelayFrame(tt.in)
			if err == nil {
				t.Fatal("decoded a malformed frame")
			}
			if tt.tooLong && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("want ErrFrameTooLarge, got %v", err)
			}
			if !errors.Is(err, ErrRelayFrame) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("unexpected error class %v", err)
			}
		})
	}
}

func TestRelayFrameEncodeRejects(t *testing.T) {
	bad := []RelayFrame{
		&RelaySend{Payload: make([]byte, MaxRelayPayload+1)},
		&RelaySend{Ticket: make([]byte, MaxRelayPushTicket+1)},
		&RelayDeliver{Payload: make([]byte, MaxRelayPayload+1)},
		&RelayNack{Reason: 0},
		&RelayGoAway{},
		&RelayWelcome{MaxPayload: MaxRelayPayload + 1},
		&RelayWelcome{PushKey: make([]byte, MaxRelayPushKey+1)},
	}
	for i, f := range bad {
		if b, err := AppendRelayFrame([]byte{9}, f); err == nil || !bytes.Equal(b, []byte{9}) {
			t.Errorf("%d %T: encoded invalid frame (err %v, out %x)", i, f, err, b)
		}
	}
}

func TestRelayPushTicket(t *testing.T) {
	in := &RelayPushTicket{Mailbox: MailboxID{1}, Expiry: 1700000000, Token: []byte("device-token")}
	b, err := AppendRelayPushTicket(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeRelayPushTicket(b)
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip %v %#v", err, out)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...)} {
		if _, err := DecodeRelayPushTicket(bad); err == nil {
			t.Errorf("decoded bad ticket %x", bad)
		}
	}
	if _, err := AppendRelayPushTicket(nil, &RelayPushTicket{}); err == nil {
		t.Error("encoded ticket without token")
	}
}

func TestRelayAuthMessage(t *testing.T) {
	m := RelayAuthMessage([]byte{1, 2})
	if want := "jitkey/v1/relay-auth\x00\x01\x02"; string(m) != want {
		t.Fatalf("got %q", m)
	}
}

func FuzzRelayFrameDecode(f *testing.F) {
	for _, s := range relayFrameSamples() {
		b, err := EncodeRelayFrame(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{3, 0, 0, 0, 38})
	for _, b := range vectorInputs(f, false, "relay-frame") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeRelayFrame(b)
		if err != nil {
			return
		}
		out, err := EncodeRelayFrame(fr)
		if err != nil {
			t.Fatalf("re-encode of decoded frame: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip differs\n in %x\nout %x", b, out)
		}
	})
}

func FuzzRelayFrameRead(f *testing.F) {
	for _, s := range relayFrameSamples() {
		b, _ := EncodeRelayFrame(s)
		f.Add(append(b, b...))
	}
	for _, b := range vectorInputs(f, false, "relay-frame") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var out []byte
		for {
			before := r.Len()
			fr, err := ReadRelayFrame(r, nil)
			if err != nil {
				return
			}
			one, err := EncodeRelayFrame(fr)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			consumed := b[len(b)-before : len(b)-r.Len()]
			if !bytes.Equal(one, consumed) {
				t.Fatalf("round trip differs\n in %x\nout %x", consumed, one)
			}
			out = append(out, one...)
			if len(out) > len(b) {
				t.Fatal("produced more than read")
			}
		}
	})
}

func FuzzRelayPushTicket(f *testing.F) {
	b, _ := AppendRelayPushTicket(nil, &RelayPushTicket{Expiry: 5, Token: []byte("tok")})
	f.Add(b)
	for _, b := range vectorInputs(f, false, "relay-ticket") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, err := DecodeRelayPushTicket(b)
		if err != nil {
			return
		}
		out, err := AppendRelayPushTicket(nil, tk)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: %v\n in %x\nout %x", err, b, out)
		}
	})
}
