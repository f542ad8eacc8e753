package protocol

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDomainMessages decodes arbitrary bytes as each FlowDomain message
// (DomainRequest, DomainResult, DomainEnd, with their type byte): what
// decodes re-encodes to the same bytes, and VerifyDomainRequest on a
// decoded request returns without panicking.
func FuzzDomainMessages(f *testing.F) {
	for _, b := range vectorInputs(f, false, "domain-request") {
		f.Add(b)
	}
	for _, b := range vectorInputs(f, false, "msg") {
		f.Add(b)
	}
	pol := Policy{Tenant: "acme", DomainAccounts: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []struct {
			ty   MsgType
			body func() any
		}{
			{MsgDomainRequest, func() any { return new(DomainRequest) }},
			{MsgDomainResult, func() any { return new(DomainResult) }},
			{MsgDomainEnd, func() any { return new(DomainEnd) }},
		} {
			v := m.body()
			if err := DecodeMsg(data, m.ty, v); err != nil {
				continue
			}
			again, err := EncodeMsg(m.ty, v)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("type %d decoded but re-encodes differently: %v\n%x\n%x", m.ty, err, data, again)
			}
			if r, ok := v.(*DomainRequest); ok {
				_, _ = VerifyDomainRequest(r, DomainCheck{Policy: &pol, Now: time.Unix(1_790_000_000, 0)})
			}
		}
	})
}
