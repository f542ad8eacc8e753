#!/bin/sh
# build.sh OUT.msi AGENT.exe PROVIDER.dll VERSION builds the Windows
# installer with wixl (msitools) from jitkey.wxs.
set -eu
out=$1 exe=$2 dll=$3 version=$4
dir=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$exe" "$stage/jitkey-agent.exe"
cp "$dll" "$stage/jitkey_cp.dll"
cp "$dir/jitkey.wxs" "$stage/"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
(cd "$stage" && wixl -a x64 -D Version="$version" -o "$out" jitkey.wxs)
