package credprov_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	dllOnce sync.Once
	dllPath string
	dllErr  string
	dllDir  string
)

func TestMain(m *testing.M) {
	var err error
	if dllDir, err = os.MkdirTemp("", "jitkey-cp-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dllDir)
	os.Exit(code)
}

// buildDLL builds jitkey_cp.dll with mingw-w64 (make deps installs it),
// once per test run.
func buildDLL(t *testing.T) string {
	t.Helper()
	dllOnce.Do(func() {
		out := filepath.Join(dllDir, "jitkey_cp.dll")
		if b, err := exec.Command("./dll/build.sh", out).CombinedOutput(); err != nil {
			dllErr = err.Error() + "\n" + string(b)
			return
		}
		dllPath = out
	})
	if dllPath == "" {
		t.Fatalf("build.sh: %s", dllErr)
	}
	return dllPath
}

var (
	agentOnce sync.Once
	agentPath string
	agentErr  string
)

// buildAgent builds jitkey-agent.exe (GOOS=windows), once per test run.
func buildAgent(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		out := filepath.Join(dllDir, "jitkey-agent.exe")
		build := exec.Command("go", "build", "-trimpath", "-o", out, "../../agent/cmd/jitkey-agent")
		build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64")
		if b, err := build.CombinedOutput(); err != nil {
			agentErr = err.Error() + "\n" + string(b)
			return
		}
		agentPath = out
	})
	if agentPath == "" {
		t.Fatalf("go build jitkey-agent.exe: %s", agentErr)
	}
	return agentPath
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
		"msvcrt.dll": true, "netapi32.dll": true, "ole32.dll": true, "secur32.dll": true, "shlwapi.dll": true, "user32.dll": true}
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

// TestMSI builds the installer with wixl from the DLL and a Windows build
// of the agent and checks its tables: both files, the service, the COM
// registration and the Credential Providers key (which uninstall removes
// with the component).
func TestMSI(t *testing.T) {
	dll := buildDLL(t)
	exe := buildAgent(t)
	dir := t.TempDir()
	msi := filepath.Join(dir, "jitkey.msi")
	if b, err := exec.Command("../msi/build.sh", msi, exe, dll, "0.1.0").CombinedOutput(); err != nil {
		t.Fatalf("msi build.sh: %v\n%s", err, b)
	}
	export := func(table string) string {
		b, err := exec.Command("msiinfo", "export", msi, table).Output()
		if err != nil {
			t.Fatalf("msiinfo export %s: %v", table, err)
		}
		return string(b)
	}
	const clsid = "{DDD21E6B-4784-44B2-BABD-1645E90BE16F}"
	for table, wants := range map[string][]string{
		"File":           {"\tjitkey-agent.exe\t", "\tjitkey_cp.dll\t"},
		"ServiceInstall": {"jitkey-agent\tjitkey agent\t16\t2\t", "LocalSystem", "service run --state"},
		"ServiceControl": {"jitkey-agent\t162\t"}, // stop at install and uninstall, remove at uninstall; no start
		"Registry": {
			`SOFTWARE\Microsoft\Windows\CurrentVersion\Authentication\Credential Providers\` + clsid,
			`SOFTWARE\Classes\CLSID\` + clsid + `\InprocServer32` + "\t\t[INSTALLDIR]jitkey_cp.dll",
			"ThreadingModel\tApartment",
		},
	} {
		got := export(table)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("%s table lacks %q:\n%s", table, w, got)
			}
		}
	}
	// No filter: nothing under Credential Provider Filters.
	if strings.Contains(export("Registry"), "Credential Provider Filters") {
		t.Error("the MSI registers a provider filter")
	}
}
