//go:build linux && cgo

package core_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/winhelper/credprov/core"
)

// begin decodes the tile's Begin with the Go codec.
func begin(t *testing.T, tl *core.Tile) *protocol.IPCBegin {
	t.Helper()
	typ, v, err := protocol.DecodeIPCMsg(tl.Begin())
	if err != nil || typ != protocol.IPCMsgBegin {
		t.Fatalf("Begin %x: type %d, %v", tl.Begin(), typ, err)
	}
	return v.(*protocol.IPCBegin)
}

// TestTileRemoteTarget walks a Remote Desktop login from a domain member
// (CredUI, SPEC.md 11.7 RDP): the tile asks for the target before it
// connects, sends Begin{logon, Target}, shows only the QR code, and
// hands over the domain account; Start again asks again, prefilled.
func TestTileRemoteTarget(t *testing.T) {
	tl := newTile(t)
	tl.Setup("elevate", true)
	if tl.Start() != core.ActNone || tl.Mode() != core.ModeTarget {
		t.Fatalf("start: mode %d", tl.Mode())
	}
	wantVisible(t, tl, core.FTarget, core.FSubmit)
	if tl.FieldInteractive(core.FTarget) != 3 || tl.SubmitAdjacent() != core.FTarget {
		t.Fatal("the target field is not focused beside Submit")
	}
	// No agent message moves a tile that has not connected yet.
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true})
	if tl.Mode() != core.ModeTarget {
		t.Fatalf("mode %d after a Status", tl.Mode())
	}
	if tl.SetString(core.FTarget, strings.Repeat("t", 65)) {
		t.Fatal("a 65-byte target taken")
	}
	for _, bad := range []string{"pc 42", `CORP\pc42`, "nik@pc42", "pc\x0142"} {
		if !tl.SetString(core.FTarget, bad) {
			t.Fatalf("field refused %q", bad)
		}
		if tl.Submit() != core.ActNone || tl.Mode() != core.ModeTarget {
			t.Fatalf("target %q submitted", bad)
		}
	}
	tl.SetString(core.FTarget, "  pc42 ")
	if tl.Submit() != core.ActConnect || tl.Mode() != core.ModeConnecting {
		t.Fatalf("submit: mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	if b := begin(t, tl); *b != (protocol.IPCBegin{Surface: "logon", Target: "pc42"}) {
		t.Fatalf("Begin %+v", b)
	}
	want := msg(t, protocol.IPCMsgBegin, &protocol.IPCBegin{Surface: "logon", Target: "pc42"})
	if !bytes.Equal(tl.Begin(), want) {
		t.Fatalf("Begin %x, want %x", tl.Begin(), want)
	}
	// Online with codes allowed: still only the QR code (the agent
	// ignores Code and Push during a login with a Target).
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true})
	feed(t, tl, protocol.IPCMsgQR, qrMsg(t, "JK:rdp"))
	if tl.Mode() != core.ModeQR || !strings.Contains(tl.String(core.FStatus), "Remote Desktop to pc42") {
		t.Fatalf("mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	wantVisible(t, tl)
	if tl.Link(core.FLinkPush) != core.ActNone || tl.Link(core.FLinkOffline) != core.ActNone || tl.Mode() != core.ModeQR {
		t.Fatal("push or offline code offered during a Remote Desktop login")
	}
	// Offline with codes: the tile does not switch to the code prompt.
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{OTP: true})
	if tl.Mode() != core.ModeQR || !strings.Contains(tl.String(core.FStatus), "offline") {
		t.Fatalf("mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	session := protocol.SessionID{7}
	feed(t, tl, protocol.IPCMsgCredential, &protocol.IPCCredential{Username: `CORP\msp-nik`, Password: []byte("Pw-1"), Session: session, Deadline: 1})
	if !tl.Ready() || tl.Mode() != core.ModeApproved || tl.String(core.FStatus) != `Approved: signing in as CORP\msp-nik` {
		t.Fatalf("mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	user, pw, s, ok := tl.TakeCredential()
	if !ok || user != `CORP\msp-nik` || string(pw) != "Pw-1" || s != session {
		t.Fatalf("credential %q %q %x %v", user, pw, s, ok)
	}

	// A refusal, then Start again: the target is asked for again,
	// prefilled with the last one.
	tl.Start()
	tl.SetString(core.FTarget, "pc43")
	tl.Submit()
	feed(t, tl, protocol.IPCMsgDenied, &protocol.IPCDenied{Code: 1, Reason: "no remote desktop to this target"})
	if tl.Mode() != core.ModeDenied || tl.Link(core.FLinkBack) != core.ActRestart {
		t.Fatalf("mode %d", tl.Mode())
	}
	if tl.Start() != core.ActNone || tl.Mode() != core.ModeTarget || tl.String(core.FTarget) != "pc43" {
		t.Fatalf("restart: mode %d target %q", tl.Mode(), tl.String(core.FTarget))
	}
	// Empty: a login on this computer, with the scenario's surface.
	tl.SetString(core.FTarget, " ")
	if tl.Submit() != core.ActConnect {
		t.Fatal("empty target not taken")
	}
	if b := begin(t, tl); *b != (protocol.IPCBegin{Surface: "elevate"}) {
		t.Fatalf("Begin %+v", b)
	}
	feed(t, tl, protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, OTP: true})
	if tl.Link(core.FLinkPush) != core.ActNone || tl.Mode() != core.ModePush {
		t.Fatalf("push not offered on a local login: mode %d", tl.Mode())
	}
}

// TestTileAgentRefused: a prompt whose process the pipe refuses (it
// admits only SYSTEM) says so, and offers to try again.
func TestTileAgentRefused(t *testing.T) {
	tl := newTile(t)
	tl.Setup("elevate", true)
	tl.Start()
	tl.SetString(core.FTarget, "pc42")
	tl.Submit()
	tl.AgentRefused()
	if tl.Mode() != core.ModeDown || !strings.Contains(tl.String(core.FStatus), "admits only SYSTEM") {
		t.Fatalf("mode %d status %q", tl.Mode(), tl.String(core.FStatus))
	}
	wantVisible(t, tl, core.FLinkBack)
	if tl.Link(core.FLinkBack) != core.ActRestart || tl.Start() != core.ActNone || tl.String(core.FTarget) != "pc42" {
		t.Fatal("Try again does not ask for the target again")
	}
}

// TestTileNoTarget: without the target step (logon, unlock, UAC) the tile
// connects at once and Begin names the scenario's surface, no Target.
func TestTileNoTarget(t *testing.T) {
	for _, surface := range []string{"logon", "unlock", "elevate"} {
		tl := newTile(t)
		tl.Setup(surface, false)
		tl.SetTargetHint("TERMSRV/pc42") // a hint alone asks for nothing
		if tl.Start() != core.ActConnect || tl.Mode() != core.ModeConnecting {
			t.Fatalf("%s: mode %d", surface, tl.Mode())
		}
		if b := begin(t, tl); *b != (protocol.IPCBegin{Surface: surface}) {
			t.Fatalf("%s: Begin %+v", surface, b)
		}
	}
}

// TestTileTargetHint: the name CredUI's caller gave (SSPI TargetName)
// prefills the field; the technician may change it.
func TestTileTargetHint(t *testing.T) {
	tl := newTile(t)
	tl.Setup("elevate", true)
	if !tl.SetTargetHint("TERMSRV/pc42.corp.example:3389") {
		t.Fatal("hint refused")
	}
	tl.Start()
	if tl.String(core.FTarget) != "pc42.corp.example" {
		t.Fatalf("target field %q", tl.String(core.FTarget))
	}
	if tl.SetTargetHint("TERMSRV/") || tl.String(core.FTarget) != "pc42.corp.example" {
		t.Fatal("an empty hint replaced the field")
	}
	tl.Submit()
	if b := begin(t, tl); b.Target != "pc42.corp.example" {
		t.Fatalf("Begin %+v", b)
	}
}

func TestTargetFromSPN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"TERMSRV/pc42", "pc42"},
		{"TERMSRV/pc42.corp.example:3389", "pc42.corp.example"},
		{"HOST/pc42/corp.example", "pc42"},
		{"pc42", "pc42"},
		{" pc42 ", "pc42"},
		{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
		{"TERMSRV/" + strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"TERMSRV/ordinateur-é", "ordinateur-é"},
		{"", ""},
		{"TERMSRV/", ""},
		{"TERMSRV/:3389", ""},
		{"TERMSRV/" + strings.Repeat("a", 65), ""},
		{"TERMSRV/pc 42", ""},
		{`TERMSRV/CORP\pc42`, ""},
		{"TERMSRV/nik@pc42", ""},
		{"TERMSRV/pc\t42", ""},
		{"TERMSRV/pc\xff", ""},
	} {
		got, ok := core.TargetFromSPN(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%q: %q %v, want %q", c.in, got, ok, c.want)
		}
	}
}

// TestAccountSplit: the Credential's Username gives the logon domain and
// user of the packed logon; CredUI gets DOMAIN\user.
func TestAccountSplit(t *testing.T) {
	for _, c := range []struct{ account, domain, user string }{
		{`CORP\msp-nik`, "CORP", "msp-nik"},
		{"msp-nik", "WS01", "msp-nik"},
		{`A\b`, "A", "b"},
	} {
		d, u, ok := core.AccountSplit(c.account, "WS01")
		if !ok || d != c.domain || u != c.user {
			t.Errorf("%q: %q %q %v", c.account, d, u, ok)
		}
		q, ok := core.AccountQualified(c.account, "WS01", 64)
		if !ok || q != c.domain+`\`+c.user {
			t.Errorf("%q qualified: %q %v", c.account, q, ok)
		}
		if _, ok := core.AccountQualified(c.account, "WS01", len(c.domain)+len(c.user)+1); ok {
			t.Errorf("%q qualified fits without its NUL", c.account)
		}
	}
	for _, bad := range []string{"", `\msp-nik`, `CORP\`, `A\B\c`, `\`} {
		if d, u, ok := core.AccountSplit(bad, "WS01"); ok {
			t.Errorf("%q split into %q %q", bad, d, u)
		}
		if _, ok := core.AccountQualified(bad, "WS01", 64); ok {
			t.Errorf("%q qualified", bad)
		}
	}
	if _, _, ok := core.AccountSplit("msp-nik", ""); ok {
		t.Error("a local account without a computer name split")
	}
}

// TestKerbPackDomainAccount: a domain account (selective login, 11.7)
// packs as LogonDomainName = DOMAIN and UserName = the account, not the
// computer's name and the whole DOMAIN\account.
func TestKerbPackDomainAccount(t *testing.T) {
	d, u, ok := core.AccountSplit(`CORP\msp-nik`, "WS01")
	if !ok {
		t.Fatal("split refused")
	}
	b, ok := core.KerbPack(core.KerbInteractiveLogon, d, u, "pw", 4096)
	if !ok {
		t.Fatal("pack refused")
	}
	le := binary.LittleEndian
	str := func(hdr int) string {
		n, off := int(le.Uint16(b[hdr:])), int(le.Uint64(b[hdr+8:]))
		units := make([]uint16, n/2)
		for i := range units {
			units[i] = le.Uint16(b[off+2*i:])
		}
		return string(utf16.Decode(units))
	}
	if str(8) != "CORP" || str(24) != "msp-nik" || str(40) != "pw" {
		t.Fatalf("packed %q %q %q", str(8), str(24), str(40))
	}
}
