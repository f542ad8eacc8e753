//go:build (linux || darwin) && cgo

package core_test

import (
	"bytes"
	"testing"

	"github.com/jitkey/jitkey/macos/plugin/core"
	"github.com/jitkey/jitkey/protocol"
)

// FuzzOnMessage: the login state machine takes any agent message
// without reading out of bounds (the body sits in C memory of its exact
// length): a message the codec refuses fails the login; a QR's text, a
// Number's value and a Status come out as the Go codec decodes them.
// (The codec itself, internal/ipcc, is fuzzed against the Go codec
// there: FuzzDecode.)
func FuzzOnMessage(f *testing.F) {
	sess := protocol.SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, s := range [][]byte{
		msg(f, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true}),
		msg(f, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, SecondApproval: true}),
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
			if ev != core.EvStatus || k.Online() != s.Online || k.OTP() != s.OTP || (k.State() == core.SecondApproval) != s.SecondApproval {
				t.Fatalf("status %v %v state %d, want %+v", k.Online(), k.OTP(), k.State(), s)
			}
		}
	})
}
