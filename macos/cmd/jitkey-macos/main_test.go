package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/macos/authdb"
	"github.com/jitkey/jitkey/macos/mactest"
)

// TestCommands runs the helper's command lines against mactest's fake
// security(1): install, check, a simulated OS update, check and repair,
// restore.
func TestCommands(t *testing.T) {
	rights := map[string][]byte{}
	for _, s := range authdb.DefaultRights() {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "authdb-"+s.Right+".plist"))
		if err != nil {
			t.Fatal(err)
		}
		rights[s.Right] = b
	}
	mac := mactest.New(mactest.Config{Rights: rights})
	state := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	do := func(want int, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if code := run(t.Context(), append(args, "--state", state), mac, &out, log); code != want {
			t.Fatalf("%v: exit %d, want %d\n%s", args, code, want, out.String())
		}
		return out.String()
	}
	do(1, "authdb", "check")
	if out := do(0, "authdb", "install"); strings.Count(out, "jitkey installed") != 3 {
		t.Fatalf("install: %s", out)
	}
	do(0, "authdb", "check")
	mac.SetRight("system.login.console", rights["system.login.console"]) // an OS update
	if out := do(1, "authdb", "check"); !strings.Contains(out, "system.login.console: WITHOUT jitkey") {
		t.Fatalf("check after update: %s", out)
	}
	if out := do(0, "authdb", "repair"); out != "system.login.console: jitkey installed\n" {
		t.Fatalf("repair: %q", out)
	}
	do(0, "authdb", "restore")
	for name, b := range rights {
		if got, _ := mac.Right(name); !bytes.Equal(got, b) {
			t.Fatalf("%s not restored", name)
		}
	}
	do(2, "authdb", "bogus")
	do(2, "frobnicate")
	do(0, "keychain", "init")
	if _, ok := mac.KeychainItem("com.jitkey.agent", "vault-key"); !ok {
		t.Fatal("no keychain item")
	}
}
