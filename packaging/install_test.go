package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// installScript installs the agent package with dpkg into a throwaway
// root and takes it out again, recording what it sees in $OUT. It runs in
// a private mount namespace (unshare --mount --propagation private), so
// every mount vanishes with it. The root is this machine's /usr, /etc and
// /var as overlays whose changes go to a tmpfs (the host's files are only
// read): dpkg finds the package's dependencies in the host's status
// database, and the maintainer scripts run chrooted in the root with the
// host's real pam-auth-update. Steps:
//
//	install  dpkg --root ROOT -i: unpack, postinst configure
//	enable   pam-auth-update --enable jitkey (what an administrator runs)
//	remove   dpkg -r: prerm takes the module out of the PAM stacks
//	purge    dpkg -P: postrm deletes the agent's state
//
// The overlays' lower layers are the live host directories: a dpkg run
// on the host at the same moment (another apt-get) can leave its
// database half-written in the root, and dpkg then refuses to install
// ("dpkg was interrupted"). CI runs nothing else.
const installScript = `set -eu
deb=$1 root=$2 out=$3 layers=$4
mount -t tmpfs -o mode=755 tmpfs "$layers"
for d in usr etc var; do
	mkdir -p "$layers/$d/upper" "$layers/$d/work" "$root/$d"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$layers/$d/upper,workdir=$layers/$d/work" "$root/$d"
done
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
mkdir -p "$root/dev" "$root/proc" "$root/run" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
export DEBIAN_FRONTEND=noninteractive
# Stacks as the host has them (and as the root starts with).
cat "$root/etc/pam.d/common-auth" "$root/etc/pam.d/common-account" "$root/etc/pam.d/common-session" >"$out/pam.before"

dpkg --root="$root" --force-unsafe-io -i "$deb" >"$out/install.log" 2>&1
dpkg --root="$root" -s jitkey-agent >"$out/status" 2>&1
(cd "$layers/etc/upper" && find . -mindepth 1 | sort) >"$out/etc-changed"
cat "$root/etc/pam.d/common-auth" "$root/etc/pam.d/common-account" "$root/etc/pam.d/common-session" >"$out/pam.installed"
for f in /usr/sbin/jitkey-agent /usr/lib/x86_64-linux-gnu/security/pam_jitkey.so /lib/systemd/system/jitkey-agent.service \
	/usr/share/pam-configs/jitkey /etc/default/jitkey-agent /var/lib/jitkey; do
	stat -c '%a %U:%G %F %n' "$root$f" | sed "s|$root||"
done >"$out/modes"
systemd-analyze verify --root="$root" /lib/systemd/system/jitkey-agent.service >"$out/verify" 2>&1 || echo "exit $?" >>"$out/verify"
systemd-analyze security --offline=yes --root="$root" jitkey-agent.service >"$out/security" 2>&1 || echo "exit $?" >>"$out/security"

chroot "$root" pam-auth-update --enable jitkey >"$out/enable.log" 2>&1
cat "$root/etc/pam.d/common-auth" "$root/etc/pam.d/common-account" "$root/etc/pam.d/common-session" >"$out/pam.enabled"

dpkg --root="$root" -r jitkey-agent >"$out/remove.log" 2>&1
cat "$root/etc/pam.d/common-auth" "$root/etc/pam.d/common-account" "$root/etc/pam.d/common-session" >"$out/pam.removed"
ls "$root/usr/lib/x86_64-linux-gnu/security/pam_jitkey.so" "$root/usr/sbin/jitkey-agent" >"$out/left" 2>&1 || true
mkdir -p "$root/var/lib/jitkey/agent" && touch "$root/var/lib/jitkey/agent/agent.db"
dpkg --root="$root" -P jitkey-agent >"$out/purge.log" 2>&1
ls -d "$root/var/lib/jitkey" >"$out/state-left" 2>&1 || true
`

