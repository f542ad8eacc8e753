//go:build (linux || darwin) && cgo

package core_test

import (
	"bytes"
	"testing"

	"github.com/jitkey/jitkey/macos/plugin/core"
	"github.com/jitkey/jitkey/protocol"
)

// goAccepts is the agent's Go codec's verdict on an agent -> surface
// message body (the push Number from the common brief's definition).
func goAccepts(b []byte) bool {
	if len(b) < 2 || len(b) > protocol.MaxIPCFrame {
		return false
	}
	switch b[0] {
	case msgNumber:
		var n numberBody
		return protocol.Unmarshal(b[1:], &n) == nil && n.Number >= 10 && n.Number <= 99
	case byte(protocol.IPCMsgStatus), byte(protocol.IPCMsgQR), byte(protocol.IPCMsgCredential), byte(protocol.IPCMsgDenied), byte(protocol.IPCMsgEnded):
		_, _, err := protocol.DecodeIPCMsg(b)
		return err == nil
	}
	return false
}

// FuzzDecode: the plugin's C decoder accepts exactly what the agent's Go
// codec accepts, and what it accepts, the state machine takes in without
// reading out of bounds (the body sits in C memory of its exact length);
// a QR's text and a Number's value come out as Go decodes them.
func FuzzDecode(f *testing.F) {
	sess := protocol.SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, s := range [][]byte{
		msg(f, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true}),
		msg(f, protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:abc", PNG: []byte{0x89, 'P', 'N', 'G'}, Terminal: "█▀", Expires: 1_800_000_000}),
		msg(f, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("p4ss"), Session: sess, Deadline: 5}),
		msg(f, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 5, Reason: "denied by the technician"}),
		msg(f, protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true}),
		msg(f, msgNumber, &numberBody{Number: 42}),
		msg(f, msgNumber, &numberBody{Number: 100}),
		{msgPush, 0xa1, 0x01, 0x61, 'a'},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, cok := core.Decode(b)
		gok := goAccepts(b)
		if cok != gok {
			t.Fatalf("C accepts %v, Go accepts %v: %x", cok, gok, b)
		}
		k := core.New()
		defer k.Close()
		k.Begin("logon")
		if typ == msgNumber {
			k.Push("nik@example.com")
		}
		ev := k.OnMessage(b)
		if !cok {
			if ev != core.EvError || k.State() != core.Failed {
				t.Fatalf("refused message gave event %d state %d", ev, k.State())
			}
			return
		}
		switch typ {
		case byte(protocol.IPCMsgQR):
			_, v, _ := protocol.DecodeIPCMsg(b)
			q := v.(*protocol.IPCQR)
			if ev == core.EvQR && (k.QRText() != q.Text || !bytes.Equal(k.QRPNG(), q.PNG) && len(q.PNG) > 0) {
				t.Fatalf("QR %q / %q", k.QRText(), q.Text)
			}
		case msgNumber:
			var n numberBody
			_ = protocol.Unmarshal(b[1:], &n)
			if ev != core.EvNumber || k.Number() != int(n.Number) {
				t.Fatalf("number %d, event %d, want %d", k.Number(), ev, n.Number)
			}
		case byte(protocol.IPCMsgStatus):
			_, v, _ := protocol.DecodeIPCMsg(b)
			s := v.(*protocol.IPCStatus)
			if ev != core.EvStatus || k.Online() != s.Online || k.OTP() != s.OTP {
				t.Fatalf("status %v %v, want %+v", k.Online(), k.OTP(), s)
			}
		}
	})
}
