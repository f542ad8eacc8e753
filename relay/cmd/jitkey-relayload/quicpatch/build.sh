#!/bin/sh
# build.sh OUT: builds jitkey-relay against quic-go with release-tls.patch
# applied, for measurement only (jitkey-relayload -relay-bin OUT). The
# product's go.mod is not touched: the build uses a copy of it (-modfile)
# with a replace directive pointing at a patched copy of the quic-go
# version that go.mod requires, fetched through the Go module proxy.
set -eu
out=$(realpath -m "${1:?usage: build.sh OUT}")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
cd "$root"
ver=$(go list -m -f '{{.Version}}' github.com/quic-go/quic-go)
src=$(go mod download -json "github.com/quic-go/quic-go@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/quic-go"
chmod -R u+w "$work/quic-go"
(cd "$work/quic-go" && patch -s -p1 < "$here/release-tls.patch")
cp go.mod "$work/go.mod"
cp go.sum "$work/go.sum"
go mod edit -modfile="$work/go.mod" -replace "github.com/quic-go/quic-go=$work/quic-go"
go build -modfile="$work/go.mod" -o "$out" ./relay/cmd/jitkey-relay
echo "built $out with quic-go $ver + release-tls.patch"
