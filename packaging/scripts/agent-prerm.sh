#!/bin/sh
# jitkey-agent prerm: on removal, take pam_jitkey out of the PAM stacks
# before the module is deleted (a stack naming a missing module would
# break every login), then stop the agent.
set -e
if [ "$1" = "remove" ] || [ "$1" = "deconfigure" ]; then
	if command -v pam-auth-update >/dev/null 2>&1; then
		pam-auth-update --package --remove jitkey || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl disable --now jitkey-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
