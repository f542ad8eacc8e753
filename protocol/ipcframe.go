package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxIPCFrame bounds one local IPC message body (login surface <-> agent).
const MaxIPCFrame = 16 << 10

// ErrFrameTooLarge is returned when a frame's declared length exceeds its bound.
var ErrFrameTooLarge = errors.New("protocol: frame too large")

// ErrEmptyFrame is returned for a zero-length IPC frame.
var ErrEmptyFrame = errors.New("protocol: empty frame")

// AppendIPCFrame appends one IPC frame to dst:
//
//	length: u32 big-endian, 1..MaxIPCFrame
//	body:   length bytes (a deterministic CBOR message)
func AppendIPCFrame(dst, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return dst, ErrEmptyFrame
	}
	if len(body) > MaxIPCFrame {
		return dst, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, len(body), MaxIPCFrame)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...), nil
}

// ReadIPCFrame reads one IPC frame from r. It checks the length before
// allocating, so a peer cannot make it allocate more than MaxIPCFrame.
func ReadIPCFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	if n > MaxIPCFrame {
		return nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, MaxIPCFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("protocol: truncated ipc frame: %w", err)
	}
	return body, nil
}
