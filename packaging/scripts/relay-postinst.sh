#!/bin/sh
# jitkey-relay postinst: installs, does not start; configure
# /etc/default/jitkey-relay, then "systemctl enable --now jitkey-relay".
set -e
if [ "$1" = "configure" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if systemctl is-active --quiet jitkey-relay.service; then
		systemctl restart jitkey-relay.service || true
	fi
fi
exit 0
