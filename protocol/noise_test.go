package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/flynn/noise"
	"github.com/jitkey/jitkey/protocol/internal/detrand"
)

// handshakeConfigs returns matching initiator and responder configs for a
// flow: the phone (initiator) and the agent (responder).
func handshakeConfigs(f *fixture, flow Flow) (ini, resp HandshakeConfig) {
	var agentPub, phonePub NoiseKey
	copy(agentPub[:], f.agent.Public)
	copy(phonePub[:], f.phone.Public)
	psk := detrand.Bytes("psk", 32)
	ini = HandshakeConfig{Flow: flow, Static: f.phone, PeerStatic: agentPub,
		InitiatorRelay: testRelayB, ResponderRelay: testRelayA, Rand: detrand.New("ini-eph")}
	resp = HandshakeConfig{Flow: flow, Static: f.agent,
		InitiatorRelay: testRelayB, ResponderRelay: testRelayA, Rand: detrand.New("resp-eph")}
	if flow.FirstContact() {
		ini.PSK, resp.PSK = psk, bytes.Clone(psk)
	} else {
		resp.PeerStatic = phonePub
	}
	return ini, resp
}

var allFlows = []Flow{FlowEnroll, FlowPair, FlowQRLogin, FlowPolicy, FlowAudit, FlowPush, FlowDomain, FlowSync, FlowConsoleLogin}

func TestHandshakeComplete(t *testing.T) {
	f := newFixture(t)
	for _, flow := range allFlows {
		t.Run(flow.Name(), func(t *testing.T) {
			ini, resp := handshakeConfigs(f, flow)
			is, rs, ierr, rerr := handshake(t, ini, resp)
			if ierr != nil || rerr != nil {
				t.Fatalf("initiator %v, responder %v", ierr, rerr)
			}
			if len(is.HandshakeHash()) != 32 || !bytes.Equal(is.HandshakeHash(), rs.HandshakeHash()) {
				t.Fatal("handshake hashes differ")
			}
			if !rs.PeerIs(ownStatic(ini)) || !is.PeerIs(ownStatic(resp)) {
				t.Fatal("peer static keys not authenticated")
			}
			for i, msg := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{1}, PadBlock-2), bytes.Repeat([]byte{2}, PadBlock-1), bytes.Repeat([]byte{3}, MaxTransportPlain)} {
				for _, dir := range []struct{ a, b *Session }{{is, rs}, {rs, is}} {
					ct, err := dir.a.Seal(msg)
					if err != nil {
						t.Fatal(err)
					}
					if (len(ct)-16)%PadBlock != 0 {
						t.Fatalf("msg %d: ciphertext %d not padded", i, len(ct))
					}
					pt, err := dir.b.Open(ct)
					if err != nil || !bytes.Equal(pt, msg) {
						t.Fatalf("msg %d: open %v", i, err)
					}
				}
			}
		})
	}
}

// ownStatic returns the static public key of the config's own side.
func ownStatic(c HandshakeConfig) NoiseKey {
	var k NoiseKey
	copy(k[:], c.Static.Public)
	return k
}

// tamperTransport alters the n-th message (1-based) it writes.
type tamperTransport struct {
	Transport
	n, count int
	mod      func([]byte) []byte
}

func (t *tamperTransport) WriteMessage(ctx context.Context, msg []byte) error {
	t.count++
	if t.count == t.n {
		msg = t.mod(bytes.Clone(msg))
	}
	return t.Transport.WriteMessage(ctx, msg)
}

