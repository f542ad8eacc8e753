package protocol_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/protocol/internal/vectors"
)

// sentinels are the outcomes a vector may name.
var sentinels = map[string]error{
	"ErrMalformed":          protocol.ErrMalformed,
	"ErrNonCanonical":       protocol.ErrNonCanonical,
	"ErrBadSignature":       protocol.ErrBadSignature,
	"ErrBadKey":             protocol.ErrBadKey,
	"ErrBadAddr":            protocol.ErrBadAddr,
	"ErrExpired":            protocol.ErrExpired,
	"ErrRevoked":            protocol.ErrRevoked,
	"ErrDeviceRevoked":      protocol.ErrDeviceRevoked,
	"ErrNotDelegated":       protocol.ErrNotDelegated,
	"ErrNotShared":          protocol.ErrNotShared,
	"ErrSelfApproval":       protocol.ErrSelfApproval,
	"ErrNotCoApprover":      protocol.ErrNotCoApprover,
	"ErrWrongTenant":        protocol.ErrWrongTenant,
	"ErrInvalidDoc":         protocol.ErrInvalidDoc,
	"ErrPolicyDowngrade":    protocol.ErrPolicyDowngrade,
	"ErrApprovalMismatch":   protocol.ErrApprovalMismatch,
	"ErrJustification":      protocol.ErrJustification,
	"ErrStale":              protocol.ErrStale,
	"ErrQRStale":            protocol.ErrQRStale,
	"ErrUnsupportedVersion": protocol.ErrUnsupportedVersion,
	"ErrHandshake":          protocol.ErrHandshake,
	"ErrDecrypt":            protocol.ErrDecrypt,
	"ErrFrameTooLarge":      protocol.ErrFrameTooLarge,
	"ErrEmptyFrame":         protocol.ErrEmptyFrame,
	"ErrPageSequence":       protocol.ErrPageSequence,
	"ErrDuplicateDoc":       protocol.ErrDuplicateDoc,
	"ErrBrokenChain":        protocol.ErrBrokenChain,
	"ErrRelayFrame":         protocol.ErrRelayFrame,
	"ErrDomainOff":          protocol.ErrDomainOff,
	"ErrPeerMismatch":       protocol.ErrPeerMismatch,
	"ErrNotDomainJoined":    protocol.ErrNotDomainJoined,
}

// types maps context.type to the protocol type a CBOR input decodes into.
var types = map[string]reflect.Type{}

func init() {
	for _, v := range []any{
		protocol.TenantVersion{}, protocol.Signed{}, protocol.TechCert{}, protocol.DeviceCert{}, protocol.Policy{},
		protocol.Approval{}, protocol.AuditRecord{}, protocol.PolicyAck{}, protocol.AuditAck{},
		protocol.PolicyPush{}, protocol.PairResponse{}, protocol.PageAck{}, protocol.ErrorMsg{},
		protocol.DomainRequest{}, protocol.DomainResult{}, protocol.DomainEnd{},
		protocol.PushRequest{}, protocol.PushReport{}, protocol.EndReceipt{}, protocol.CoApproval{}, protocol.CoApprovalRequest{},
		protocol.AuditBatch{}, protocol.RecoveryEscrow{}, protocol.RecoveryAck{},
	} {
		types[reflect.TypeOf(v).Name()] = reflect.TypeOf(v)
	}
}

