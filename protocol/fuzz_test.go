package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// vectorInputs returns the inputs of the test vectors of the given kinds,
// decoded from hex unless text is set; they seed the fuzz targets.
func vectorInputs(t testing.TB, text bool, kinds ...string) [][]byte {
	files, _ := filepath.Glob("testdata/*.json")
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Kind    string `json:"kind"`
			Input   string `json:"input"`
			Context struct {
				TechCert   string   `json:"tech_cert"`
				DeviceCert string   `json:"device_cert"`
				Policy     string   `json:"policy"`
				Messages   []string `json:"messages"`
			} `json:"context"`
		}
		if json.Unmarshal(b, &v) != nil || !slicesContains(kinds, v.Kind) {
			continue
		}
		if text {
			out = append(out, []byte(v.Input))
			continue
		}
		for _, s := range append([]string{v.Input, v.Context.TechCert, v.Context.DeviceCert, v.Context.Policy}, v.Context.Messages...) {
			if x, err := hex.DecodeString(s); err == nil && len(x) > 0 {
				out = append(out, x)
			}
		}
	}
	return out
}

func slicesContains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

// fuzzTypes are the CBOR types FuzzUnmarshal decodes into.
var fuzzTypes = []reflect.Type{
	reflect.TypeFor[Signed](), reflect.TypeFor[TechCert](), reflect.TypeFor[DeviceCert](), reflect.TypeFor[Policy](),
	reflect.TypeFor[Approval](), reflect.TypeFor[AuditRecord](), reflect.TypeFor[ErrorMsg](), reflect.TypeFor[EnrollToken](),
	reflect.TypeFor[EnrollRequest](), reflect.TypeFor[EnrollResponse](), reflect.TypeFor[PairRequest](),
	reflect.TypeFor[PairResponse](), reflect.TypeFor[LoginHello](), reflect.TypeFor[LoginRequest](),
	reflect.TypeFor[LoginResult](), reflect.TypeFor[PolicyPush](), reflect.TypeFor[PolicyAck](),
	reflect.TypeFor[AuditBatch](), reflect.TypeFor[AuditAck](), reflect.TypeFor[SyncRequest](),
	reflect.TypeFor[TenantVersion](), reflect.TypeFor[Grant](), reflect.TypeFor[DeviceShare](),
	reflect.TypeFor[RosterEntry](), reflect.TypeFor[OfflineParams](), reflect.TypeFor[TenantSecret](),
	reflect.TypeFor[PageAck](), reflect.TypeFor[EndReceipt](),
}

// FuzzUnmarshal decodes arbitrary bytes into every message and document
// type: no panic, and whatever decodes re-encodes to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	for _, v := range sampleDocs(f) {
		b, err := Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if s, ok := v.(*Signed); ok {
			f.Add(s.Body)
		}
	}
	for _, b := range vectorInputs(f, false, "cbor", "signed", "tech-cert", "device-cert", "authorize", "policy-check", "approval", "audit-chain") {
		f.Add(b)
	}
	// Message bodies without their type byte: PairResponse and PolicyPush
	// pages of the transfer vectors among them.
	for _, b := range vectorInputs(f, false, "msg", "transfer", "proof") {
		f.Add(b[1:])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ty := range fuzzTypes {
			v := reflect.New(ty).Interface()
			if err := Unmarshal(data, v); err != nil {
				continue
			}
			again, err := Marshal(v)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("%s: decoded but re-encodes differently: %v\n%x\n%x", ty, err, data, again)
			}
		}
	})
}

func FuzzDecodeSigned(f *testing.F) {
	for _, b := range vectorInputs(f, false, "signed", "tech-cert", "device-cert", "authorize", "policy-check", "approval", "audit-chain", "login-chain") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSigned(data)
		if err != nil {
			return
		}
		again, err := s.Encode()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encodes differently: %v", err)
		}
		// Verification with an arbitrary key must not panic.
		var k IdentityKey
		var a ApprovalKey
		_ = s.VerifyEd25519(s.Type, k, &TechCert{})
		_ = s.VerifyP256(s.Type, a, &Approval{})
	})
}

