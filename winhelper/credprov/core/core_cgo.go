//go:build linux && cgo

package core

/*
#cgo CFLAGS: -I${SRCDIR}/../../../internal/ipcc -std=gnu11 -O2 -Wall -Wextra -Werror -fstack-protector-strong -D_FORTIFY_SOURCE=2
#cgo CXXFLAGS: -I${SRCDIR}/../../../internal/ipcc -std=c++17 -O2 -Wall -Wextra -Werror -fno-exceptions -fstack-protector-strong -D_FORTIFY_SOURCE=2
#include <stdlib.h>
#include "jkmsg.h"
#include "pack.h"
#include "qrterm.h"
#include "tile.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// cbytes copies b into C memory of exactly its length (plus one byte, so
// that an empty slice has an address); a read past the end is a read
// past the allocation.
func cbytes(b []byte) unsafe.Pointer {
	p := C.malloc(C.size_t(len(b) + 1))
	copy(unsafe.Slice((*byte)(p), len(b)+1), b)
	return p
}

func utf16(s string) []uint16 {
	out := make([]uint16, 0, len(s)+1)
	for _, r := range s {
		out = append(out, uint16(r))
	}
	return append(out, 0) // an address even when empty
}

// KerbPack runs jk_kerb_pack into a buffer of size bytes.
func KerbPack(msgType uint32, domain, user, password string, size int) ([]byte, bool) {
	d, u, p := utf16(domain), utf16(user), utf16(password)
	buf := make([]byte, size+1)
	n := C.jk_kerb_pack((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(size), C.uint32_t(msgType),
		(*C.uint16_t)(unsafe.Pointer(&d[0])), C.size_t(len(d)-1),
		(*C.uint16_t)(unsafe.Pointer(&u[0])), C.size_t(len(u)-1),
		(*C.uint16_t)(unsafe.Pointer(&p[0])), C.size_t(len(p)-1))
	return buf[:n], n != 0
}

// AccountSplit runs jk_account_split on a Credential's Username with
// local as this computer's name.
func AccountSplit(account, local string) (domain, user string, ok bool) {
	a, l := utf16(account), utf16(local)
	var d, u *C.uint16_t
	var dn, un C.size_t
	if C.jk_account_split((*C.uint16_t)(unsafe.Pointer(&a[0])), C.size_t(len(a)-1), (*C.uint16_t)(unsafe.Pointer(&l[0])), C.size_t(len(l)-1),
		&d, &dn, &u, &un) != 0 {
		return "", "", false
	}
	return fromUTF16(d, dn), fromUTF16(u, un), true
}

// AccountQualified runs jk_account_qualified with room for size units.
func AccountQualified(account, local string, size int) (string, bool) {
	a, l := utf16(account), utf16(local)
	out := make([]uint16, size+1)
	n := C.jk_account_qualified((*C.uint16_t)(unsafe.Pointer(&a[0])), C.size_t(len(a)-1), (*C.uint16_t)(unsafe.Pointer(&l[0])), C.size_t(len(l)-1),
		(*C.uint16_t)(unsafe.Pointer(&out[0])), C.size_t(size))
	if n == 0 {
		return "", false
	}
	if out[n] != 0 {
		return "", false // not NUL-terminated
	}
	return fromUTF16((*C.uint16_t)(unsafe.Pointer(&out[0])), n), true
}

func fromUTF16(p *C.uint16_t, n C.size_t) string {
	units := unsafe.Slice((*uint16)(unsafe.Pointer(p)), int(n))
	r := make([]rune, len(units))
	for i, u := range units {
		r[i] = rune(u)
	}
	return string(r)
}

// TargetFromSPN runs jk_target_from_spn.
func TargetFromSPN(in string) (string, bool) {
	cs := C.CString(in)
	defer C.free(unsafe.Pointer(cs))
	out := make([]byte, C.JK_MAX_TARGET+1)
	n := C.jk_target_from_spn(cs, (*C.char)(unsafe.Pointer(&out[0])), C.size_t(len(out)))
	return string(out[:n]), n != 0
}

// KerbSize runs jk_kerb_size.
func KerbSize(d, u, p int) int { return int(C.jk_kerb_size(C.size_t(d), C.size_t(u), C.size_t(p))) }

// UTF8ToUTF16 runs jk_utf8_to_utf16 with room for n units.
func UTF8ToUTF16(s []byte, n int) ([]uint16, bool) {
	p := cbytes(s)
	defer C.free(p)
	out := make([]uint16, n+1)
	r := C.jk_utf8_to_utf16((*C.uint8_t)(p), C.size_t(len(s)), (*C.uint16_t)(unsafe.Pointer(&out[0])), C.size_t(n))
	if r == ^C.size_t(0) {
		return nil, false
	}
	return out[:r], true
}

// QRParse runs jk_qr_parse; dark is side*side modules, 1 = dark.
func QRParse(text []byte) (dark []byte, side int) {
	p := cbytes(text)
	defer C.free(p)
	buf := make([]byte, C.JK_QR_MAX_SIDE*C.JK_QR_MAX_SIDE)
	s := int(C.jk_qr_parse((*C.uint8_t)(p), C.size_t(len(text)), (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
	return buf[:s*s], s
}

// QRRender runs jk_qr_render.
func QRRender(dark []byte, side, scale int) ([]uint32, bool) {
	w := side * scale
	if w <= 0 || len(dark) < side*side {
		return nil, false
	}
	px := make([]uint32, w*w)
	ok := C.jk_qr_render((*C.uint8_t)(unsafe.Pointer(&dark[0])), C.int(side), C.int(scale),
		(*C.uint32_t)(unsafe.Pointer(&px[0])), C.size_t(len(px))) == 0
	return px, ok
}

// Tile is the provider's tile logic (tile.h).
type Tile struct{ t *C.jk_tile }

// NewTile returns a tile in mode CONNECTING; Free releases it.
func NewTile() *Tile { return &Tile{C.jk_tile_new()} }

// Free wipes and frees the tile.
func (t *Tile) Free() { C.jk_tile_free(t.t); t.t = nil }

// Setup names the Begin surface and whether the tile asks for a target.
func (t *Tile) Setup(surface string, askTarget bool) {
	cs := C.CString(surface)
	defer C.free(unsafe.Pointer(cs))
	ask := C.int(0)
	if askTarget {
		ask = 1
	}
	C.jk_tile_setup(t.t, cs, ask)
}

// SetTargetHint runs jk_tile_set_target_hint.
func (t *Tile) SetTargetHint(spn string) bool {
	cs := C.CString(spn)
	defer C.free(unsafe.Pointer(cs))
	return C.jk_tile_set_target_hint(t.t, cs) == 0
}

// Start runs jk_tile_start.
func (t *Tile) Start() int { return int(C.jk_tile_start(t.t)) }

// Begin returns the login's Begin body (nil if it does not fit).
func (t *Tile) Begin() []byte {
	buf := make([]byte, 256)
	n := C.jk_tile_begin(t.t, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n == 0 {
		return nil
	}
	return buf[:n]
}

// SubmitAdjacent returns the field next to the Submit button.
func (t *Tile) SubmitAdjacent() int { return int(C.jk_tile_submit_adjacent(t.t)) }

// Connecting restarts the tile.
func (t *Tile) Connecting() { C.jk_tile_connecting(t.t) }

// AgentRefused reports that the pipe refused this process.
func (t *Tile) AgentRefused() { C.jk_tile_agent_refused(t.t) }

// AgentDown reports that the pipe could not be opened or broke.
func (t *Tile) AgentDown() { C.jk_tile_agent_down(t.t) }

// Message decodes an agent message body and feeds it to the tile, as the
// DLL's worker does; false if jk_decode refused it (the DLL then treats
// the agent as gone).
func (t *Tile) Message(body []byte) bool {
	p := cbytes(body)
	defer C.free(p)
	var m C.struct_jk_msg
	if C.jk_decode((*C.uint8_t)(p), C.size_t(len(body)), &m) != 0 {
		return false
	}
	C.jk_tile_message(t.t, &m)
	return true
}

// Link clicks a command link.
func (t *Tile) Link(field int) int { return int(C.jk_tile_link(t.t, C.int(field))) }

// SetString types into a field.
func (t *Tile) SetString(field int, s string) bool {
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return C.jk_tile_set_string(t.t, C.int(field), cs) == 0
}

// Submit presses Submit.
func (t *Tile) Submit() int { return int(C.jk_tile_submit(t.t)) }

// Outgoing takes the waiting message.
func (t *Tile) Outgoing() []byte {
	buf := make([]byte, 1024)
	n := C.jk_tile_outgoing(t.t, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return buf[:n]
}

// Mode returns the JK_MODE_.
func (t *Tile) Mode() int { return int(C.jk_tile_mode(t.t)) }

// FieldState returns the field's visibility.
func (t *Tile) FieldState(f int) int { return int(C.jk_tile_field_state(t.t, C.int(f))) }

// FieldInteractive returns the field's interactive state.
func (t *Tile) FieldInteractive(f int) int { return int(C.jk_tile_field_interactive(t.t, C.int(f))) }

// String returns the field's text.
func (t *Tile) String(f int) string { return C.GoString(C.jk_tile_string(t.t, C.int(f))) }

// QR returns the shown QR modules.
func (t *Tile) QR() ([]byte, int) {
	var side C.int
	p := C.jk_tile_qr(t.t, &side)
	if p == nil {
		return nil, 0
	}
	return C.GoBytes(unsafe.Pointer(p), side*side), int(side)
}

// Generation returns the visible-change counter.
func (t *Tile) Generation() uint32 { return uint32(C.jk_tile_generation(t.t)) }

// QRGeneration returns the QR counter.
func (t *Tile) QRGeneration() uint32 { return uint32(C.jk_tile_qr_generation(t.t)) }

// Ready reports a waiting credential.
func (t *Tile) Ready() bool { return C.jk_tile_ready(t.t) != 0 }

// TakeCredential moves the credential out.
func (t *Tile) TakeCredential() (user string, pw []byte, session [16]byte, ok bool) {
	ub := make([]byte, C.JK_MAX_ACCOUNT+1)
	pb := make([]byte, 300)
	n := C.jk_tile_take_credential(t.t, (*C.char)(unsafe.Pointer(&ub[0])), C.size_t(len(ub)),
		(*C.uint8_t)(unsafe.Pointer(&pb[0])), C.size_t(len(pb)), (*C.uint8_t)(unsafe.Pointer(&session[0])))
	runtime.KeepAlive(ub)
	if n < 0 {
		return "", nil, session, false
	}
	return C.GoString((*C.char)(unsafe.Pointer(&ub[0]))), pb[:n], session, true
}

// Field ids, modes, states and actions (tile.h).
const (
	FImage       = C.JK_F_IMAGE
	FTitle       = C.JK_F_TITLE
	FStatus      = C.JK_F_STATUS
	FNumber      = C.JK_F_NUMBER
	FEmail       = C.JK_F_EMAIL
	FUsername    = C.JK_F_USERNAME
	FCode        = C.JK_F_CODE
	FSubmit      = C.JK_F_SUBMIT
	FLinkPush    = C.JK_F_LINK_PUSH
	FLinkOffline = C.JK_F_LINK_OFFLINE
	FLinkBack    = C.JK_F_LINK_BACK
	FTarget      = C.JK_F_TARGET
	FCount       = C.JK_F_COUNT

	ModeConnecting = C.JK_MODE_CONNECTING
	ModeDown       = C.JK_MODE_DOWN
	ModeQR         = C.JK_MODE_QR
	ModePush       = C.JK_MODE_PUSH
	ModePushWait   = C.JK_MODE_PUSH_WAIT
	ModeOffline    = C.JK_MODE_OFFLINE
	ModeChecking   = C.JK_MODE_CHECKING
	ModeApproved   = C.JK_MODE_APPROVED
	ModeDenied     = C.JK_MODE_DENIED
	ModeTarget     = C.JK_MODE_TARGET
	// ModeSecondApproval: approved, the agent waits for a second
	// approver (SPEC.md 5.7.7).
	ModeSecondApproval = C.JK_MODE_SECOND_APPROVAL

	Hidden   = C.JK_HIDDEN
	Selected = C.JK_SELECTED
	Both     = C.JK_BOTH

	ActNone    = C.JK_ACT_NONE
	ActSend    = C.JK_ACT_SEND
	ActRestart = C.JK_ACT_RESTART
	ActConnect = C.JK_ACT_CONNECT

	KerbInteractiveLogon       = C.JK_KERB_INTERACTIVE_LOGON
	KerbWorkstationUnlockLogon = C.JK_KERB_WORKSTATION_UNLOCK_LOGON
)
