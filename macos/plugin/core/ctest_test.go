//go:build linux && cgo

package core_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestC builds the core's C unit tests (ctest/jkcore_test.c) with the host
// compiler, AddressSanitizer and UndefinedBehaviorSanitizer, and runs them.
func TestC(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "jkcore_test")
	cc := "gcc"
	args := []string{"-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wvla",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
		"-I", "../../../internal/ipcc", "-o", bin, "ctest/jkcore_test.c", "jkcore.c", "../../../internal/ipcc/jkmsg.c"}
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "jkcore C tests: ok") {
		t.Fatalf("C tests: %v\n%s", err, out)
	}
}
