package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// build builds the binaries the packages hold and nfpm, and runs nfpm for
// both packages as make package does (from a root holding bin/ and
// packaging/); it returns the .deb paths.
func build(t *testing.T) (agent, relay string) {
	t.Helper()
	stage, dist := t.TempDir(), t.TempDir()
	bin := filepath.Join(stage, "bin")
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(stage, "packaging")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct{ dir, pkg, out string }{
		{"..", "./agent/cmd/jitkey-agent", "jitkey-agent"},
		{"..", "./relay/cmd/jitkey-relay", "jitkey-relay"},
		{".", "github.com/goreleaser/nfpm/v2/cmd/nfpm", "nfpm"},
	} {
		cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.out, err, out)
		}
	}
	if out, err := exec.CommandContext(t.Context(), "../agent/pam/c/build.sh", filepath.Join(bin, "pam_jitkey.so")).CombinedOutput(); err != nil {
		t.Fatalf("build pam_jitkey.so: %v\n%s", err, out)
	}
	for _, cfg := range []string{"nfpm-agent.yaml", "nfpm-relay.yaml"} {
		cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "nfpm"), "package", "-f", "packaging/"+cfg, "-p", "deb", "-t", dist+"/")
		cmd.Dir = stage
		cmd.Env = append(os.Environ(), "JITKEY_VERSION=0.1.0~test")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nfpm %s: %v\n%s", cfg, err, out)
		}
	}
	return filepath.Join(dist, "jitkey-agent_0.1.0~test_amd64.deb"), filepath.Join(dist, "jitkey-relay_0.1.0~test_amd64.deb")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebs builds both packages, unpacks them into a throwaway root
// (dpkg -x) and checks their files, modes, control data, maintainer
// scripts and systemd units; then it installs the agent's package with
// dpkg into another throwaway root and takes it out again (checkInstall).
func TestDebs(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatal("dpkg-deb missing (Debian machines have it)")
	}
	agent, relay := build(t)
	t.Run("install", func(t *testing.T) { checkInstall(t, agent) })

	root := t.TempDir()
	run(t, "dpkg-deb", "-x", agent, root)
	run(t, "dpkg-deb", "-x", relay, root)
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{"usr/sbin/jitkey-agent", 0o755},
		{"usr/sbin/jitkey-relay", 0o755},
		{"usr/lib/x86_64-linux-gnu/security/pam_jitkey.so", 0o644},
		{"lib/systemd/system/jitkey-agent.service", 0o644},
		{"lib/systemd/system/jitkey-relay.service", 0o644},
		{"usr/share/pam-configs/jitkey", 0o644},
		{"etc/default/jitkey-agent", 0o644},
		{"etc/default/jitkey-relay", 0o644},
	} {
		fi, err := os.Stat(filepath.Join(root, f.path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "var/lib/jitkey")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/jitkey: %v %v, want a 0700 directory", fi, err)
	}

	// The PAM module exports the PAM entry points and nothing else.
	syms := strings.Fields(run(t, "nm", "-D", "--defined-only", "--format=just-symbols", filepath.Join(root, "usr/lib/x86_64-linux-gnu/security/pam_jitkey.so")))
	want := []string{"pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_close_session", "pam_sm_open_session", "pam_sm_setcred"}
	if slices.Sort(syms); !slices.Equal(syms, want) {
		t.Errorf("pam_jitkey.so exports %v, want %v", syms, want)
	}

	// The pam-auth-update profile is off by default: installing the
	// package changes no PAM stack.
	profile, _ := os.ReadFile(filepath.Join(root, "usr/share/pam-configs/jitkey"))
	for _, line := range []string{"Default: no", "[success=end ignore=ignore default=die] pam_jitkey.so"} {
		if !strings.Contains(string(profile), line) {
			t.Errorf("pam-auth-update profile lacks %q", line)
		}
	}

	// Control data and maintainer scripts.
	info := run(t, "dpkg-deb", "-I", agent)
	for _, s := range []string{"Package: jitkey-agent", "Version: 0.1.0~test", "Architecture: amd64", "Depends: libpam0g, libpam-runtime, passwd"} {
		if !strings.Contains(info, s) {
			t.Errorf("control lacks %q:\n%s", s, info)
		}
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", agent, ctl)
	post, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	prerm, _ := os.ReadFile(filepath.Join(ctl, "prerm"))
	if strings.Contains(string(post), "pam-auth-update --enable") && !strings.Contains(string(post), "3. pam-auth-update --enable jitkey") ||
		strings.Contains(string(post), "systemctl enable") && !strings.Contains(string(post), "2. systemctl enable") {
		t.Error("postinst enables something")
	}
	if !strings.Contains(string(prerm), "pam-auth-update --package --remove jitkey") {
		t.Error("prerm does not take the module out of the PAM stacks before removal")
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		run(t, "sh", "-n", filepath.Join(ctl, s))
	}

	// Units: hardened, and valid for systemd.
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/jitkey-agent.service"))
	for _, s := range []string{"ExecStart=/usr/sbin/jitkey-agent run --state /var/lib/jitkey/agent --ipc /run/jitkey/agent.sock",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "RuntimeDirectoryMode=0700", "CapabilityBoundingSet=", "SystemCallFilter=@system-service"} {
		if !strings.Contains(string(unit), s) {
			t.Errorf("agent unit lacks %q", s)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// The units they refer to (sysinit.target, ...) come from the host.
		run(t, "cp", "-an", "/lib/systemd/system/.", filepath.Join(root, "lib/systemd/system/"))
		for _, u := range []string{"jitkey-agent.service", "jitkey-relay.service"} {
			out, err := exec.CommandContext(t.Context(), "systemd-analyze", "verify", "--root="+root, "/lib/systemd/system/"+u).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
			}
		}
	}
}
