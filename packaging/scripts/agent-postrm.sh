#!/bin/sh
# jitkey-agent postrm: purge removes the agent's state (its keys and
# database); the jitkey accounts it left disabled stay, for the
# administrator to review (getent passwd | grep '^msp-').
set -e
if [ "$1" = "purge" ]; then
	rm -rf /var/lib/jitkey/agent
	rmdir /var/lib/jitkey 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