// checkInstall installs the agent package into a throwaway root, runs its
// maintainer scripts there, and checks the installed files and modes,
// that installing changes no PAM stack, that pam-auth-update --enable
// then puts pam_jitkey into the stacks (the profile works), that removal
// takes it out again and deletes the files, and that purge deletes the
// agent's state; the unit as installed passes systemd-analyze verify and
// gets a security exposure below 5 (systemd-analyze security --offline).
func checkInstall(t *testing.T, agent string) {
	t.Helper()
	for _, tool := range []string{"unshare", "dpkg", "chroot", "pam-auth-update", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (Debian machines have it)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CI runs as root): the throwaway root uses mount namespaces and chroot")
	}
	base := t.TempDir()
	root, out, layers := filepath.Join(base, "root"), filepath.Join(base, "out"), filepath.Join(base, "layers")
	for _, d := range []string{root, out, layers} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostBefore := hostPAM(t)
	cmd := exec.CommandContext(t.Context(), "unshare", "--mount", "--propagation", "private", "sh", "-c", installScript, "install", agent, root, out, layers)
	o, err := cmd.CombinedOutput()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(out, name))
		return string(b)
	}
	if err != nil {
		t.Fatalf("install script: %v\n%s\ninstall.log:\n%s\nenable.log:\n%s\nremove.log:\n%s\npurge.log:\n%s", err, o,
			read("install.log"), read("enable.log"), read("remove.log"), read("purge.log"))
	}
	if hostPAM(t) != hostBefore {
		t.Fatal("the host's PAM stacks changed")
	}
	t.Logf("dpkg --root -i:\n%s", read("install.log"))

	if st := read("status"); !strings.Contains(st, "Status: install ok installed") {
		t.Errorf("dpkg -s after install:\n%s", st)
	}
	// Files and modes as installed (owner root).
	for _, want := range []string{
		"755 root:root regular file /usr/sbin/jitkey-agent",
		"644 root:root regular file /usr/lib/x86_64-linux-gnu/security/pam_jitkey.so",
		"644 root:root regular file /lib/systemd/system/jitkey-agent.service",
		"644 root:root regular file /usr/share/pam-configs/jitkey",
		"644 root:root regular file /etc/default/jitkey-agent",
		"700 root:root directory /var/lib/jitkey",
	} {
		if !strings.Contains(read("modes"), want+"\n") {
			t.Errorf("installed files lack %q:\n%s", want, read("modes"))
		}
	}
	// postinst switched nothing on: the only file in /etc that installing
	// touched is the package's own default file; the PAM stacks are as
	// before, and postinst says what to run.
	if changed := strings.Fields(read("etc-changed")); strings.Join(changed, " ") != "./default ./default/jitkey-agent" {
		t.Errorf("installing changed in /etc: %v, want only default/jitkey-agent", changed)
	}
	if read("pam.installed") != read("pam.before") || strings.Contains(read("pam.installed"), "pam_jitkey") {
		t.Errorf("installing changed the PAM stacks:\n%s", read("pam.installed"))
	}
	if !strings.Contains(read("install.log"), "jitkey-agent is installed but not enabled") {
		t.Errorf("postinst does not say how to enable jitkey:\n%s", read("install.log"))
	}
	// The administrator's explicit command puts the module into the
	// stacks, where the profile says: first in the Primary auth block
	// (pam-auth-update turns success=end into a jump past the block, so
	// an approval is enough and a refusal ends the login), Additional for
	// account and session.
	enabled := read("pam.enabled")
	for _, want := range []string{
		`(?m)^auth\s+\[success=\d+ ignore=ignore default=die\]\s+pam_jitkey\.so\s*\n(auth\s+\[success=\d+ default=ignore\]\s+pam_unix\.so)`,
		`(?m)^account\s+required\s+pam_jitkey\.so\s*$`,
		`(?m)^session\s+optional\s+pam_jitkey\.so\s*$`,
	} {
		if !regexp.MustCompile(want).MatchString(enabled) {
			t.Errorf("after pam-auth-update --enable jitkey the stacks do not match %s:\n%s", want, enabled)
		}
	}
	// Removal takes it out and deletes the files; purge the state.
	if removed := read("pam.removed"); strings.Contains(removed, "pam_jitkey") {
		t.Errorf("after dpkg -r the stacks still name pam_jitkey:\n%s", removed)
	}
	if left := strings.Split(strings.TrimSpace(read("left")), "\n"); len(left) != 2 || strings.Count(strings.Join(left, "\n"), "No such file") != 2 {
		t.Errorf("dpkg -r left files: %q", left)
	}
	if left := read("state-left"); !strings.Contains(left, "No such file") {
		t.Errorf("dpkg -P left the agent's state: %s", left)
	}

	// The unit as installed.
	if v := read("verify"); strings.Contains(v, "exit ") || strings.Contains(v, "jitkey") {
		t.Errorf("systemd-analyze verify jitkey-agent.service:\n%s", v)
	}
	sec := read("security")
	t.Logf("systemd-analyze security --offline=yes jitkey-agent.service (last line): %s", lastLine(sec))
	m := regexp.MustCompile(`Overall exposure level for jitkey-agent\.service: ([0-9.]+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no exposure level:\n%s", sec)
	}
	// The agent runs as root and manages accounts (it needs /etc, kill,
	// setuid); everything else is taken away. 5 is systemd's boundary
	// between OK and MEDIUM.
	if x, err := strconv.ParseFloat(m[1], 64); err != nil || x >= 5 {
		t.Errorf("exposure %s, want below 5:\n%s", m[1], sec)
	}
}

// hostPAM returns the host's common PAM stacks, to check that the test
// leaves them as they were.
func hostPAM(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, f := range []string{"common-auth", "common-account", "common-session", "common-password"} {
		data, err := os.ReadFile("/etc/pam.d/" + f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}
