//go:build (linux || darwin) && cgo

package core_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitkey/jitkey/macos/plugin/core"
	"github.com/jitkey/jitkey/protocol"
)

// The push messages are reserved in the common brief (types 9 and 10)
// and not yet in protocol/; the peer encodes them from that definition.
type pushBody struct {
	Email string `cbor:"1,keyasint"`
}

type numberBody struct {
	Number uint8 `cbor:"1,keyasint"`
}

const (
	msgPush   = 9
	msgNumber = 10
)

func msg(t testing.TB, typ protocol.IPCMsgType, v any) []byte {
	t.Helper()
	if typ == msgNumber {
		b, err := protocol.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{msgNumber}, b...)
	}
	b, err := protocol.EncodeIPCMsg(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// peer is a Go agent stand-in on a Unix socket that speaks SPEC 5.7 with
// protocol's own encoder: it runs script on the accepted connection.
func peer(t *testing.T, script func(c net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		script(c)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return path
}

func send(t *testing.T, c net.Conn, body []byte) {
	f, err := protocol.AppendIPCFrame(nil, body)
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := c.Write(f); err != nil {
		t.Error(err)
	}
}

func recv(t *testing.T, c net.Conn) []byte {
	b, err := protocol.ReadIPCFrame(c)
	if err != nil {
		t.Errorf("peer read: %v", err)
	}
	return b
}

func dial(t *testing.T, path string) (*core.Core, *core.Conn) {
	t.Helper()
	c, err := core.Connect(path, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	k := core.New()
	t.Cleanup(func() { c.Close(); k.Close() })
	return k, c
}

// TestPushNumber: Begin, Status, QR, then the user types an email: Push
// (9) goes out as the common brief defines it, the agent's Number (10)
// is shown, then the Credential arrives.
func TestPushNumber(t *testing.T) {
	sess := protocol.SessionID{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6}
	path := peer(t, func(c net.Conn) {
		typ, v, err := protocol.DecodeIPCMsg(recv(t, c))
		if err != nil || typ != protocol.IPCMsgBegin || *v.(*protocol.IPCBegin) != (protocol.IPCBegin{Surface: "logon"}) {
			t.Errorf("begin: %d %+v %v", typ, v, err)
			return
		}
		send(t, c, msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true}))
		send(t, c, msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:one", PNG: []byte{1, 2, 3}, Expires: 100}))
		b := recv(t, c)
		var p pushBody
		if len(b) < 2 || b[0] != msgPush || protocol.Unmarshal(b[1:], &p) != nil || p.Email != "nik@example.com" {
			t.Errorf("push %x", b)
			return
		}
		send(t, c, msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:two", Expires: 160}))
		send(t, c, msg(t, msgNumber, &numberBody{Number: 42}))
		send(t, c, msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("Pw-24-characters-long-ok"), Session: sess, Deadline: 1_800_000_000}))
	})
	k, c := dial(t, path)
	if err := c.Write(k.Begin("logon")); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.ShowingQR)
	if k.QRText() != "JK:one" || !bytes.Equal(k.QRPNG(), []byte{1, 2, 3}) {
		t.Fatalf("QR %q %x", k.QRText(), k.QRPNG())
	}
	if k.Code("nik", "123456") != nil {
		t.Fatal("code accepted while Status said no OTP")
	}
	if err := c.Write(k.Push("nik@example.com")); err != nil {
		t.Fatal(err)
	}
	if k.State() != core.PushSent || k.Push("again@example.com") != nil {
		t.Fatal("second push accepted")
	}
	run(t, k, c, core.PushNumber)
	if k.Number() != 42 || k.QRText() != "JK:two" {
		t.Fatalf("number %d, qr %q", k.Number(), k.QRText())
	}
	run(t, k, c, core.Credential)
	if k.Username() != "msp-nik" || string(k.Password()) != "Pw-24-characters-long-ok" || k.Session() != sess {
		t.Fatalf("credential %q %q %x", k.Username(), k.Password(), k.Session())
	}
}

// TestSecondApproval (SPEC.md 5.7.7): Status with SecondApproval moves
// the login to SecondApproval from showing the QR code: the code is
// dropped, a later QR or a push's Number is ignored, neither Push nor
// Code goes out, a change of Online keeps it waiting, and the Credential
// ends it.
func TestSecondApproval(t *testing.T) {
	sess := protocol.SessionID{4, 2}
	path := peer(t, func(c net.Conn) {
		recv(t, c)
		send(t, c, msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true}))
		send(t, c, msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:one", PNG: []byte{1, 2, 3}, Expires: 100}))
		recv(t, c) // the test's go-ahead: the QR is shown
		send(t, c, msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, SecondApproval: true}))
		send(t, c, msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:late", PNG: []byte{4}, Expires: 130}))
		send(t, c, msg(t, msgNumber, &numberBody{Number: 42}))
		send(t, c, msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{SecondApproval: true}))
		send(t, c, msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("Pw-24-characters-long-ok"), Session: sess, Deadline: 1_800_000_000}))
	})
	k, c := dial(t, path)
	if err := c.Write(k.Begin("logon")); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.ShowingQR)
	// The go-ahead to the peer: any frame.
	if err := c.Write([]byte{byte(protocol.IPCMsgEnd), 0xa0}); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.SecondApproval)
	if k.QRText() != "" || len(k.QRPNG()) != 0 || k.OTP() || !k.Online() {
		t.Fatalf("waiting: qr %q %x, otp %v, online %v", k.QRText(), k.QRPNG(), k.OTP(), k.Online())
	}
	for range 3 { // the late QR, the Number, the offline Status
		b, err := c.Read(10_000)
		if err != nil {
			t.Fatal(err)
		}
		if ev := k.OnMessage(b); ev != core.EvStatus || k.State() != core.SecondApproval || k.QRText() != "" {
			t.Fatalf("event %d, state %d, qr %q", ev, k.State(), k.QRText())
		}
	}
	if k.Online() || k.Push("nik@example.com") != nil || k.Code("nik", "123456") != nil {
		t.Fatalf("online %v, or a push or code accepted while waiting", k.Online())
	}
	run(t, k, c, core.Credential)
	if k.Username() != "msp-nik" || k.Session() != sess {
		t.Fatalf("credential %q %x", k.Username(), k.Session())
	}
}

