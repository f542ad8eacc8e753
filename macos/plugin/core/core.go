//go:build (linux || darwin) && cgo

package core

/*
#cgo CFLAGS: -I${SRCDIR}/../../../internal/ipcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -Wvla -fstack-protector-strong -D_FORTIFY_SOURCE=2
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "jkcore.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// State mirrors enum jkc_state.
type State int

// The states of jkcore.h.
const (
	Idle       State = C.JKC_IDLE
	Waiting    State = C.JKC_WAITING
	ShowingQR  State = C.JKC_SHOWING_QR
	PushSent   State = C.JKC_PUSH_SENT
	PushNumber State = C.JKC_PUSH_NUMBER
	CodeSent   State = C.JKC_CODE_SENT
	// SecondApproval: approved, the agent waits for a second approver
	// (SPEC.md 5.7.7); no QR code, push or code.
	SecondApproval State = C.JKC_SECOND_APPROVAL
	Credential     State = C.JKC_CREDENTIAL
	Denied         State = C.JKC_DENIED
	Failed         State = C.JKC_FAILED
)

// Event mirrors enum jkc_event.
type Event int

// The events of jkc_on_message.
const (
	EvError      Event = C.JKC_EV_ERROR
	EvStatus     Event = C.JKC_EV_STATUS
	EvQR         Event = C.JKC_EV_QR
	EvNumber     Event = C.JKC_EV_NUMBER
	EvCredential Event = C.JKC_EV_CREDENTIAL
	EvDenied     Event = C.JKC_EV_DENIED
)

// MaxFrame is JK_MAX_FRAME.
const MaxFrame = C.JK_MAX_FRAME

// Core is a struct jkc in C memory. Close frees it (after jkc_wipe).
type Core struct {
	c *C.struct_jkc
}

// New returns an initialised core.
func New() *Core {
	p := (*C.struct_jkc)(C.calloc(1, C.sizeof_struct_jkc))
	C.jkc_init(p)
	return &Core{c: p}
}

// Close wipes and frees the core.
func (k *Core) Close() {
	if k.c != nil {
		C.jkc_wipe(k.c)
		C.free(unsafe.Pointer(k.c))
		k.c = nil
	}
}

// State returns the state.
func (k *Core) State() State { return State(k.c.state) }

// Online and OTP are the last Status.
func (k *Core) Online() bool { return k.c.online != 0 }

// OTP reports the last Status's OTP.
func (k *Core) OTP() bool { return k.c.otp != 0 }

// QRText returns the newest QR's text.
func (k *Core) QRText() string { return C.GoString(&k.c.qr_text[0]) }

// QRPNG returns a copy of the newest QR's PNG.
func (k *Core) QRPNG() []byte {
	return C.GoBytes(unsafe.Pointer(&k.c.qr_png[0]), C.int(k.c.qr_png_len))
}

// Number returns the push number.
func (k *Core) Number() int { return int(k.c.number) }

// Username returns the credential's username.
func (k *Core) Username() string { return C.GoString(&k.c.username[0]) }

// Password returns a copy of the credential's password.
func (k *Core) Password() []byte {
	return C.GoBytes(unsafe.Pointer(&k.c.password[0]), C.int(C.strlen(&k.c.password[0])))
}

// PasswordWiped reports whether every byte of the password buffer is 0.
func (k *Core) PasswordWiped() bool {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&k.c.password[0])), len(k.c.password))
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Session returns the credential's session id.
func (k *Core) Session() [16]byte {
	var s [16]byte
	for i := range s {
		s[i] = byte(k.c.session[i])
	}
	return s
}

// Deadline returns the credential's deadline.
func (k *Core) Deadline() int64 { return int64(k.c.deadline) }

// DeniedCode and Reason describe a Denied.
func (k *Core) DeniedCode() int { return int(k.c.denied_code) }

// Reason returns the Denied reason.
func (k *Core) Reason() string { return C.GoString(&k.c.reason[0]) }

func out(f func(*C.uint8_t, C.size_t) C.size_t) []byte {
	buf := (*C.uint8_t)(C.malloc(MaxFrame))
	defer C.free(unsafe.Pointer(buf))
	n := f(buf, MaxFrame)
	if n == 0 {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(buf), C.int(n))
}

// Begin runs jkc_begin; nil when refused.
func (k *Core) Begin(surface string) []byte {
	cs := C.CString(surface)
	defer C.free(unsafe.Pointer(cs))
	return out(func(b *C.uint8_t, n C.size_t) C.size_t { return C.jkc_begin(k.c, b, n, cs) })
}

// Push runs jkc_push; nil when refused.
func (k *Core) Push(email string) []byte {
	cs := C.CString(email)
	defer C.free(unsafe.Pointer(cs))
	return out(func(b *C.uint8_t, n C.size_t) C.size_t { return C.jkc_push(k.c, b, n, cs) })
}

// Code runs jkc_code; nil when refused.
func (k *Core) Code(username, code string) []byte {
	cu, cc := C.CString(username), C.CString(code)
	defer C.free(unsafe.Pointer(cu))
	defer C.free(unsafe.Pointer(cc))
	return out(func(b *C.uint8_t, n C.size_t) C.size_t { return C.jkc_code(k.c, b, n, cu, cc) })
}

// OnMessage runs jkc_on_message on a copy of body in C memory of exactly
// its length.
func (k *Core) OnMessage(body []byte) Event {
	p := C.malloc(C.size_t(len(body) + 1))
	defer C.free(p)
	copy(unsafe.Slice((*byte)(p), len(body)+1), body)
	return Event(C.jkc_on_message(k.c, (*C.uint8_t)(p), C.size_t(len(body))))
}

// OnLost runs jkc_on_lost.
func (k *Core) OnLost() { C.jkc_on_lost(k.c) }

// Done runs jkc_done.
func (k *Core) Done() bool { return C.jkc_done(k.c) != 0 }

// Conn is a connection jkc_connect made.
type Conn struct{ fd C.int }

// ErrIO is returned when a C transport call fails.
var ErrIO = errors.New("core: transport call failed")

// Connect runs jkc_connect.
func Connect(path string, wantUID int) (*Conn, error) {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	fd := C.jkc_connect(cs, C.uid_t(wantUID))
	if fd < 0 {
		return nil, ErrIO
	}
	return &Conn{fd: fd}, nil
}

// Close closes the descriptor.
func (c *Conn) Close() { C.close(c.fd) }

// Write runs jkc_write_frame.
func (c *Conn) Write(body []byte) error {
	if len(body) == 0 {
		if C.jkc_write_frame(c.fd, nil, 0) < 0 {
			return ErrIO
		}
		return nil
	}
	p := C.CBytes(body)
	defer C.free(p)
	if C.jkc_write_frame(c.fd, (*C.uint8_t)(p), C.size_t(len(body))) < 0 {
		return ErrIO
	}
	return nil
}

// Read runs jkc_read_frame.
func (c *Conn) Read(timeoutMS int) ([]byte, error) {
	buf := (*C.uint8_t)(C.malloc(MaxFrame))
	defer C.free(unsafe.Pointer(buf))
	n := C.jkc_read_frame(c.fd, buf, MaxFrame, C.int(timeoutMS))
	if n < 0 {
		return nil, ErrIO
	}
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), nil
}

// Wipe runs jkc_wipe (the core stays allocated, state Idle).
func (k *Core) Wipe() { C.jkc_wipe(k.c) }

// Decode runs jk_decode on a copy of body in C memory of exactly its
// length and returns the message type and whether it was accepted.
func Decode(body []byte) (uint8, bool) {
	p := C.malloc(C.size_t(len(body) + 1))
	defer C.free(p)
	copy(unsafe.Slice((*byte)(p), len(body)+1), body)
	var m C.struct_jk_msg
	if C.jk_decode((*C.uint8_t)(p), C.size_t(len(body)), &m) != 0 {
		return 0, false
	}
	return uint8(m._type), true
}
