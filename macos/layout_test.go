package macos_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/macos/plist"
)

const layout = "../packaging/macos"

func readLayout(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func args(t *testing.T, rel string) (plist.Value, []string) {
	t.Helper()
	v, err := plist.Decode(readLayout(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	pa, _ := v.Get("ProgramArguments")
	a, ok := pa.Strings()
	if !ok || len(a) == 0 {
		t.Fatalf("%s: ProgramArguments %+v", rel, pa)
	}
	return v, a
}

// TestLayout checks that the package layout agrees with the code: the
// launchd jobs are valid property lists that run root daemons kept
// alive, at the paths the scripts install; the agent's socket is the one
// the plugin and the sudo_local template dial; sudo_local names the
// module by full path and is not installed as /etc/pam.d/sudo_local.
func TestLayout(t *testing.T) {
	agent, a := args(t, "root/Library/LaunchDaemons/com.jitkey.agent.plist")
	if a[0] != "/usr/local/jitkey/bin/jitkey-agent" || a[1] != "run" {
		t.Fatalf("agent job runs %q", a)
	}
	i := slices.Index(a, "--ipc")
	if i < 0 || i+1 >= len(a) {
		t.Fatalf("agent job without --ipc: %q", a)
	}
	sock := a[i+1]
	for k, want := range map[string]bool{"RunAtLoad": true, "KeepAlive": true} {
		if v, _ := agent.Get(k); v.Kind != plist.Bool || v.Bool != want {
			t.Errorf("agent job %s = %+v", k, v)
		}
	}
	if u, _ := agent.Get("UserName"); u.Str != "root" {
		t.Errorf("agent job user %q", u.Str)
	}
	repair, r := args(t, "root/Library/LaunchDaemons/com.jitkey.authdb-repair.plist")
	if !slices.Equal(r, []string{"/usr/local/jitkey/bin/jitkey-macos", "authdb", "repair"}) {
		t.Fatalf("repair job runs %q", r)
	}
	if iv, _ := repair.Get("StartInterval"); iv.Kind != plist.Integer || iv.Int <= 0 || iv.Int > 3600 {
		t.Errorf("repair interval %+v", iv)
	}
	mech := string(readLayout(t, "../../macos/plugin/mechanism/mechanism.c"))
	if !strings.Contains(mech, `#define JK_AGENT_SOCKET "`+sock+`"`) {
		t.Errorf("mechanism.c does not dial %s", sock)
	}
	sudo := string(readLayout(t, "pam.d/sudo_local.jitkey"))
	var rules []string
	for line := range strings.Lines(sudo) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	if len(rules) != 1 {
		t.Fatalf("sudo_local rules %q", rules)
	}
	f := strings.Fields(rules[0])
	if len(f) < 3 || f[0] != "auth" || !strings.HasPrefix(f[2], "/usr/local/jitkey/lib/pam/pam_jitkey.so") ||
		!slices.Contains(f, "socket="+sock) || !slices.Contains(f, "surface=sudo") {
		t.Fatalf("sudo_local rule %q", rules[0])
	}
	for _, script := range []string{"scripts/postinstall", "assemble.sh"} {
		if strings.Contains(string(readLayout(t, script)), "/etc/pam.d/sudo_local") {
			t.Errorf("%s touches /etc/pam.d/sudo_local: sudo must stay opt-in", script)
		}
	}
	un := string(readLayout(t, "uninstall.sh"))
	restore, rm := strings.Index(un, "authdb restore"), strings.Index(un, "rm -rf /Library/Security/SecurityAgentPlugins/JitkeyLogin.bundle")
	stopRepair := strings.Index(un, "bootout system/com.jitkey.authdb-repair")
	if restore < 0 || rm < 0 || stopRepair < 0 || !(stopRepair < restore && restore < rm) {
		t.Error("uninstall must stop the repair job, restore the rights, and only then remove the plugin")
	}
	comp, err := plist.Decode(readLayout(t, "component.plist"))
	if err != nil || comp.Kind != plist.Array || len(comp.Items) != 1 {
		t.Fatalf("component plist: %v", err)
	}
	if p, _ := comp.Items[0].Get("RootRelativeBundlePath"); p.Str != "Library/Security/SecurityAgentPlugins/JitkeyLogin.bundle" {
		t.Errorf("component path %q", p.Str)
	}
	if rel, _ := comp.Items[0].Get("BundleIsRelocatable"); rel.Kind != plist.Bool || rel.Bool {
		t.Error("plugin bundle relocatable")
	}
	if _, err := plist.Decode(readLayout(t, "../../macos/plugin/mechanism/Info.plist")); err != nil {
		t.Errorf("plugin Info.plist: %v", err)
	}
}