// msgBodies maps each message type to its body's type.
var msgBodies = map[MsgType]reflect.Type{
	MsgError: reflect.TypeFor[ErrorMsg](), MsgEnrollRequest: reflect.TypeFor[EnrollRequest](),
	MsgEnrollResponse: reflect.TypeFor[EnrollResponse](), MsgPairRequest: reflect.TypeFor[PairRequest](),
	MsgPairResponse: reflect.TypeFor[PairResponse](), MsgLoginHello: reflect.TypeFor[LoginHello](),
	MsgLoginRequest: reflect.TypeFor[LoginRequest](), MsgApproval: reflect.TypeFor[Signed](),
	MsgLoginResult: reflect.TypeFor[LoginResult](), MsgPolicyPush: reflect.TypeFor[PolicyPush](),
	MsgPolicyAck: reflect.TypeFor[PolicyAck](), MsgAuditBatch: reflect.TypeFor[AuditBatch](),
	MsgAuditAck: reflect.TypeFor[AuditAck](), MsgSyncRequest: reflect.TypeFor[SyncRequest](),
	MsgPageAck: reflect.TypeFor[PageAck](),

	MsgPushRequest: reflect.TypeFor[PushRequest](),
	MsgPushReport:  reflect.TypeFor[PushReport](),

	MsgCoApprovalRequest: reflect.TypeFor[CoApprovalRequest](),
	MsgCoApproval:        reflect.TypeFor[Signed](),
	MsgRecoveryEscrow:    reflect.TypeFor[RecoveryEscrow](),
	MsgRecoveryAck:       reflect.TypeFor[RecoveryAck](),
}

// FuzzDecodePushMsg decodes arbitrary messages as a PushRequest or a
// PushReport (the phone's two new decoders of a push login, SPEC.md
// 11.5), seeded from their vectors: no panic, whatever decodes re-encodes
// to the same bytes, and CheckCandidates accepts only three distinct
// two-digit numbers.
func FuzzDecodePushMsg(f *testing.F) {
	for _, b := range vectorInputs(f, false, "msg") {
		if len(b) > 0 && (MsgType(b[0]) == MsgPushRequest || MsgType(b[0]) == MsgPushReport) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req PushRequest
		if DecodeMsg(data, MsgPushRequest, &req) == nil {
			again, err := EncodeMsg(MsgPushRequest, &req)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("PushRequest re-encodes differently: %v", err)
			}
			if req.CheckCandidates() == nil {
				seen := map[uint16]bool{}
				for _, n := range req.Candidates {
					if n < MinPushNumber || n > MaxPushNumber || seen[n] {
						t.Fatalf("candidates %v accepted", req.Candidates)
					}
					seen[n] = true
				}
				if len(seen) != PushCandidates {
					t.Fatalf("candidates %v accepted", req.Candidates)
				}
			}
		}
		var rep PushReport
		if DecodeMsg(data, MsgPushReport, &rep) == nil {
			again, err := EncodeMsg(MsgPushReport, &rep)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("PushReport re-encodes differently: %v", err)
			}
		}
	})
}

// FuzzDecodeMsg decodes arbitrary messages as the type their first byte
// names: no panic, and whatever decodes re-encodes to the same bytes. The
// seeds are the message vectors, paged transfers included.
func FuzzDecodeMsg(f *testing.F) {
	for _, b := range vectorInputs(f, false, "msg", "transfer", "proof") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		ty, ok := msgBodies[MsgType(data[0])]
		if !ok {
			ty = reflect.TypeFor[PolicyAck]()
		}
		v := reflect.New(ty).Interface()
		if DecodeMsg(data, MsgType(data[0]), v) != nil {
			return
		}
		again, err := EncodeMsg(MsgType(data[0]), v)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("%s: re-encodes differently: %v", ty, err)
		}
	})
}

func FuzzParseQR(f *testing.F) {
	for _, b := range vectorInputs(f, true, "qr") {
		f.Add(string(b))
	}
	f.Add("JK:")
	f.Fuzz(func(t *testing.T, text string) {
		q, err := ParseQR(text)
		if err != nil {
			return
		}
		again, err := q.Encode()
		if err != nil || again != text {
			t.Fatalf("re-encodes differently: %v\n%q\n%q", err, text, again)
		}
		_, _ = DecodeQR(text, testNow)
	})
}

func FuzzBase45(f *testing.F) {
	for _, b := range vectorInputs(f, true, "qr") {
		if s, ok := strings.CutPrefix(string(b), "JK:"); ok {
			f.Add(s)
		}
	}
	f.Add("%69 VD92EX0")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := base45Decode(s)
		if err != nil {
			return
		}
		if again := base45Encode(b); again != s {
			t.Fatalf("re-encodes differently: %q -> %x -> %q", s, b, again)
		}
	})
}

