//go:build linux && cgo

package core_test

import (
	"bytes"
	"testing"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
	"github.com/jitkey/jitkey/winhelper/credprov/core"
)

func newTile(t *testing.T) *core.Tile {
	t.Helper()
	tl := core.NewTile()
	t.Cleanup(tl.Free)
	return tl
}

func feed(t *testing.T, tl *core.Tile, typ protocol.IPCMsgType, v any) {
	t.Helper()
	if !tl.Message(msg(t, typ, v)) {
		t.Fatalf("message %d refused by the decoder", typ)
	}
}

func qrMsg(t *testing.T, text string) *protocol.IPCQR {
	t.Helper()
	term, err := qrcode.Terminal(text)
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.IPCQR{Text: text, Terminal: term, Expires: 1}
}

// visible lists the fields shown in the selected tile.
func visible(tl *core.Tile) map[int]bool {
	out := map[int]bool{}
	for f := 0; f < core.FCount; f++ {
		if tl.FieldState(f) != core.Hidden {
			out[f] = true
		}
	}
	return out
}

func wantVisible(t *testing.T, tl *core.Tile, fields ...int) {
	t.Helper()
	want := map[int]bool{core.FImage: true, core.FTitle: true, core.FStatus: true}
	for _, f := range fields {
		want[f] = true
	}
	got := visible(tl)
	if len(got) != len(want) {
		t.Fatalf("mode %d: visible fields %v, want %v", tl.Mode(), got, want)
	}
	for f := range want {
		if !got[f] {
			t.Fatalf("mode %d: visible fields %v, want %v", tl.Mode(), got, want)
		}
	}
}

func TestTileQRRotation(t *testing.T) {
	tl := newTile(t)
	if tl.Mode() != core.ModeConnecting {
		t.Fatalf("new tile mode %d", tl.Mode())
	}
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	if tl.Mode() != core.ModeQR {
		t.Fatalf("mode %d after online Status", tl.Mode())
	}
	wantVisible(t, tl, core.FLinkPush)
	g0 := tl.QRGeneration()
	feed(t, tl, protocol.IPCMsgQR, qrMsg(t, "JK:first"))
	first, side := tl.QR()
	if side == 0 || tl.QRGeneration() == g0 {
		t.Fatal("no QR after the QR message")
	}
	g1 := tl.QRGeneration()
	feed(t, tl, protocol.IPCMsgQR, qrMsg(t, "JK:second-code"))
	second, _ := tl.QR()
	if tl.QRGeneration() == g1 || bytes.Equal(first, second) {
		t.Fatal("rotation did not change the tile image")
	}
	// OTP while online: the offline link appears.
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true})
	wantVisible(t, tl, core.FLinkPush, core.FLinkOffline)
}

// TestTileSecondApproval (SPEC.md 5.7.7): Status SecondApproval replaces
// the QR code (or the push number) with "Approved. Waiting for a second
// approver..."; a later QR, a Number or an offline Status do not bring
// anything back, no link but "Start again" is offered, and the
// Credential ends it as usual.
func TestTileSecondApproval(t *testing.T) {
	for _, push := range []bool{false, true} {
		tl := newTile(t)
		feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true})
		feed(t, tl, protocol.IPCMsgQR, qrMsg(t, "JK:first"))
		if push {
			tl.Link(core.FLinkPush)
			tl.SetString(core.FEmail, "nik@msp.example")
			if tl.Submit() != core.ActSend {
				t.Fatal("push not sent")
			}
			tl.Outgoing()
			feed(t, tl, protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 42})
		}
		g := tl.QRGeneration()
		feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, SecondApproval: true})
		check := func(when string) {
			t.Helper()
			if tl.Mode() != core.ModeSecondApproval || tl.String(core.FStatus) != "Approved. Waiting for a second approver..." {
				t.Fatalf("push %v, %s: mode %d status %q", push, when, tl.Mode(), tl.String(core.FStatus))
			}
			if _, side := tl.QR(); side != 0 || tl.String(core.FNumber) != "" {
				t.Fatalf("push %v, %s: QR or number still shown", push, when)
			}
			wantVisible(t, tl, core.FLinkBack)
		}
		check("waiting")
		if tl.QRGeneration() == g {
			t.Fatal("the tile image was not refreshed")
		}
		feed(t, tl, protocol.IPCMsgQR, qrMsg(t, "JK:late"))
		check("after a QR")
		feed(t, tl, protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 17})
		check("after a Number")
		feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{OTP: true, SecondApproval: true})
		check("offline")
		if tl.Link(core.FLinkPush) != core.ActNone || tl.Link(core.FLinkOffline) != core.ActNone || tl.Submit() != core.ActNone {
			t.Fatal("push or code offered while waiting")
		}
		check("after the links")
		feed(t, tl, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("pw-0123456789"), Deadline: 1})
		if tl.Mode() != core.ModeApproved {
			t.Fatalf("push %v: mode %d after the Credential", push, tl.Mode())
		}
	}
	tl := newTile(t)
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, SecondApproval: true})
	if tl.Link(core.FLinkBack) != core.ActRestart {
		t.Fatal("Start again does not restart while waiting")
	}
}

