package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestIPCFrameRoundTrip(t *testing.T) {
	var buf []byte
	bodies := [][]byte{{0xa0}, bytes.Repeat([]byte{1}, MaxIPCFrame), []byte("hello")}
	for _, b := range bodies {
		var err error
		buf, err = AppendIPCFrame(buf, b)
		if err != nil {
			t.Fatal(err)
		}
	}
	if binary.BigEndian.Uint32(buf) != 1 {
		t.Fatalf("length prefix %x", buf[:4])
	}
	r := bytes.NewReader(buf)
	for i, want := range bodies {
		got, err := ReadIPCFrame(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := ReadIPCFrame(r); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

// countingReader fails the test if more than limit bytes are requested.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestIPCFrameReject(t *testing.T) {
	frame := func(n uint32, body []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, n), body...) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty frame", frame(0, nil), ErrEmptyFrame},
		{"too large", frame(MaxIPCFrame+1, nil), ErrFrameTooLarge},
		{"huge", frame(0xffffffff, nil), ErrFrameTooLarge},
		{"truncated body", frame(5, []byte("abc")), io.ErrUnexpectedEOF},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tt.in)}
			_, err := ReadIPCFrame(cr)
			wantErr(t, err, tt.want)
			if errors.Is(tt.want, ErrFrameTooLarge) && cr.n != 4 {
				t.Fatalf("read %d bytes past an oversized header", cr.n-4)
			}
		})
	}
	if _, err := AppendIPCFrame(nil, nil); !errors.Is(err, ErrEmptyFrame) {
		t.Errorf("append empty: %v", err)
	}
	if _, err := AppendIPCFrame(nil, make([]byte, MaxIPCFrame+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("append large: %v", err)
	}
}
