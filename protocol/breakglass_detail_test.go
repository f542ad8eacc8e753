package protocol

import "testing"

// TestBreakGlassUsedDetail: the console reads back exactly the generation
// the agent wrote, and nothing from any other text.
func TestBreakGlassUsedDetail(t *testing.T) {
	for _, g := range []uint64{1, 2, 41, 1 << 40} {
		if got, ok := ParseBreakGlassUsedDetail(BreakGlassUsedDetail(g, g+1)); !ok || got != g {
			t.Errorf("generation %d read back as %d, %v", g, got, ok)
		}
	}
	for _, d := range []string{
		"",
		"recovery code generation 0 used; generation 1 created, escrowed at the next contact with the console",
		"recovery code generation 3 used; generation 5 created, escrowed at the next contact with the console",
		"recovery code generation 3 used; generation 4 created",
		"recovery code generation 3 used",
		"wrong recovery code",
	} {
		if g, ok := ParseBreakGlassUsedDetail(d); ok {
			t.Errorf("%q read as generation %d", d, g)
		}
	}
}
