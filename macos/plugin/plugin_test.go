package plugin_test

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestMechanismCompiles compiles mechanism.c (the plugin's entry points
// and agent conversation) with the host compiler against the SDK
// declarations transcribed in mechanism/sdkstub. It shows the C half is
// well-formed against the documented API; the AppKit half and the bundle
// build only on a Mac.
func TestMechanismCompiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the stubs stand in for the SDK on Linux only")
	}
	args := []string{"-std=gnu11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wvla",
		"-Imechanism/sdkstub", "-Icore", "-I../../internal/ipcc", "mechanism/mechanism.c"}
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
