#!/bin/sh
# jitkey-agent prerm: on removal, take pam_jitkey out of the PAM stacks
# before the module is deleted (a stack naming a missing module would
# break every login), then stop the agent.
set -e
if [ "$1" = "remove" ] || [ "$1" = "deconfigure" ]; then
	if command -v pam-auth-update >/dev/null 2>&1; then
		pam-auth-update --package --remove jitkey
	fi
	# pam-auth-update leaves locally edited stacks alone (and exits 0);
	# refuse to delete a module a PAM file still names, which would fail
	# every login on this computer.
	if grep -qs 'pam_jitkey\.so' /etc/pam.d/*; then
		echo "jitkey-agent: pam_jitkey.so is still named in /etc/pam.d; take it out first (pam-auth-update, or edit the file)" >&2
		exit 1
	fi
	if [ -d /run/systemd/system ]; then
		systemctl disable --now jitkey-agent.service >/dev/null 2>&1 || true
	fi
fi
exit 0
