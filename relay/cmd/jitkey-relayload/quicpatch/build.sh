#!/bin/sh
# build.sh OUT [PATCH...]: builds jitkey-relay against quic-go with the
# patches of this directory applied, for measurement only
# (jitkey-relayload -relay-bin OUT); the product does not ship them.
# Each patch is small, says what and why in its header, and carries its
# tests; they apply in this order (later ones need the earlier ones):
#   release-tls.patch     a server drops crypto/tls state after the handshake
#   lazy-sendqueue.patch  the send queue's goroutine runs only while packets
#                         are queued (2 goroutines per idle connection, not 3)
#   next-send-aead.patch  the next key phase's send AEAD is derived at the
#                         key update, not ahead
# Without PATCH arguments all are applied; name a prefix of the list (e.g.
# release-tls.patch alone) to measure a step by itself. Figures: BENCHMARKS.md,
# Relay, issue 19 subsections ("quic-go patch, second step" for the last two).
# The product's go.mod is not touched: the build uses a copy of it
# (-modfile) with a replace directive pointing at a patched copy of the
# quic-go version that go.mod requires, fetched through the Go module proxy.
#
# With QUICPATCH_KEEP=DIR the patched copy (DIR/quic-go) and the go.mod
# copy (DIR/go.mod) are kept, to run tests against them:
#   go test -modfile=DIR/go.mod ./relay/...       (in jitkey's root)
#   cd DIR/quic-go && go test ./...                (quic-go's own tests)
# Run it under nice -n 19 on a shared machine.
set -eu
out=$(realpath -m "${1:?usage: build.sh OUT [PATCH...]}")
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
[ $# -gt 0 ] || set -- release-tls.patch lazy-sendqueue.patch next-send-aead.patch
cd "$root"
ver=$(go list -m -f '{{.Version}}' github.com/quic-go/quic-go)
src=$(go mod download -json "github.com/quic-go/quic-go@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -n "${QUICPATCH_KEEP:-}" ]; then
	mkdir -p "$QUICPATCH_KEEP"
	work=$(realpath "$QUICPATCH_KEEP")
	[ ! -e "$work/quic-go" ] || { chmod -R u+w "$work/quic-go"; rm -rf "$work/quic-go"; }
else
	work=$(mktemp -d)
	trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
fi
cp -r "$src" "$work/quic-go"
chmod -R u+w "$work/quic-go"
for p in "$@"; do
	(cd "$work/quic-go" && patch -s -p1 < "$here/$(basename "$p")")
done
cp go.mod "$work/go.mod"
cp go.sum "$work/go.sum"
go mod edit -modfile="$work/go.mod" -replace "github.com/quic-go/quic-go=$work/quic-go"
go build -modfile="$work/go.mod" -o "$out" ./relay/cmd/jitkey-relay
echo "built $out with quic-go $ver + $*"
