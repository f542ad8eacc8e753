package credprov_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// buildDLL builds jitkey_cp.dll with mingw-w64 (make deps installs it).
func buildDLL(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "jitkey_cp.dll")
	cmd := exec.Command("./dll/build.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	return out
}

// TestDLLExportsAndImports: the DLL exports exactly the two COM entry
// points and imports only system DLLs (libgcc and libstdc++ are linked
// in statically: nothing to install beside it).
func TestDLLExportsAndImports(t *testing.T) {
	dll := buildDLL(t)
	b, err := exec.Command("x86_64-w64-mingw32-objdump", "-p", dll).Output()
	if err != nil {
		t.Fatal(err)
	}
	dump := string(b)
	i := strings.Index(dump, "[Ordinal/Name Pointer] Table")
	if i < 0 {
		t.Fatalf("no export table:\n%s", dump)
	}
	var exports []string
	for _, line := range strings.Split(dump[i:], "\n")[1:] {
		m := regexp.MustCompile(`^\s+\[\s*\d+\] (\S+)`).FindStringSubmatch(line)
		if m == nil {
			break
		}
		exports = append(exports, m[1])
	}
	if want := []string{"DllCanUnloadNow", "DllGetClassObject"}; !slices.Equal(exports, want) {
		t.Fatalf("exports %v, want %v", exports, want)
	}
	system := map[string]bool{"advapi32.dll": true, "credui.dll": true, "gdi32.dll": true, "kernel32.dll": true,
		"msvcrt.dll": true, "ole32.dll": true, "secur32.dll": true, "shlwapi.dll": true, "user32.dll": true}
	imports := regexp.MustCompile(`DLL Name: (\S+)`).FindAllStringSubmatch(dump, -1)
	if len(imports) == 0 {
		t.Fatal("no imports found")
	}
	for _, m := range imports {
		if !system[strings.ToLower(m[1])] {
			t.Errorf("imports %s, not a system DLL", m[1])
		}
	}
}
