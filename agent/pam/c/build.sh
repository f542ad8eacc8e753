#!/bin/sh
# build.sh OUT builds pam_jitkey.so at OUT with gcc and libpam0g-dev. The
# Makefile (make build) and the Go tests of agent/pam both use it, so the
# hardening flags live in one place. The IPC codec is the one all C login
# surfaces share (internal/ipcc).
set -eu
out=$1
dir=$(dirname "$0")
${CC:-gcc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla \
	-fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIC -fvisibility=hidden \
	-shared -Wl,-z,relro,-z,now,-z,defs,-z,noexecstack \
	-I "$dir/../../../internal/ipcc" \
	-o "$out" "$dir/pam_jitkey.c" "$dir/../../../internal/ipcc/jkmsg.c" -lpam
