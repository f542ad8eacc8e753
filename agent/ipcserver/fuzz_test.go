package ipcserver

import (
	"bytes"
	"testing"

	"github.com/jitkey/jitkey/protocol"
)

// FuzzDecodeMessage feeds arbitrary frame bodies to the decoding the
// agent and the Go client do (parseMsg, then the strict CBOR decoding of
// the message type's body, with the bounds of Push and Number): nothing
// panics, and whatever decodes re-encodes to the very same body (one
// encoding per message).
func FuzzDecodeMessage(f *testing.F) {
	seeds := []struct {
		t MsgType
		v any
	}{
		{MsgBegin, &Begin{Surface: "logon", Action: protocol.ActionLogon}},
		{MsgQR, &QR{Text: "JK:ABC", PNG: []byte{1, 2}, Terminal: "██", Expires: 1790000000}},
		{MsgCredential, &Credential{Username: "msp-nik", Password: []byte("pw"), Deadline: 1790000000}},
		{MsgDenied, &Denied{Code: protocol.CodeRefused, Reason: "wrong username or code"}},
		{MsgEnd, &End{}},
		{MsgEnded, &Ended{OK: true}},
		{MsgStatus, &Status{Online: false, OTP: true}},
		{MsgStatus, &Status{Online: true, SecondApproval: true}},
		{MsgCode, &Code{Username: "nik", Code: "123456"}},
		{MsgPush, &Push{Email: "nik@msp.example"}},
		{MsgNumber, &Number{Number: 47}},
	}
	for _, s := range seeds {
		b, err := marshalMsg(s.t, s.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{byte(MsgCode), 0xa2, 0x01, 0x63, 'n', 'i', 'k', 0x02, 0x60})
	f.Add([]byte{byte(MsgStatus), 0xa2, 0x01, 0xf5, 0x02, 0xf5})
	f.Add([]byte{byte(MsgStatus), 0xa3, 0x01, 0xf5, 0x02, 0xf4, 0x03, 0xf4}) // field 3 false: not canonical
	f.Fuzz(func(t *testing.T, body []byte) {
		mt, cb, err := parseMsg(body)
		if err != nil {
			return
		}
		var v any
		switch mt {
		case MsgBegin:
			v = new(Begin)
		case MsgEnd:
			v = new(End)
		case MsgCode:
			v = new(Code)
		case MsgStatus:
			v = new(Status)
		case MsgPush:
			p := new(Push)
			if protocol.Unmarshal(cb, p) != nil || len(p.Email) > protocol.MaxIPCEmail {
				return // the agent ignores it
			}
			v = p
		default:
			r, err := decodeReply(mt, bytes.Clone(cb))
			if err != nil {
				return
			}
			v = r
		}
		if err := protocol.Unmarshal(cb, v); err != nil {
			return
		}
		again, err := marshalMsg(mt, v)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", v, err)
		}
		if !bytes.Equal(again, body) {
			t.Fatalf("%T re-encodes differently:\n in  %x\n out %x", v, body, again)
		}
	})
}
