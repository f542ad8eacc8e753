#!/bin/sh
# jitkey-uninstall (installed as /usr/local/jitkey/bin/jitkey-uninstall):
# removes jitkey from a Mac, in the order that never leaves the login
# window naming a missing plugin:
# 1. stop the periodic repair (it would put the mechanisms back);
# 2. restore the original authorization rights (saved at install);
# 3. only then remove the plugin bundle, the jobs and the binaries.
# jitkey's JIT accounts stay (disabled); delete them with
# `sysadminctl -deleteUser NAME` if wanted. /etc/pam.d/sudo_local is
# checked: if it still names pam_jitkey, the uninstall stops before the
# module is removed.
set -eu
if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
BIN=/usr/local/jitkey/bin
/bin/launchctl bootout system/com.jitkey.authdb-repair 2>/dev/null || true
if ! "$BIN/jitkey-macos" authdb restore; then
	echo "jitkey: the authorization rights could not be restored; the plugin is kept so that login keeps working. Fix and re-run." >&2
	exit 1
fi
/bin/launchctl bootout system/com.jitkey.agent 2>/dev/null || true
if [ -f /etc/pam.d/sudo_local ] && /usr/bin/grep -q pam_jitkey /etc/pam.d/sudo_local; then
	echo "jitkey: /etc/pam.d/sudo_local still names pam_jitkey; remove that line, then re-run" >&2
	exit 1
fi
/bin/rm -rf /Library/Security/SecurityAgentPlugins/JitkeyLogin.bundle
/bin/rm -f /Library/LaunchDaemons/com.jitkey.agent.plist /Library/LaunchDaemons/com.jitkey.authdb-repair.plist
/bin/rm -rf /usr/local/jitkey /var/run/jitkey
/usr/sbin/pkgutil --forget com.jitkey.agent >/dev/null 2>&1 || true
echo "jitkey removed; state kept in /Library/Application Support/jitkey (delete it to forget the enrollment)"