func TestHandshakeReject(t *testing.T) {
	f := newFixture(t)
	other, _ := CipherSuite.GenerateKeypair(detrand.New("intruder"))
	var otherPub NoiseKey
	copy(otherPub[:], other.Public)
	tests := []struct {
		name string
		flow Flow
		mod  func(ini, resp *HandshakeConfig)
		// Which side must fail with ErrHandshake.
		responderFails bool
	}{
		{"ikpsk1 wrong psk", FlowQRLogin, func(i, r *HandshakeConfig) { r.PSK = detrand.Bytes("other psk", 32) }, true},
		{"ikpsk1 wrong responder static", FlowQRLogin, func(i, r *HandshakeConfig) { i.PeerStatic = otherPub }, true},
		{"ikpsk1 responder has other static", FlowQRLogin, func(i, r *HandshakeConfig) { r.Static = other }, true},
		{"ikpsk1 flow mismatch", FlowQRLogin, func(i, r *HandshakeConfig) { r.Flow = FlowPair }, true},
		{"ikpsk1 initiator relay mismatch", FlowPair, func(i, r *HandshakeConfig) { r.InitiatorRelay = "evil.example:4433" }, true},
		{"ikpsk1 responder relay mismatch", FlowEnroll, func(i, r *HandshakeConfig) { i.ResponderRelay = "evil.example:4433" }, true},
		{"kk wrong responder static", FlowPolicy, func(i, r *HandshakeConfig) { i.PeerStatic = otherPub }, true},
		{"kk responder expects other initiator", FlowPush, func(i, r *HandshakeConfig) { r.PeerStatic = otherPub }, true},
		{"kk initiator impersonated", FlowAudit, func(i, r *HandshakeConfig) { i.Static = other }, true},
		{"kk flow mismatch", FlowDomain, func(i, r *HandshakeConfig) { r.Flow = FlowSync }, true},
		{"kk relay mismatch", FlowDomain, func(i, r *HandshakeConfig) { r.ResponderRelay = "evil.example:4433" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini, resp := handshakeConfigs(f, tt.flow)
			tt.mod(&ini, &resp)
			_, _, ierr, rerr := handshake(t, ini, resp)
			if tt.responderFails && !errors.Is(rerr, ErrHandshake) {
				t.Fatalf("responder error %v, want ErrHandshake", rerr)
			}
			if ierr == nil {
				t.Fatal("initiator completed")
			}
		})
	}
}

func TestHandshakeTamper(t *testing.T) {
	f := newFixture(t)
	for _, flow := range []Flow{FlowQRLogin, FlowPolicy} {
		// IK msg1 is 96 bytes (e, encrypted s, payload tag), KK msg1 and
		// both msg2 are 48 (e, payload tag); flip bytes in every region.
		for _, msgNo := range []int{1, 2} {
			for _, pos := range []int{0, 31, 32, 47, 48, 95} {
				t.Run(flow.Name()+"/msg"+string(rune('0'+msgNo))+"/"+hex.EncodeToString([]byte{byte(pos)}), func(t *testing.T) {
					ini, resp := handshakeConfigs(f, flow)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					a, b := transportPair()
					flipAt := func(m []byte) []byte { m[pos%len(m)] ^= 0x80; return m }
					var it, rt Transport = a, b
					if msgNo == 1 {
						it = &tamperTransport{Transport: a, n: 1, mod: flipAt}
					} else {
						rt = &tamperTransport{Transport: b, n: 1, mod: flipAt}
					}
					done := make(chan error, 1)
					go func() { _, err := Initiate(ctx, ini, it); done <- err }()
					_, rerr := Respond(ctx, resp, rt)
					if rerr != nil {
						cancel()
					}
					ierr := <-done
					if msgNo == 1 && !errors.Is(rerr, ErrHandshake) {
						t.Fatalf("responder accepted tampered msg1: %v", rerr)
					}
					if msgNo == 2 && !errors.Is(ierr, ErrHandshake) {
						t.Fatalf("initiator accepted tampered msg2: %v", ierr)
					}
				})
			}
		}
	}
}

func TestHandshakeConfigErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		flow Flow
		mod  func(*HandshakeConfig)
	}{
		{"unknown flow", FlowQRLogin, func(c *HandshakeConfig) { c.Flow = 99 }},
		{"no initiator relay", FlowQRLogin, func(c *HandshakeConfig) { c.InitiatorRelay = "" }},
		{"bad responder relay", FlowQRLogin, func(c *HandshakeConfig) { c.ResponderRelay = "no-port" }},
		{"short psk", FlowQRLogin, func(c *HandshakeConfig) { c.PSK = c.PSK[:16] }},
		{"no psk", FlowEnroll, func(c *HandshakeConfig) { c.PSK = nil }},
		{"zero peer static", FlowQRLogin, func(c *HandshakeConfig) { c.PeerStatic = NoiseKey{} }},
		{"kk zero peer static", FlowPolicy, func(c *HandshakeConfig) { c.PeerStatic = NoiseKey{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini, _ := handshakeConfigs(f, tt.flow)
			tt.mod(&ini)
			a, _ := transportPair()
			if _, err := Initiate(context.Background(), ini, a); err == nil {
				t.Fatal("Initiate accepted the config")
			}
		})
	}
	_, resp := handshakeConfigs(f, FlowPush)
	resp.PeerStatic = NoiseKey{}
	if _, err := RespondMessage(context.Background(), resp, make([]byte, 96), &chanTransport{}); err == nil {
		t.Fatal("KK responder accepted a zero peer static")
	}
}