func TestTileOfflineSwitchesByItself(t *testing.T) {
	tl := newTile(t)
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	feed(t, tl, protocol.IPCMsgQR, qrMsg(t, "JK:x"))
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: false, OTP: true})
	if tl.Mode() != core.ModeOffline {
		t.Fatalf("mode %d after offline Status, want OFFLINE", tl.Mode())
	}
	wantVisible(t, tl, core.FUsername, core.FCode, core.FSubmit)
	if _, side := tl.QR(); side != 0 {
		t.Fatal("offline tile still shows a QR code")
	}
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	if tl.Mode() != core.ModeQR {
		t.Fatalf("mode %d back online, want QR", tl.Mode())
	}
	// Offline without codes: QR mode says so; no code fields.
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{})
	if tl.Mode() != core.ModeQR || tl.String(core.FStatus) == "" {
		t.Fatalf("mode %d, status %q", tl.Mode(), tl.String(core.FStatus))
	}
	wantVisible(t, tl)
}

func TestTilePush(t *testing.T) {
	tl := newTile(t)
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	if tl.Link(core.FLinkPush) != core.ActNone || tl.Mode() != core.ModePush {
		t.Fatalf("mode %d after Send notification", tl.Mode())
	}
	wantVisible(t, tl, core.FEmail, core.FSubmit, core.FLinkBack)
	if tl.Submit() != core.ActNone || len(tl.Outgoing()) != 0 {
		t.Fatal("empty email submitted")
	}
	if !tl.SetString(core.FEmail, "nik@msp.example") {
		t.Fatal("email refused")
	}
	if tl.Submit() != core.ActSend {
		t.Fatalf("submit: status %q", tl.String(core.FStatus))
	}
	want := msg(t, protocol.IPCMsgPush, &protocol.IPCPush{Email: "nik@msp.example"})
	if got := tl.Outgoing(); !bytes.Equal(got, want) {
		t.Fatalf("outgoing %x, want %x", got, want)
	}
	if len(tl.Outgoing()) != 0 {
		t.Fatal("outgoing message taken twice")
	}
	if tl.Mode() != core.ModePushWait {
		t.Fatalf("mode %d after submit", tl.Mode())
	}
	number := []byte{10, 0xa1, 0x01, 0x18, 42}
	if !tl.Message(number) {
		t.Fatal("Number refused")
	}
	if tl.String(core.FNumber) != "42" {
		t.Fatalf("number field %q", tl.String(core.FNumber))
	}
	wantVisible(t, tl, core.FNumber, core.FLinkBack)
	session := protocol.SessionID{1, 2, 3}
	feed(t, tl, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: []byte("Abc-123"), Session: session, Deadline: 1})
	if !tl.Ready() || tl.Mode() != core.ModeApproved {
		t.Fatal("credential not ready")
	}
	user, pw, s, ok := tl.TakeCredential()
	if !ok || user != "msp-nik" || string(pw) != "Abc-123" || s != session {
		t.Fatalf("credential %q %q %x %v", user, pw, s, ok)
	}
	if _, _, _, ok := tl.TakeCredential(); ok || tl.Ready() {
		t.Fatal("credential taken twice")
	}
	// Nothing the agent sends changes an approved tile.
	feed(t, tl, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 2, Reason: "late"})
	if tl.Mode() != core.ModeApproved {
		t.Fatal("approved tile changed")
	}
}