// TestOfflineCode: while Status says OTP, the user's username and code go
// out as Code (8) and a refusal comes back as Denied.
func TestOfflineCode(t *testing.T) {
	path := peer(t, func(c net.Conn) {
		recv(t, c)
		send(t, c, msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{OTP: true}))
		typ, v, err := protocol.DecodeIPCMsg(recv(t, c))
		if err != nil || typ != protocol.IPCMsgCode || *v.(*protocol.IPCCode) != (protocol.IPCCode{Username: "nik", Code: "12345678"}) {
			t.Errorf("code: %d %+v %v", typ, v, err)
			return
		}
		send(t, c, msg(t, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: protocol.CodeRefused, Reason: "wrong username or code"}))
	})
	k, c := dial(t, path)
	if err := c.Write(k.Begin("unlock")); err != nil {
		t.Fatal(err)
	}
	for k.State() == core.Waiting && !k.OTP() {
		b, err := c.Read(10_000)
		if err != nil {
			t.Fatal(err)
		}
		k.OnMessage(b)
	}
	for _, bad := range [][2]string{{"nik", "12345"}, {"nik", "12345a"}, {"", "123456"}, {string(bytes.Repeat([]byte{'a'}, 65)), "123456"}} {
		if k.Code(bad[0], bad[1]) != nil {
			t.Fatalf("code %q accepted", bad)
		}
	}
	if err := c.Write(k.Code("nik", "12345678")); err != nil {
		t.Fatal(err)
	}
	run(t, k, c, core.Denied)
	if k.DeniedCode() != int(protocol.CodeRefused) || k.Reason() != "wrong username or code" {
		t.Fatalf("%d %q", k.DeniedCode(), k.Reason())
	}
}

// TestUnexpected: a message not expected in the state ends the exchange
// (SPEC 5.7: a surface treats it as the end).
func TestUnexpected(t *testing.T) {
	sess := protocol.SessionID{1}
	cases := map[string][][]byte{
		"number without push": {msg(t, msgNumber, &numberBody{Number: 42})},
		"ended during login":  {msg(t, protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true})},
		"number out of range": {msg(t, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:x"}), msg(t, msgNumber, &numberBody{Number: 9})},
		"empty password":      {msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Session: sess})},
		"begin from agent":    {msg(t, protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "logon"})},
		"truncated":           {msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{})[:2]},
		"nul in username":     {msg(t, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp\x00x", Password: []byte("p"), Session: sess})},
	}
	for name, msgs := range cases {
		t.Run(name, func(t *testing.T) {
			k := core.New()
			defer k.Close()
			if k.OnMessage(msgs[0]) != core.EvError || k.State() != core.Failed {
				t.Fatal("message accepted before Begin")
			}
			k.Wipe()
			if k.Begin("logon") == nil {
				t.Fatal("begin refused")
			}
			if name == "number out of range" {
				// Put the core where a Number is expected.
				k.OnMessage(msgs[0])
				k.Push("nik@example.com")
				msgs = msgs[1:]
			}
			if ev := k.OnMessage(msgs[0]); ev != core.EvError || k.State() != core.Failed || !k.Done() {
				t.Fatalf("event %d state %d", ev, k.State())
			}
			if k.OnMessage(msg(t, protocol.IPCMsgStatus, &protocol.IPCStatus{})) != core.EvError {
				t.Fatal("message accepted after failure")
			}
		})
	}
	k := core.New()
	defer k.Close()
	if k.Begin("teleport") != nil || k.Begin("sudo") != nil {
		t.Fatal("surface other than logon, unlock, elevate accepted")
	}
	k.Begin("logon")
	if k.Begin("logon") != nil {
		t.Fatal("second begin")
	}
	k.OnLost()
	if k.State() != core.Failed {
		t.Fatal("lost connection not final")
	}
}

// TestFrames: the C transport refuses frame lengths 0 and above 16 384,
// and times out on a silent peer.
func TestFrames(t *testing.T) {
	for name, hdr := range map[string]uint32{"zero": 0, "too long": protocol.MaxIPCFrame + 1} {
		t.Run(name, func(t *testing.T) {
			path := peer(t, func(c net.Conn) {
				_ = binary.Write(c, binary.BigEndian, hdr)
				_, _ = c.Write(make([]byte, 16))
			})
			_, c := dial(t, path)
			if _, err := c.Read(5_000); err == nil {
				t.Fatal("frame accepted")
			}
		})
	}
	release := make(chan struct{})
	path := peer(t, func(c net.Conn) {
		<-release
		send(t, c, bytes.Repeat([]byte{7}, protocol.MaxIPCFrame))
	})
	_, c := dial(t, path)
	if _, err := c.Read(50); err == nil {
		t.Fatal("read returned without data")
	}
	close(release)
	if b, err := c.Read(10_000); err != nil || len(b) != protocol.MaxIPCFrame {
		t.Fatalf("largest frame: %d %v", len(b), err)
	}
	if c.Write(nil) == nil || c.Write(make([]byte, protocol.MaxIPCFrame+1)) == nil {
		t.Fatal("bad frame written")
	}
}