func TestPrologue(t *testing.T) {
	got := Prologue(FlowQRLogin, "a:1", "bb:2")
	want := []byte("jitkey/v1\x00qr-login\x00\x03a:1\x04bb:2")
	if !bytes.Equal(got, want) {
		t.Fatalf("%q", got)
	}
	names := map[string]bool{}
	for _, fl := range allFlows {
		if fl.Name() == "" || names[fl.Name()] {
			t.Fatalf("flow %d name %q", fl, fl.Name())
		}
		names[fl.Name()] = true
		if fl.FirstContact() != (fl <= FlowQRLogin || fl == FlowConsoleLogin) {
			t.Fatalf("FirstContact(%s)", fl.Name())
		}
	}
	if Flow(0).Name() != "" || Flow(10).Name() != "" {
		t.Fatal("unknown flows have names")
	}
}

func establish(t testing.TB, flow Flow) (is, rs *Session) {
	t.Helper()
	f := newFixture(t)
	ini, resp := handshakeConfigs(f, flow)
	is, rs, ierr, rerr := handshake(t, ini, resp)
	if ierr != nil || rerr != nil {
		t.Fatalf("handshake: %v / %v", ierr, rerr)
	}
	return is, rs
}

// TestSessionPaddingHidesDecision: an approve and a deny approval, sealed,
// have the same length on the wire.
func TestSessionPaddingHidesDecision(t *testing.T) {
	f := newFixture(t)
	is, _ := establish(t, FlowQRLogin)
	var lens []int
	for _, d := range []uint8{DecisionApprove, DecisionDeny} {
		a := Approval{Serial: 42, DeviceID: f.device.DeviceID, HandshakeHash: is.HandshakeHash(),
			Action: ActionLogon, Decision: d, Time: testNow.Unix()}
		s, err := SignP256(DocApproval, &a, f.approval, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := EncodeMsg(MsgApproval, &s)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := is.Seal(msg)
		if err != nil {
			t.Fatal(err)
		}
		lens = append(lens, len(ct))
	}
	if lens[0] != lens[1] {
		t.Fatalf("approve %d bytes, deny %d bytes", lens[0], lens[1])
	}
}

func TestSessionOpenRejects(t *testing.T) {
	// raw encrypts a crafted plaintext with the sender's cipher state.
	raw := func(s *Session, plain []byte) []byte {
		ct, err := s.send.Encrypt(nil, nil, plain)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	lenPrefixed := func(n int, total int) []byte {
		p := make([]byte, total)
		binary.BigEndian.PutUint16(p, uint16(n))
		return p
	}
	tests := []struct {
		name string
		// run returns the error of the last Open.
		run func(is, rs *Session) error
	}{
		{"tampered", func(is, rs *Session) error {
			ct, _ := is.Seal([]byte("hello"))
			_, err := rs.Open(flip(ct, 5))
			return err
		}},
		{"truncated ciphertext", func(is, rs *Session) error {
			ct, _ := is.Seal([]byte("hello"))
			_, err := rs.Open(ct[:len(ct)-1])
			return err
		}},
		{"replayed", func(is, rs *Session) error {
			ct, _ := is.Seal([]byte("hello"))
			if _, err := rs.Open(ct); err != nil {
				t.Fatal(err)
			}
			_, err := rs.Open(ct)
			return err
		}},
		{"reordered", func(is, rs *Session) error {
			is.Seal([]byte("first"))
			ct2, _ := is.Seal([]byte("second"))
			_, err := rs.Open(ct2)
			return err
		}},
		{"reflected", func(is, rs *Session) error {
			ct, _ := is.Seal([]byte("hello"))
			_, err := is.Open(ct)
			return err
		}},
		{"nonzero padding", func(is, rs *Session) error {
			p := lenPrefixed(3, PadBlock)
			p[PadBlock-1] = 1
			_, err := rs.Open(raw(is, p))
			return err
		}},
		{"length beyond plaintext", func(is, rs *Session) error {
			_, err := rs.Open(raw(is, lenPrefixed(PadBlock-1, PadBlock)))
			return err
		}},
		{"not a multiple of the block", func(is, rs *Session) error {
			_, err := rs.Open(raw(is, lenPrefixed(3, PadBlock+1)))
			return err
		}},
		{"empty plaintext", func(is, rs *Session) error {
			_, err := rs.Open(raw(is, nil))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is, rs := establish(t, FlowQRLogin)
			wantErr(t, tt.run(is, rs), ErrDecrypt)
		})
	}
	t.Run("tampered message does not desynchronise", func(t *testing.T) {
		is, rs := establish(t, FlowPolicy)
		ct, _ := is.Seal([]byte("hello"))
		if _, err := rs.Open(flip(ct, 0)); !errors.Is(err, ErrDecrypt) {
			t.Fatal(err)
		}
		if pt, err := rs.Open(ct); err != nil || string(pt) != "hello" {
			t.Fatalf("genuine message after a forgery: %q %v", pt, err)
		}
	})
	t.Run("seal too large", func(t *testing.T) {
		is, _ := establish(t, FlowPolicy)
		_, err := is.Seal(make([]byte, MaxTransportPlain+1))
		wantErr(t, err, ErrFrameTooLarge)
	})
}

// Cacophony test vectors shipped with github.com/flynn/noise v1.1.0
// (vectors.txt): the first Noise_KK_25519_ChaChaPoly_BLAKE2s and
// Noise_IKpsk1_25519_ChaChaPoly_BLAKE2s entries, both with an empty
// prologue and empty handshake payloads, like jitkey's handshakes.
var cacophony = []struct {
	name                       string
	flow                       Flow
	initStatic, respStatic     string
	initEphemeral, respEphemer string
	psk                        string
	msg0, msg1                 string
	payload2, msg2             string
	payload3, msg3             string
}{
	{
		name: "Noise_KK_25519_ChaChaPoly_BLAKE2s", flow: FlowPolicy,
		initStatic:    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		respStatic:    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
		initEphemeral: "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
		respEphemer:   "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60",
		msg0:          "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254d8021192b02d5946c7e1e789d60c9c06",
		msg1:          "64b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466388958d71fa742cfe4c44b889e03b468",
		payload2:      "79656c6c6f777375626d6172696e65",
		msg2:          "674d3b19a02535626dfcb13bd383509b715566cf53e9f31ac161944d38b7c1",
		payload3:      "7375626d6172696e6579656c6c6f77",
		msg3:          "aefd829d861f03d0d8c4bfedbb520f7c1837a46e2e1b26896063783b1cba4b",
	},
	{
		name: "Noise_IKpsk1_25519_ChaChaPoly_BLAKE2s", flow: FlowQRLogin,
		initStatic:    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		respStatic:    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
		initEphemeral: "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
		respEphemer:   "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60",
		psk:           "2176657279736563726574766572797365637265747665727973656372657421",
		msg0:          "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd1662548aac9b7e52346a4de47756a681e5a97c720eef8b7faf4d312878c47eca4a0a014ddfe09618c12aed20e55a9e01da8a86b945c4f772011cb87a1bf9cadbd0519c",
		msg1:          "64b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466b8a7518e223985d3fb21a297aaeeafb7",
		payload2:      "79656c6c6f777375626d6172696e65",
		msg2:          "01b3d709f2acd4b0d95de75506da47ad980c471f2afd3a436cdc59f5605a4a",
		payload3:      "7375626d6172696e6579656c6c6f77",
		msg3:          "d2d77f0af04d0086e77a59b4d5a4428115f60ef95ee23a56683e35a29dcb00",
	},
}

// TestNoiseCacophonyVectors reproduces flynn/noise's own vectors through
// jitkey's configuration (HandshakeConfig.noiseConfig: pattern, PSK
// placement, cipher suite, keys), replacing only the prologue with the
// vectors' empty one.
func TestNoiseCacophonyVectors(t *testing.T) {
	for _, v := range cacophony {
		t.Run(v.name, func(t *testing.T) {
			is, err := CipherSuite.GenerateKeypair(bytes.NewReader(unhex(t, v.initStatic)))
			if err != nil {
				t.Fatal(err)
			}
			rs, _ := CipherSuite.GenerateKeypair(bytes.NewReader(unhex(t, v.respStatic)))
			var isPub, rsPub NoiseKey
			copy(isPub[:], is.Public)
			copy(rsPub[:], rs.Public)
			ini := HandshakeConfig{Flow: v.flow, Static: is, PeerStatic: rsPub, PSK: unhex(t, v.psk),
				InitiatorRelay: testRelayA, ResponderRelay: testRelayB, Rand: bytes.NewReader(unhex(t, v.initEphemeral))}
			resp := HandshakeConfig{Flow: v.flow, Static: rs, PSK: unhex(t, v.psk),
				InitiatorRelay: testRelayA, ResponderRelay: testRelayB, Rand: bytes.NewReader(unhex(t, v.respEphemer))}
			if !v.flow.FirstContact() {
				resp.PeerStatic = isPub
			}
			nci, err := ini.noiseConfig(true)
			if err != nil {
				t.Fatal(err)
			}
			ncr, err := resp.noiseConfig(false)
			if err != nil {
				t.Fatal(err)
			}
			nci.Prologue, ncr.Prologue = nil, nil
			hi, _ := noise.NewHandshakeState(nci)
			hr, _ := noise.NewHandshakeState(ncr)
			m0, _, _, err := hi.WriteMessage(nil, nil)
			if err != nil || hex.EncodeToString(m0) != v.msg0 {
				t.Fatalf("msg0 %x, %v", m0, err)
			}
			if _, _, _, err := hr.ReadMessage(nil, m0); err != nil {
				t.Fatal(err)
			}
			m1, rc1, rc2, err := hr.WriteMessage(nil, nil)
			if err != nil || hex.EncodeToString(m1) != v.msg1 {
				t.Fatalf("msg1 %x, %v", m1, err)
			}
			_, ic1, ic2, err := hi.ReadMessage(nil, m1)
			if err != nil {
				t.Fatal(err)
			}
			m2, _ := ic1.Encrypt(nil, nil, unhex(t, v.payload2))
			if hex.EncodeToString(m2) != v.msg2 {
				t.Fatalf("msg2 %x", m2)
			}
			if p, err := rc1.Decrypt(nil, nil, m2); err != nil || hex.EncodeToString(p) != v.payload2 {
				t.Fatal("responder cannot read msg2")
			}
			m3, _ := rc2.Encrypt(nil, nil, unhex(t, v.payload3))
			if hex.EncodeToString(m3) != v.msg3 {
				t.Fatalf("msg3 %x", m3)
			}
			if p, err := ic2.Decrypt(nil, nil, m3); err != nil || hex.EncodeToString(p) != v.payload3 {
				t.Fatal("initiator cannot read msg3")
			}

			// With jitkey's real prologue, Initiate/Respond produce the
			// same handshake as the bare noise configuration above, and
			// their sessions carry the padded transport messages.
			ini.Rand = bytes.NewReader(unhex(t, v.initEphemeral))
			resp.Rand = bytes.NewReader(unhex(t, v.respEphemer))
			nci.Prologue = Prologue(v.flow, testRelayA, testRelayB)
			nci.Random = bytes.NewReader(unhex(t, v.initEphemeral))
			ref, _ := noise.NewHandshakeState(nci)
			refMsg0, _, _, _ := ref.WriteMessage(nil, nil)
			a, b := transportPair()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go Initiate(ctx, ini, a)
			got0, _ := b.ReadMessage(ctx)
			if !bytes.Equal(got0, refMsg0) || bytes.Equal(got0, m0) {
				t.Fatal("Initiate does not use the configuration's prologue")
			}
		})
	}
}