func TestTileOfflineCode(t *testing.T) {
	tl := newTile(t)
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true})
	tl.Link(core.FLinkOffline)
	if tl.Mode() != core.ModeOffline {
		t.Fatalf("mode %d", tl.Mode())
	}
	tl.SetString(core.FUsername, "nik")
	for _, bad := range []string{"12345", "1234567", "12a456", ""} {
		tl.SetString(core.FCode, bad)
		if tl.Submit() != core.ActNone {
			t.Fatalf("code %q submitted", bad)
		}
	}
	if tl.SetString(core.FCode, "123456789") {
		t.Fatal("9-digit code taken")
	}
	tl.SetString(core.FCode, "123456")
	if tl.String(core.FCode) != "" {
		t.Fatal("the code is readable back")
	}
	if tl.Submit() != core.ActSend || tl.Mode() != core.ModeChecking {
		t.Fatalf("submit: mode %d", tl.Mode())
	}
	typ, body, err := protocol.DecodeIPCMsg(tl.Outgoing())
	if err != nil || typ != protocol.IPCMsgCode {
		t.Fatalf("outgoing: %d %v", typ, err)
	}
	if c := body.(*protocol.IPCCode); c.Username != "nik" || c.Code != "123456" {
		t.Fatalf("code message %+v", c)
	}
	// The agent's view of connectivity, not the tile's, decides: a
	// Status while checking does not move the tile.
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	if tl.Mode() != core.ModeChecking {
		t.Fatalf("mode %d", tl.Mode())
	}
	feed(t, tl, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 1, Reason: "wrong username\nor code\x1b[2J"})
	if tl.Mode() != core.ModeDenied || tl.String(core.FStatus) != "wrong username or code [2J" {
		t.Fatalf("mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	if tl.Link(core.FLinkBack) != core.ActRestart {
		t.Fatal("Start again does not restart")
	}
}

func TestTileAgentDownAndBadInput(t *testing.T) {
	tl := newTile(t)
	tl.AgentDown()
	if tl.Mode() != core.ModeDown || tl.String(core.FStatus) != "The jitkey agent is not running: use another sign-in option" {
		t.Fatalf("mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	wantVisible(t, tl, core.FLinkBack)
	if tl.Link(core.FLinkBack) != core.ActRestart {
		t.Fatal("Try again does not restart")
	}
	tl.Connecting()
	if tl.Mode() != core.ModeConnecting {
		t.Fatal("not connecting")
	}
	// An unexpected message ends the exchange.
	feed(t, tl, protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true})
	if tl.Mode() != core.ModeDenied {
		t.Fatalf("mode %d after Ended during a login", tl.Mode())
	}
	// An unusable credential is refused.
	tl.Connecting()
	feed(t, tl, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: "msp-nik", Password: bytes.Repeat([]byte("a"), 300)})
	if tl.Mode() != core.ModeDenied || tl.Ready() {
		t.Fatalf("mode %d ready %v with a 300-byte password", tl.Mode(), tl.Ready())
	}
	// Links that do not apply do nothing.
	tl.Connecting()
	if tl.Link(core.FLinkPush) != core.ActNone || tl.Link(core.FLinkOffline) != core.ActNone || tl.Mode() != core.ModeConnecting {
		t.Fatal("links acted while connecting")
	}
	if tl.SetString(core.FStatus, "x") || tl.SetString(core.FUsername, string(bytes.Repeat([]byte("u"), 65))) {
		t.Fatal("bad field input taken")
	}
}
