package protocol

import (
	"context"
	"crypto/rand"
	"testing"
)

func benchApproval(f *fixture) Approval {
	return Approval{Serial: 42, DeviceID: f.device.DeviceID, Session: SessionID{1}, HandshakeHash: make([]byte, 32),
		Action: ActionLogon, Decision: DecisionApprove, Time: testNow.Unix(), Nonce: [16]byte{2}}
}

func BenchmarkApprovalEncode(b *testing.B) {
	a := benchApproval(newFixture(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(&a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApprovalDecode(b *testing.B) {
	a := benchApproval(newFixture(b))
	enc, _ := Marshal(&a)
	b.ReportAllocs()
	for b.Loop() {
		var got Approval
		if err := Unmarshal(enc, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApprovalSignP256(b *testing.B) {
	f := newFixture(b)
	a := benchApproval(f)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignP256(DocApproval, &a, f.approval.Key, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApprovalVerifyP256(b *testing.B) {
	f := newFixture(b)
	a := benchApproval(f)
	s, _ := SignP256(DocApproval, &a, f.approval.Key, rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		var got Approval
		if err := s.VerifyP256(DocApproval, f.approvalPK, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTechCertSignEd25519(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignEd25519(DocTechCert, &f.tech, f.msp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTechCertVerifyEd25519(b *testing.B) {
	f := newFixture(b)
	s, _ := SignEd25519(DocTechCert, &f.tech, f.msp)
	b.ReportAllocs()
	for b.Loop() {
		var got TechCert
		if err := s.VerifyEd25519(DocTechCert, f.mspPub, &got); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandshakeIKpsk1(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		ini, resp := handshakeConfigs(f, FlowQRLogin)
		ini.Rand, resp.Rand = rand.Reader, rand.Reader
		if _, _, ierr, rerr := handshake(b, ini, resp); ierr != nil || rerr != nil {
			b.Fatal(ierr, rerr)
		}
	}
}

// BenchmarkQRLogin measures one whole QR login in memory, both sides:
// IKpsk1 handshake; LoginHello (tech cert) sealed, opened, verified and
// authorised; LoginRequest (device cert) sealed, opened and verified;
// Approval signed (P-256), sealed, opened, verified and matched;
// LoginResult sealed and opened.
func BenchmarkQRLogin(b *testing.B) {
	f := newFixture(b)
	tc, _ := SignEd25519(DocTechCert, &f.tech, f.msp)
	dc, _ := SignEd25519(DocDeviceCert, &f.device, f.msp)
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	// send seals a message on one session and opens it on the other.
	send := func(from, to *Session, t MsgType, body any) []byte {
		m, err := EncodeMsg(t, body)
		must(err)
		ct, err := from.Seal(m)
		must(err)
		pt, err := to.Open(ct)
		must(err)
		return pt
	}
	b.ReportAllocs()
	for b.Loop() {
		ini, resp := handshakeConfigs(f, FlowQRLogin)
		ini.Rand, resp.Rand = rand.Reader, rand.Reader
		a, r := transportPair()
		done := make(chan *Session, 1)
		go func() {
			s, err := Initiate(ctx, ini, a)
			must(err)
			done <- s
		}()
		agent, err := Respond(ctx, resp, r)
		must(err)
		phone := <-done

		var hello LoginHello
		must(DecodeMsg(send(phone, agent, MsgLoginHello, &LoginHello{TechCert: tc}), MsgLoginHello, &hello))
		var cert TechCert
		must(hello.TechCert.VerifyEd25519(DocTechCert, f.mspPub, &cert))
		must(cert.Valid(testNow))
		if !agent.PeerIs(cert.NoiseKey) {
			b.Fatal("peer key")
		}
		must(f.policy.Authorize(&cert, &f.device))

		var req LoginRequest
		must(DecodeMsg(send(agent, phone, MsgLoginRequest, &LoginRequest{DeviceCert: dc, Session: SessionID{1},
			Action: ActionLogon, Account: "msp-nik", Time: testNow.Unix()}), MsgLoginRequest, &req))
		var dev DeviceCert
		must(req.DeviceCert.VerifyEd25519(DocDeviceCert, f.mspPub, &dev))

		ap := Approval{Serial: cert.Serial, DeviceID: dev.DeviceID, Session: req.Session, HandshakeHash: phone.HandshakeHash(),
			Action: req.Action, Decision: DecisionApprove, Time: testNow.Unix()}
		_, _ = rand.Read(ap.Nonce[:])
		signed, err := SignP256(DocApproval, &ap, f.approval.Key, rand.Reader)
		must(err)
		var got Signed
		must(DecodeMsg(send(phone, agent, MsgApproval, &signed), MsgApproval, &got))
		var approval Approval
		must(got.VerifyP256(DocApproval, cert.ApprovalKey, &approval))
		must(approval.Match(ApprovalExpect{Serial: cert.Serial, DeviceID: f.device.DeviceID, Session: SessionID{1},
			HandshakeHash: agent.HandshakeHash(), Action: ActionLogon, Now: testNow}))

		var res LoginResult
		must(DecodeMsg(send(agent, phone, MsgLoginResult, &LoginResult{OK: true, Account: "msp-nik"}), MsgLoginResult, &res))
	}
}

func BenchmarkSealOpen1KiB(b *testing.B) {
	is, rs := establish(b, FlowPolicy)
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		ct, err := is.Seal(msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rs.Open(ct); err != nil {
			b.Fatal(err)
		}
	}
}