func FuzzDecodeEnrollToken(f *testing.F) {
	for _, b := range vectorInputs(f, true, "enroll-token") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		tok, err := DecodeEnrollToken(text, time.Unix(0, 0))
		if err != nil {
			return
		}
		again, err := tok.Encode()
		if err != nil || again != strings.TrimSpace(text) {
			t.Fatalf("re-encodes differently: %v\n%q\n%q", err, text, again)
		}
	})
}

func FuzzParseE2EFrame(f *testing.F) {
	for _, b := range vectorInputs(f, false, "e2e", "login-chain") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseE2EFrame(data)
		if err != nil {
			return
		}
		again, err := AppendE2EFrame(nil, fr)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encodes differently: %v\n%x\n%x", err, data, again)
		}
	})
}

func FuzzReadIPCFrame(f *testing.F) {
	for _, b := range vectorInputs(f, false, "ipc", "ipc-msg") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		body, err := ReadIPCFrame(r)
		if err != nil {
			return
		}
		consumed := data[:len(data)-r.Len()]
		again, err := AppendIPCFrame(nil, body)
		if err != nil || !bytes.Equal(again, consumed) {
			t.Fatalf("re-encodes differently: %v", err)
		}
	})
}

var (
	fuzzSessionOnce  sync.Once
	fuzzIni, fuzzRes *Session
)

// FuzzSessionOpen feeds Open both raw ciphertexts and authentic messages
// with arbitrary plaintexts (mode byte 1): no panic, the session stays in
// step, and an accepted plaintext is exactly what Seal would have padded.
func FuzzSessionOpen(f *testing.F) {
	fuzzSessionOnce.Do(func() { fuzzIni, fuzzRes = establish(f, FlowQRLogin) })
	for _, b := range vectorInputs(f, false, "transport") {
		f.Add(append([]byte{0}, b...))
	}
	ok := make([]byte, PadBlock)
	binary.BigEndian.PutUint16(ok, 3)
	f.Add(append([]byte{1}, ok...))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		if data[0] != 1 {
			_, _ = fuzzRes.Open(data[1:])
			return
		}
		fuzzIni.sendMu.Lock()
		ct, err := fuzzIni.send.Encrypt(nil, nil, data[1:])
		fuzzIni.sendMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		msg, err := fuzzRes.Open(ct)
		if err != nil {
			return
		}
		n := 2 + len(msg)
		padded := make([]byte, (n+PadBlock-1)/PadBlock*PadBlock)
		binary.BigEndian.PutUint16(padded, uint16(len(msg)))
		copy(padded[2:], msg)
		if !bytes.Equal(padded, data[1:]) {
			t.Fatalf("accepted a non-canonical padding: %x", data[1:])
		}
	})
}

// FuzzParsePeerAddr parses peer addresses and relay addresses, seeded from
// the address vectors: no panic, whatever parses re-encodes to the same
// text (one spelling per mailbox), and the relay part of a peer address
// passes CheckRelayAddr.
func FuzzParsePeerAddr(f *testing.F) {
	for _, b := range vectorInputs(f, true, "peer-addr", "relay-addr") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckRelayAddr(s) == nil && (len(s) > MaxRelayAddrLen || !strings.Contains(s, ":")) {
			t.Fatalf("relay address %q accepted", s)
		}
		a, err := ParsePeerAddr(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("re-encodes differently: %q -> %q", s, a.String())
		}
		if CheckRelayAddr(a.Relay) != nil {
			t.Fatalf("relay %q accepted in a peer address", a.Relay)
		}
		if m, err := ParseMailbox(a.Mailbox.String()); err != nil || m != a.Mailbox {
			t.Fatalf("mailbox does not round-trip: %v", err)
		}
	})
}

// FuzzDecodeIPCMsg decodes arbitrary IPC frame bodies as the message their
// first byte names, seeded from the ipc-msg vectors (frames without their
// length prefix): no panic, and whatever decodes re-encodes to the same
// bytes.
func FuzzDecodeIPCMsg(f *testing.F) {
	for _, b := range vectorInputs(f, false, "ipc-msg") {
		if len(b) > 4 {
			f.Add(b[4:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ty, v, err := DecodeIPCMsg(data)
		if err != nil {
			return
		}
		again, err := EncodeIPCMsg(ty, v)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("%T: re-encodes differently: %v\n%x\n%x", v, err, data, again)
		}
	})
}
