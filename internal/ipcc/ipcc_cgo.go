//go:build (linux || darwin) && cgo

package ipcc

/*
#cgo CFLAGS: -std=gnu11 -O2 -Wall -Wextra -Werror -fstack-protector-strong -D_FORTIFY_SOURCE=2
#include <stdlib.h>
#include "jkmsg.h"
*/
import "C"

import "unsafe"

// MaxString is JK_MAX_STRING, the C encoder's bound on a text field.
const MaxString = C.JK_MAX_STRING

// Msg is a message the C decoder accepted; byte fields are copies.
type Msg struct {
	Type uint8
	// Status
	Online, OTP, SecondApproval bool
	// QR
	Text, PNG, Terminal []byte
	Expires             int64
	// Credential
	Username, Password []byte
	Session            [16]byte
	Deadline           int64
	// Denied
	Code   uint8
	Reason []byte
	// Ended
	OK bool
	// Number
	Number uint8
}

func goBytes(s C.struct_jk_str) []byte {
	if s.n == 0 {
		return []byte{}
	}
	return C.GoBytes(unsafe.Pointer(s.p), C.int(s.n))
}

// Decode runs jk_decode on body (copied into C memory of exactly its
// length, so that a read past the end is a read past the allocation).
func Decode(body []byte) (Msg, bool) {
	p := C.malloc(C.size_t(len(body) + 1))
	defer C.free(p)
	buf := unsafe.Slice((*byte)(p), len(body)+1)
	copy(buf, body)
	var m C.struct_jk_msg
	if C.jk_decode((*C.uint8_t)(p), C.size_t(len(body)), &m) != 0 {
		return Msg{}, false
	}
	out := Msg{Type: uint8(m._type)}
	u := unsafe.Pointer(&m.u[0])
	switch out.Type {
	case C.JK_MSG_STATUS:
		s := (*struct{ online, otp, secondApproval C.int })(u)
		out.Online, out.OTP, out.SecondApproval = s.online != 0, s.otp != 0, s.secondApproval != 0
	case C.JK_MSG_QR:
		q := (*struct {
			text, png, terminal C.struct_jk_str
			expires             C.int64_t
		})(u)
		out.Text, out.PNG, out.Terminal, out.Expires = goBytes(q.text), goBytes(q.png), goBytes(q.terminal), int64(q.expires)
	case C.JK_MSG_CREDENTIAL:
		c := (*struct {
			username, password C.struct_jk_str
			session            [16]C.uint8_t
			deadline           C.int64_t
		})(u)
		out.Username, out.Password, out.Deadline = goBytes(c.username), goBytes(c.password), int64(c.deadline)
		for i := range out.Session {
			out.Session[i] = byte(c.session[i])
		}
	case C.JK_MSG_DENIED:
		d := (*struct {
			code   C.uint8_t
			reason C.struct_jk_str
		})(u)
		out.Code, out.Reason = uint8(d.code), goBytes(d.reason)
	case C.JK_MSG_ENDED:
		out.OK = (*struct{ ok C.int })(u).ok != 0
	case C.JK_MSG_NUMBER:
		out.Number = uint8((*struct{ number C.uint8_t })(u).number)
	}
	return out, true
}

func result(buf []byte, n C.size_t) ([]byte, bool) {
	if n == 0 {
		return nil, false
	}
	return buf[:n], true
}

// EncodeBegin runs jk_encode_begin with an output buffer of size bytes;
// an empty target is passed as NULL.
func EncodeBegin(surface string, action uint8, target string, size int) ([]byte, bool) {
	cs := C.CString(surface)
	defer C.free(unsafe.Pointer(cs))
	var ct *C.char
	if target != "" {
		ct = C.CString(target)
		defer C.free(unsafe.Pointer(ct))
	}
	buf := make([]byte, size+1)
	return result(buf, C.jk_encode_begin((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(size), cs, C.uint8_t(action), ct))
}

// EncodePush runs jk_encode_push with an output buffer of size bytes.
func EncodePush(email string, size int) ([]byte, bool) {
	cs := C.CString(email)
	defer C.free(unsafe.Pointer(cs))
	buf := make([]byte, size+1)
	return result(buf, C.jk_encode_push((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(size), cs))
}

// EncodeCode runs jk_encode_code with an output buffer of size bytes.
func EncodeCode(username, code string, size int) ([]byte, bool) {
	cu, cc := C.CString(username), C.CString(code)
	defer C.free(unsafe.Pointer(cu))
	defer C.free(unsafe.Pointer(cc))
	buf := make([]byte, size+1)
	return result(buf, C.jk_encode_code((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(size), cu, cc))
}

// EncodeEnd runs jk_encode_end with an output buffer of size bytes.
func EncodeEnd(session [16]byte, size int) ([]byte, bool) {
	buf := make([]byte, size+1)
	return result(buf, C.jk_encode_end((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(size), (*C.uint8_t)(unsafe.Pointer(&session[0]))))
}

// UTF8Valid runs jk_utf8_valid.
func UTF8Valid(b []byte) bool {
	p := C.malloc(C.size_t(len(b) + 1))
	defer C.free(p)
	copy(unsafe.Slice((*byte)(p), len(b)+1), b)
	return C.jk_utf8_valid((*C.uint8_t)(p), C.size_t(len(b))) != 0
}
