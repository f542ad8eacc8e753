package protocol

import "fmt"

// E2E frame kinds: the payload of a relay frame between two peers.
const (
	E2EHello uint8 = 1 // Noise message 1, with flow and initiator relay
	E2EReply uint8 = 2 // Noise message 2
	E2EData  uint8 = 3 // Noise transport message
	E2EAbort uint8 = 4 // unauthenticated hint that the sender dropped the session
)

// E2EFrame is what peers put in relay payloads:
//
//	0..15   session id  16 bytes (random for KK flows; derived from the code's secret for first contact)
//	16      kind        u8
//	17..    body
//
// Hello body: flow u8 || u8 len || initiator home relay || Noise message 1.
// Reply and Data bodies: a Noise message. Abort body: one reason byte.
type E2EFrame struct {
	Session SessionID
	Kind    uint8
	Flow    Flow   // Hello only
	Relay   string // Hello only: the initiator's home relay (bound into the prologue)
	Body    []byte // Noise message, or the abort reason byte
}

// MaxE2EFrame bounds an e2e frame; it fits a relay payload.
const MaxE2EFrame = 65536

// AppendE2EFrame appends the encoding of f to dst.
func AppendE2EFrame(dst []byte, f E2EFrame) ([]byte, error) {
	dst = append(dst, f.Session[:]...)
	dst = append(dst, f.Kind)
	switch f.Kind {
	case E2EHello:
		if f.Flow.Name() == "" {
			return nil, fmt.Errorf("%w: e2e flow %d", ErrMalformed, f.Flow)
		}
		if err := CheckRelayAddr(f.Relay); err != nil {
			return nil, err
		}
		dst = append(dst, byte(f.Flow), byte(len(f.Relay)))
		dst = append(dst, f.Relay...)
	case E2EReply, E2EData:
	case E2EAbort:
		if len(f.Body) != 1 {
			return nil, fmt.Errorf("%w: abort reason", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: e2e kind %d", ErrMalformed, f.Kind)
	}
	if len(f.Body) == 0 {
		return nil, fmt.Errorf("%w: empty e2e body", ErrMalformed)
	}
	dst = append(dst, f.Body...)
	if len(dst) > MaxE2EFrame {
		return nil, fmt.Errorf("%w: e2e frame of %d bytes", ErrFrameTooLarge, len(dst))
	}
	return dst, nil
}

// ParseE2EFrame decodes an e2e frame. Body aliases b.
func ParseE2EFrame(b []byte) (E2EFrame, error) {
	var f E2EFrame
	if len(b) > MaxE2EFrame {
		return f, fmt.Errorf("%w: e2e frame of %d bytes", ErrFrameTooLarge, len(b))
	}
	if len(b) < 18 {
		return f, fmt.Errorf("%w: e2e frame truncated", ErrMalformed)
	}
	copy(f.Session[:], b[:16])
	f.Kind = b[16]
	rest := b[17:]
	switch f.Kind {
	case E2EHello:
		if len(rest) < 3 {
			return f, fmt.Errorf("%w: e2e hello truncated", ErrMalformed)
		}
		f.Flow = Flow(rest[0])
		n := int(rest[1])
		if f.Flow.Name() == "" || len(rest) < 2+n+1 {
			return f, fmt.Errorf("%w: e2e hello header", ErrMalformed)
		}
		f.Relay = string(rest[2 : 2+n])
		if err := CheckRelayAddr(f.Relay); err != nil {
			return f, fmt.Errorf("%w: e2e hello relay", ErrMalformed)
		}
		rest = rest[2+n:]
	case E2EReply, E2EData:
	case E2EAbort:
		if len(rest) != 1 {
			return f, fmt.Errorf("%w: abort reason", ErrMalformed)
		}
	default:
		return f, fmt.Errorf("%w: e2e kind %d", ErrMalformed, f.Kind)
	}
	f.Body = rest
	return f, nil
}
