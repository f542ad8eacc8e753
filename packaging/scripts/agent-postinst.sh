#!/bin/sh
# jitkey-agent postinst: installs, never switches anything on. The agent
# starts after enrollment and "systemctl enable --now jitkey-agent"; PAM
# uses jitkey only after "pam-auth-update --enable jitkey".
set -e
if [ "$1" = "configure" ]; then
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null 2>&1 || true
		# An upgrade restarts an agent that was running.
		if systemctl is-active --quiet jitkey-agent.service; then
			systemctl restart jitkey-agent.service || true
		fi
	fi
	if [ -z "$2" ]; then
		cat <<'MSG'
jitkey-agent is installed but not enabled. To use it:
  1. jitkey-agent enroll --token-file TOKEN --state /var/lib/jitkey/agent --name "$(hostname)"
  2. systemctl enable --now jitkey-agent
  3. pam-auth-update --enable jitkey      (jitkey logins for msp-* accounts)
Keep a break-glass path first (README.md, "Break-glass access").
MSG
	fi
fi
exit 0
