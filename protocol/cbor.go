package protocol

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxMessageSize bounds every CBOR message and document this package
// decodes. Larger input is rejected before decoding.
const MaxMessageSize = 60 << 10

// ErrMalformed is wrapped by every decoding failure: bad CBOR, duplicate or
// unknown map keys, indefinite lengths, tags, trailing bytes, oversized
// input, or an encoding that is not the canonical one.
var ErrMalformed = errors.New("protocol: malformed message")

// ErrNonCanonical is returned (wrapping ErrMalformed) when input decodes but
// is not the deterministic encoding of what it decodes to. Rejecting it makes
// every accepted message have exactly one byte representation, so signatures
// and replay caches cannot be sidestepped by re-encoding.
var ErrNonCanonical = fmt.Errorf("%w: not canonical CBOR", ErrMalformed)

// codec holds the encoding and decoding modes. Both are immutable and safe
// for concurrent use; they are package-level values derived from constants,
// not mutable global state.
type codec struct {
	enc cbor.UserBufferEncMode
	dec cbor.DecMode
}

var std = mustCodec()

func mustCodec() codec {
	enc, err := cbor.CoreDetEncOptions().UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	dec, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       4096,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertNone,
		DefaultMapType:    nil,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return codec{enc: enc, dec: dec}
}

// Marshal encodes v as deterministic CBOR (RFC 8949 §4.2.1 core
// deterministic encoding; structs use small integer map keys).
func Marshal(v any) ([]byte, error) {
	b, err := std.enc.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %T: %w", v, err)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: encoded %T is %d bytes", ErrFrameTooLarge, v, len(b))
	}
	return b, nil
}

// AppendMarshal appends the encoding Marshal gives v to dst, within
// dst's capacity: the encoder writes straight into dst's array, so no
// pooled encoder buffer and no grown copy ever holds the bytes. It is for
// messages that carry a secret (the login surface's password): the
// caller owns dst and wipes it. If the encoding does not fit in
// cap(dst), or exceeds MaxMessageSize, it fails with ErrFrameTooLarge
// after wiping what it wrote (size dst for the largest message).
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	err := std.enc.MarshalToBuffer(v, buf)
	out := buf.Bytes()
	grown := cap(out) != cap(dst) || (cap(dst) > 0 && &out[:1][0] != &dst[:1][0])
	if err != nil || grown || len(out)-len(dst) > MaxMessageSize {
		clear(out)
		clear(dst[len(dst):cap(dst)])
		if err != nil {
			return nil, fmt.Errorf("protocol: encode %T: %w", v, err)
		}
		return nil, fmt.Errorf("%w: encoded %T does not fit in %d bytes", ErrFrameTooLarge, v, cap(dst)-len(dst))
	}
	return out, nil
}

// Unmarshal decodes data into v, strictly: it rejects input larger than
// MaxMessageSize, duplicate map keys, unknown fields, indefinite lengths,
// tags, trailing bytes, and any encoding other than the canonical one.
func Unmarshal(data []byte, v any) error {
	if len(data) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(data), MaxMessageSize)
	}
	if err := std.dec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %T: %v", ErrMalformed, v, err)
	}
	again, err := std.enc.Marshal(v)
	if err != nil || !bytes.Equal(again, data) {
		return fmt.Errorf("%w: %T", ErrNonCanonical, v)
	}
	return nil
}