func loadVectors(t *testing.T) []vectors.Vector {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^(ok|kat|R[0-9]{2}|RL[0-9]{1,2})-`)
	var vs []vectors.Vector
	for _, f := range files {
		if !name.MatchString(filepath.Base(f)) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vectors.Vector
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.Name+".json" != filepath.Base(f) {
			t.Fatalf("%s: name %q", f, v.Name)
		}
		vs = append(vs, v)
	}
	if len(vs) < 100 {
		t.Fatalf("only %d vectors in testdata", len(vs))
	}
	return vs
}

// TestVectors checks every vector's outcome exactly: success, or an error
// that is the named sentinel and no other sentinel the name does not imply.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if v.Rule != "" && !strings.HasPrefix(v.Name, strings.ReplaceAll(v.Rule, "-", "")+"-") {
				t.Fatalf("rule %s does not match the file name", v.Rule)
			}
			if strings.HasPrefix(v.Name, "R") && v.Expect == "ok" {
				t.Fatal("a rule vector must expect a rejection")
			}
			if _, ok := vectors.Kinds[v.Kind]; !ok {
				t.Fatalf("unknown kind %q", v.Kind)
			}
			if !vectors.TextKinds[v.Kind] && !lowerHex.MatchString(v.Input) {
				t.Fatal("input is not lowercase hex")
			}
			err := evaluate(t, v)
			if v.Expect == "ok" {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				return
			}
			want, ok := sentinels[v.Expect]
			if !ok {
				t.Fatalf("unknown expectation %q", v.Expect)
			}
			if !errors.Is(err, want) {
				t.Fatalf("want %s, got %v", v.Expect, err)
			}
			for name, s := range sentinels {
				if errors.Is(err, s) && !errors.Is(want, s) {
					t.Fatalf("want exactly %s, but the error is also %s: %v", v.Expect, name, err)
				}
			}
		})
	}
}

// lowerHex is the one encoding of bytes in vector files.
var lowerHex = regexp.MustCompile(`^([0-9a-f]{2})*$`)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func identityKey(t *testing.T, s string) protocol.IdentityKey {
	var k protocol.IdentityKey
	if copy(k[:], mustHex(t, s)) != len(k) {
		t.Fatal("identity key length")
	}
	return k
}

func verifyEd(t *testing.T, in string, ty protocol.DocType, key protocol.IdentityKey, doc any) error {
	s, err := protocol.DecodeSigned(mustHex(t, in))
	if err != nil {
		return err
	}
	return s.VerifyEd25519(ty, key, doc)
}

var docTypes = map[string]protocol.DocType{}

func init() {
	for ty := protocol.DocType(1); ty <= protocol.DocEndReceipt; ty++ {
		docTypes[ty.String()] = ty
	}
}

func flowByName(t *testing.T, name string) protocol.Flow {
	for f := protocol.Flow(1); f < 32; f++ {
		if f.Name() == name {
			return f
		}
	}
	t.Fatalf("unknown flow %q", name)
	return 0
}

func side(t *testing.T, s vectors.Side) protocol.HandshakeConfig {
	static, err := protocol.CipherSuite.GenerateKeypair(bytes.NewReader(mustHex(t, s.Static)))
	if err != nil {
		t.Fatal(err)
	}
	c := protocol.HandshakeConfig{Flow: flowByName(t, s.Flow), Static: static, PSK: mustHex(t, s.PSK),
		InitiatorRelay: s.InitiatorRelay, ResponderRelay: s.ResponderRelay, Rand: bytes.NewReader(mustHex(t, s.Ephemeral))}
	if len(c.PSK) == 0 {
		c.PSK = nil
	}
	copy(c.PeerStatic[:], mustHex(t, s.PeerStatic))
	return c
}

// pipe is a Transport that records what it writes and reads from a channel.
type pipe struct {
	out, in chan []byte
}

func (p *pipe) WriteMessage(_ context.Context, m []byte) error { p.out <- bytes.Clone(m); return nil }
func (p *pipe) ReadMessage(ctx context.Context) ([]byte, error) {
	select {
	case m := <-p.in:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runHandshake completes (or fails) a vector's handshake; the error is
// the responder's if it failed, else the initiator's.
func runHandshake(t *testing.T, h *vectors.Handshake, input []byte) (is, rs *protocol.Session, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ip := &pipe{out: make(chan []byte, 1), in: make(chan []byte, 1)}
	type res struct {
		s   *protocol.Session
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := protocol.Initiate(ctx, side(t, h.Initiator), ip)
		done <- res{s, err}
	}()
	var msg1 []byte
	select {
	case msg1 = <-ip.out:
	case r := <-done:
		return nil, nil, r.err
	}
	if h.Msg1 != "" && hex.EncodeToString(msg1) != h.Msg1 {
		t.Fatalf("msg1 %x, want %s", msg1, h.Msg1)
	}
	if h.Tamper == "msg1" {
		msg1 = input
	}
	rp := &pipe{out: make(chan []byte, 1)}
	rs, err = protocol.RespondMessage(ctx, side(t, h.Responder), msg1, rp)
	if err != nil {
		cancel()
		<-done
		return nil, nil, err
	}
	msg2 := <-rp.out
	if h.Msg2 != "" && hex.EncodeToString(msg2) != h.Msg2 {
		t.Fatalf("msg2 %x, want %s", msg2, h.Msg2)
	}
	if h.Tamper == "msg2" {
		msg2 = input
	}
	ip.in <- msg2
	r := <-done
	if r.err != nil {
		return nil, nil, r.err
	}
	if !bytes.Equal(r.s.HandshakeHash(), rs.HandshakeHash()) {
		t.Fatal("handshake hashes differ")
	}
	if h.Hash != "" && hex.EncodeToString(r.s.HandshakeHash()) != h.Hash {
		t.Fatalf("hash %x, want %s", r.s.HandshakeHash(), h.Hash)
	}
	return r.s, rs, nil
}

func evaluate(t *testing.T, v vectors.Vector) error {
	c := v.Context
	now := time.Unix(c.Now, 0)
	switch v.Kind {
	case "cbor":
		ty, ok := types[c.Type]
		if !ok {
			t.Fatalf("unknown type %q", c.Type)
		}
		return protocol.Unmarshal(mustHex(t, v.Input), reflect.New(ty).Interface())
	case "signed":
		ty, ok := types[c.Type]
		if !ok {
			t.Fatalf("unknown type %q", c.Type)
		}
		s, err := protocol.DecodeSigned(mustHex(t, v.Input))
		if err != nil {
			return err
		}
		doc := reflect.New(ty).Interface()
		switch c.Alg {
		case "ed25519":
			return s.VerifyEd25519(docTypes[c.DocType], identityKey(t, c.Key), doc)
		case "p256":
			var k protocol.ApprovalKey
			copy(k[:], mustHex(t, c.Key))
			return s.VerifyP256(docTypes[c.DocType], k, doc)
		}
		t.Fatalf("unknown alg %q", c.Alg)
	case "tech-cert":
		var tc protocol.TechCert
		if err := verifyEd(t, v.Input, protocol.DocTechCert, identityKey(t, c.MSPKey), &tc); err != nil {
			return err
		}
		return tc.Valid(now)
	case "device-cert":
		var dc protocol.DeviceCert
		if err := verifyEd(t, v.Input, protocol.DocDeviceCert, identityKey(t, c.MSPKey), &dc); err != nil {
			return err
		}
		return dc.Valid(now)
	case "authorize":
		msp := identityKey(t, c.MSPKey)
		var tc protocol.TechCert
		var dc protocol.DeviceCert
		var p protocol.Policy
		for _, e := range []error{
			verifyEd(t, c.Policy, protocol.DocPolicy, msp, &p),
			verifyEd(t, v.Input, protocol.DocTechCert, msp, &tc),
			verifyEd(t, c.DeviceCert, protocol.DocDeviceCert, msp, &dc),
			p.Check(), tc.Valid(now), dc.Valid(now),
		} {
			if e != nil {
				return e
			}
		}
		return p.Authorize(&tc, &dc)
	case "device-check":
		msp := identityKey(t, c.MSPKey)
		var dc protocol.DeviceCert
		var p protocol.Policy
		for _, e := range []error{
			verifyEd(t, c.Policy, protocol.DocPolicy, msp, &p),
			verifyEd(t, v.Input, protocol.DocDeviceCert, msp, &dc),
			p.Check(), dc.Valid(now),
		} {
			if e != nil {
				return e
			}
		}
		return p.CheckDevice(&dc)
	case "domain-request":
		var r protocol.DomainRequest
		if err := protocol.DecodeMsg(mustHex(t, v.Input), protocol.MsgDomainRequest, &r); err != nil {
			return err
		}
		msp := identityKey(t, c.MSPKey)
		var p protocol.Policy
		if err := verifyEd(t, c.Policy, protocol.DocPolicy, msp, &p); err != nil {
			return err
		}
		if err := p.Check(); err != nil {
			return err
		}
		var peer protocol.NoiseKey
		copy(peer[:], mustHex(t, c.PeerStatic))
		_, err := protocol.VerifyDomainRequest(&r, protocol.DomainCheck{MSPKey: msp, Policy: &p, Peer: peer, Now: now})
		return err
	case "policy-check":
		var p protocol.Policy
		if err := verifyEd(t, v.Input, protocol.DocPolicy, identityKey(t, c.MSPKey), &p); err != nil {
			return err
		}
		return p.Check()
	case "policy-upgrade":
		return protocol.CheckPolicyUpgrade(c.Held, c.Next)
	case "approval":
		s, err := protocol.DecodeSigned(mustHex(t, v.Input))
		if err != nil {
			return err
		}
		var k protocol.ApprovalKey
		copy(k[:], mustHex(t, c.Key))
		var a protocol.Approval
		if err := s.VerifyP256(protocol.DocApproval, k, &a); err != nil {
			return err
		}
		x := c.ApprovalExpect
		e := protocol.ApprovalExpect{Serial: x.Serial, HandshakeHash: mustHex(t, x.HandshakeHash),
			Action: x.Action, Number: x.Number, Now: now, RequireReason: x.RequireReason, TicketPattern: x.TicketPattern}
		copy(e.DeviceID[:], mustHex(t, x.DeviceID))
		copy(e.Session[:], mustHex(t, x.Session))
		if len(x.Accounts) > 0 {
			e.AllowAccount = func(k uint8) bool { return slices.Contains(x.Accounts, int(k)) }
		}
		return a.Match(e)
	case "co-approval":
		msp := identityKey(t, c.MSPKey)
		var ana, first protocol.TechCert
		var dc protocol.DeviceCert
		var p protocol.Policy
		for _, e := range []error{
			verifyEd(t, c.Policy, protocol.DocPolicy, msp, &p),
			verifyEd(t, c.TechCert, protocol.DocTechCert, msp, &ana),
			verifyEd(t, c.FirstCert, protocol.DocTechCert, msp, &first),
			verifyEd(t, c.DeviceCert, protocol.DocDeviceCert, msp, &dc),
			p.Check(), dc.Valid(now),
		} {
			if e != nil {
				return e
			}
		}
		s, err := protocol.DecodeSigned(mustHex(t, v.Input))
		if err != nil {
			return err
		}
		x := c.CoApprovalExpect
		e := protocol.CoApprovalExpect{Approver: &ana, First: &first, Device: &dc, Policy: &p,
			HandshakeHash: mustHex(t, x.HandshakeHash), Action: x.Action, Account: x.Account, Now: now}
		copy(e.Session[:], mustHex(t, x.Session))
		copy(e.FirstHash[:], mustHex(t, x.First))
		_, err = protocol.VerifyCoApproval(s, e)
		return err
	case "qr":
		_, err := protocol.DecodeQR(v.Input, now)
		return err
	case "handshake":
		_, _, err := runHandshake(t, c.Handshake, mustHex(t, v.Input))
		return err
	case "transport":
		_, rs, err := runHandshake(t, c.Handshake, nil)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		for i, m := range c.Messages {
			pt, err := rs.Open(mustHex(t, m))
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			if i < len(c.Plaintexts) && hex.EncodeToString(pt) != c.Plaintexts[i] {
				t.Fatalf("message %d: plaintext %x", i, pt)
			}
		}
		return nil
	case "e2e":
		_, err := protocol.ParseE2EFrame(mustHex(t, v.Input))
		return err
	case "ipc":
		_, err := protocol.ReadIPCFrame(bytes.NewReader(mustHex(t, v.Input)))
		return err
	case "enroll-token":
		_, err := protocol.DecodeEnrollToken(v.Input, now)
		return err
	case "msg":
		ty, ok := types[c.Type]
		if !ok {
			t.Fatalf("unknown type %q", c.Type)
		}
		body := reflect.New(ty).Interface()
		if err := protocol.DecodeMsg(mustHex(t, v.Input), protocol.MsgType(c.MsgType), body); err != nil {
			return err
		}
		if ch, ok := body.(interface{ Check() error }); ok { // RecoveryEscrow, RecoveryAck
			return ch.Check()
		}
		return nil
	case "recovery-code":
		code, err := protocol.ParseRecoveryCode(v.Input)
		if err != nil {
			return err
		}
		if hex.EncodeToString(code[:]) != c.Output {
			t.Fatalf("code %x, want %s", code[:], c.Output)
		}
		return nil
	case "sign-in":
		var r protocol.ConsoleRequest
		if err := protocol.DecodeMsg(mustHex(t, v.Input), protocol.MsgConsoleRequest, &r); err != nil {
			return err
		}
		var sid protocol.SessionID
		copy(sid[:], mustHex(t, c.Session))
		return r.Check(sid, now)
	case "transfer":
		x := protocol.NewTransfer(identityKey(t, c.MSPKey))
		for i, m := range c.Messages {
			var p protocol.PolicyPush
			if i == 0 && protocol.MsgType(c.MsgType) == protocol.MsgPairResponse {
				var r protocol.PairResponse
				if err := protocol.DecodeMsg(mustHex(t, m), protocol.MsgPairResponse, &r); err != nil {
					return err
				}
				p = *r.Page()
			} else if err := protocol.DecodeMsg(mustHex(t, m), protocol.MsgPolicyPush, &p); err != nil {
				return err
			}
			if err := x.Add(&p); err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
		}
		return x.Finish()
	case "kdf":
		want := mustHex(t, v.Input)
		got, err := protocol.Derive(mustHex(t, c.Secret), protocol.Label(c.Label), mustHex(t, c.DeriveContext), len(want))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("derived %x", got)
		}
		return nil
	case "proof":
		h := mustHex(t, c.HandshakeHash)
		switch protocol.MsgType(c.MsgType) {
		case protocol.MsgEnrollRequest:
			var r protocol.EnrollRequest
			if err := protocol.DecodeMsg(mustHex(t, v.Input), protocol.MsgEnrollRequest, &r); err != nil {
				return err
			}
			if !r.IdentityKey.Verify(protocol.ProofInput("identity", h), r.IdentitySig) {
				return protocol.ErrBadSignature
			}
		case protocol.MsgPairRequest:
			var r protocol.PairRequest
			if err := protocol.DecodeMsg(mustHex(t, v.Input), protocol.MsgPairRequest, &r); err != nil {
				return err
			}
			if !r.IdentityKey.Verify(protocol.ProofInput("identity", h), r.IdentitySig) ||
				!r.ApprovalKey.Verify(protocol.ProofInput("approval", h), r.ApprovalSig) {
				return protocol.ErrBadSignature
			}
		default:
			t.Fatalf("msg_type %d", c.MsgType)
		}
		return nil
	case "login-chain":
		q, err := protocol.DecodeQR(c.QR, now)
		if err != nil {
			return err
		}
		psk, err := protocol.Derive(q.Secret[:], protocol.LabelQRPSK, nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		sid, err := protocol.DeriveSessionID(q.Secret[:], protocol.LabelQRSession)
		if err != nil {
			t.Fatal(err)
		}
		h := *c.Handshake
		h.Initiator.PSK, h.Responder.PSK = hex.EncodeToString(psk), hex.EncodeToString(psk)
		if h.Initiator.PeerStatic != hex.EncodeToString(q.Static[:]) || h.Responder.ResponderRelay != q.Relay {
			t.Fatal("handshake does not use the QR's static key and relay")
		}
		hello, err := protocol.ParseE2EFrame(mustHex(t, c.Messages[0]))
		if err != nil {
			return err
		}
		if hello.Session != sid || hello.Kind != protocol.E2EHello || hex.EncodeToString(hello.Body) != h.Msg1 ||
			hello.Relay != h.Initiator.InitiatorRelay {
			t.Fatalf("e2e hello %+v does not carry the session and message 1", hello)
		}
		is, _, err := runHandshake(t, &h, nil)
		if err != nil {
			return err
		}
		s, err := protocol.DecodeSigned(mustHex(t, v.Input))
		if err != nil {
			return err
		}
		var k protocol.ApprovalKey
		copy(k[:], mustHex(t, c.Key))
		var a protocol.Approval
		if err := s.VerifyP256(protocol.DocApproval, k, &a); err != nil {
			return err
		}
		return a.Match(protocol.ApprovalExpect{Serial: c.ApprovalExpect.Serial, DeviceID: q.DeviceID, Session: sid,
			HandshakeHash: is.HandshakeHash(), Action: q.Action, Now: now})
	case "audit-chain":
		var recs []protocol.Signed
		for _, m := range c.Messages {
			s, err := protocol.DecodeSigned(mustHex(t, m))
			if err != nil {
				return err
			}
			recs = append(recs, s)
		}
		var dev protocol.DeviceID
		copy(dev[:], mustHex(t, c.DeviceID))
		after := [32]byte(mustHex(t, c.AfterHash))
		good, err := protocol.VerifyAuditChain(identityKey(t, c.Key), dev, c.AfterSeq, after, recs)
		if err != nil {
			return err
		}
		for i, s := range recs {
			h, err := s.Hash()
			if err != nil || i >= len(c.Hashes) || hex.EncodeToString(h[:]) != c.Hashes[i] {
				t.Fatalf("record %d: hash %x", i, h)
			}
			if good[i].Seq != c.AfterSeq+uint64(i)+1 {
				t.Fatalf("record %d: seq %d", i, good[i].Seq)
			}
		}
		return nil
	case "relay-frame":
		in := mustHex(t, v.Input)
		f, err := protocol.DecodeRelayFrame(in)
		if err != nil {
			return err
		}
		if again, err := protocol.EncodeRelayFrame(f); err != nil || !bytes.Equal(again, in) {
			t.Fatalf("re-encodes differently: %v", err)
		}
		return nil
	case "relay-ticket":
		in := mustHex(t, v.Input)
		tk, err := protocol.DecodeRelayPushTicket(in)
		if err != nil {
			return err
		}
		if again, err := protocol.AppendRelayPushTicket(nil, tk); err != nil || !bytes.Equal(again, in) {
			t.Fatalf("re-encodes differently: %v", err)
		}
		return nil
	case "relay-auth":
		msg := protocol.RelayAuthMessage(mustHex(t, c.Secret))
		if hex.EncodeToString(msg) != c.Output {
			t.Fatalf("signing input %x", msg)
		}
		if !identityKey(t, c.Key).Verify(msg, mustHex(t, v.Input)) {
			return protocol.ErrBadSignature
		}
		return nil
	case "relay-pin":
		if pin := protocol.RelayPin(mustHex(t, v.Input)); hex.EncodeToString(pin[:]) != c.Output {
			t.Fatalf("pin %x", pin)
		}
		return nil
	case "ipc-msg":
		in := mustHex(t, v.Input)
		r := bytes.NewReader(in)
		body, err := protocol.ReadIPCFrame(r)
		if err != nil {
			return err
		}
		if r.Len() != 0 {
			t.Fatalf("%d bytes after the frame", r.Len())
		}
		ty, msg, err := protocol.DecodeIPCMsg(body)
		if err != nil {
			return err
		}
		if uint8(ty) != c.MsgType || reflect.TypeOf(msg).Elem().Name() != c.Type {
			t.Fatalf("decoded type %d %T", ty, msg)
		}
		again, err := protocol.EncodeIPCMsg(ty, msg)
		if err != nil || !bytes.Equal(again, body) {
			t.Fatalf("re-encodes differently: %x %v", again, err)
		}
		return nil
	case "relay-addr":
		return protocol.CheckRelayAddr(v.Input)
	case "peer-addr":
		a, err := protocol.ParsePeerAddr(v.Input)
		if err == nil && a.String() != v.Input {
			t.Fatalf("re-encodes as %q", a.String())
		}
		return err
	case "mailbox":
		if got := protocol.MailboxFor(identityKey(t, v.Input).Public()).String(); got != c.Text {
			t.Fatalf("mailbox %s", got)
		}
		return nil
	case "fingerprint":
		var f protocol.Fingerprint
		switch key := mustHex(t, v.Input); c.KeyKind {
		case "noise":
			f = protocol.NoiseKey(key).Fingerprint()
		case "identity":
			f = protocol.IdentityKey(key).Fingerprint()
		case "approval":
			f = protocol.ApprovalKey(key).Fingerprint()
		default:
			t.Fatalf("unknown key kind %q", c.KeyKind)
		}
		if f.String() != c.Text {
			t.Fatalf("fingerprint %s", f)
		}
		return nil
	case "otp":
		tk, err := protocol.SharedTechKey(mustHex(t, c.Secret), c.TechID)
		if err != nil {
			return err
		}
		if hex.EncodeToString(tk) != c.TechKey {
			t.Fatalf("tech key %x", tk)
		}
		var dev protocol.DeviceID
		copy(dev[:], mustHex(t, c.DeviceID))
		ck, err := protocol.SharedCodeKey(tk, dev)
		if err != nil {
			return err
		}
		if hex.EncodeToString(ck) != c.CodeKey {
			t.Fatalf("code key %x", ck)
		}
		code, err := protocol.TOTP(ck, c.Now, c.Period, c.Digits)
		if err != nil {
			return err
		}
		if code != v.Input {
			t.Fatalf("code %s", code)
		}
		return nil
	}
	t.Fatalf("unknown kind %q", v.Kind)
	return nil
}

// TestVectorsCoverRules checks SPEC.md's MUST-reject list against the
// vectors: every rule R-nn that cites vectors has at least one, and every
// rule vector's rule is in SPEC.md.
func TestVectorsCoverRules(t *testing.T) {
	spec, err := os.ReadFile("../SPEC.md")
	if err != nil {
		t.Skipf("SPEC.md: %v", err)
	}
	ruleLine := regexp.MustCompile(`(?m)^\| \*\*(R-[0-9]{2})\*\* \|.*\|(.*)\|$`)
	rules := map[string]string{}
	for _, m := range ruleLine.FindAllStringSubmatch(string(spec), -1) {
		rules[m[1]] = m[2]
	}
	if len(rules) == 0 {
		t.Fatal("no rules found in SPEC.md")
	}
	relayRules := regexp.MustCompile(`(?m)^\| (RL-[0-9]+) \|`)
	for _, m := range relayRules.FindAllStringSubmatch(string(spec), -1) {
		rules[m[1]] = "relay rule: vectors cited in the text"
	}
	have := map[string][]string{}
	for _, v := range loadVectors(t) {
		if v.Rule == "" {
			continue
		}
		if _, ok := rules[v.Rule]; !ok {
			t.Errorf("%s: rule %s not in SPEC.md", v.Name, v.Rule)
		}
		have[v.Rule] = append(have[v.Rule], v.Name)
	}
	for r, cell := range rules {
		noVector := strings.Contains(cell, "no vector") || strings.HasPrefix(r, "RL-")
		if len(have[r]) == 0 && !noVector {
			t.Errorf("%s has no vector", r)
		}
		for _, n := range have[r] {
			if !strings.Contains(string(spec), n) {
				t.Errorf("SPEC.md does not cite %s under %s", n, r)
			}
		}
	}
}
