package protocol

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the wire-format package free of transport,
// storage and operating-system code: protocol must import (transitively)
// neither QUIC nor SQLite nor os/exec, net or golang.org/x/sys. The one
// exception is golang.org/x/sys/cpu, a CPU feature probe without system
// calls that golang.org/x/crypto's ChaCha20-Poly1305 and BLAKE2s (used by
// flynn/noise) cannot do without.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-test=false", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("suspiciously few dependencies: %v", deps)
	}
	banned := map[string]bool{"os/exec": true, "net": true, "net/http": true, "database/sql": true}
	bannedPrefix := []string{"github.com/quic-go/", "modernc.org/", "golang.org/x/sys/", "net/"}
	allowed := map[string]bool{"golang.org/x/sys/cpu": true}
	for _, d := range deps {
		if allowed[d] {
			continue
		}
		if banned[d] {
			t.Errorf("protocol depends on %s", d)
		}
		for _, p := range bannedPrefix {
			if strings.HasPrefix(d, p) {
				t.Errorf("protocol depends on %s", d)
			}
		}
	}
}
