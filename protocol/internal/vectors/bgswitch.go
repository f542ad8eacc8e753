package vectors

import (
	"bytes"

	"github.com/jitkey/jitkey/protocol"
)

// breakGlassSwitch writes the vectors of the policy's break-glass switch
// (SPEC.md 6.3 field 28, 11.15): a policy body and a signed policy with
// BreakGlassOff, and the field written out as false, which omitempty
// omits.
func (g *gen) breakGlassSwitch() {
	p := g.policy
	p.BreakGlassOff = true
	body, err := protocol.Marshal(&p)
	check(err)
	base, err := protocol.Marshal(&g.policy)
	check(err)
	// The base policy is a 17-field map; with field 28 true, an 18-field
	// map ending in 18 1c f5.
	if base[0] != 0xb1 || body[0] != 0xb2 || !bytes.HasSuffix(body, []byte{0x18, 0x1c, 0xf5}) {
		panic("policy with BreakGlassOff is not the base policy and 18 1c f5")
	}
	g.add(Vector{Name: "ok-cbor-policy-breakglass-off", Kind: "cbor",
		Description: "a tenant policy body turning break-glass off (key 28 true)", Input: hx(body),
		Context: Context{Type: "Policy"}})
	off := append(append([]byte{0xb2}, base[1:]...), 0x18, 0x1c, 0xf4)
	g.add(Vector{Name: "R01-cbor-policy-breakglass-off-false", Rule: "R-01", Kind: "cbor",
		Description: "a tenant policy body with key 28 (BreakGlassOff) present as false: omitempty omits it",
		Input:       hx(off), Context: Context{Type: "Policy"}, Expect: "ErrNonCanonical"})
	g.add(Vector{Name: "ok-policy-check-breakglass-off", Kind: "policy-check",
		Description: "a consistent policy turning break-glass off on the tenant's devices",
		Input:       hx(g.signEd(protocol.DocPolicy, &p, g.msp)), Context: Context{MSPKey: hx(g.mspPub[:])}, Expect: "ok"})
}
