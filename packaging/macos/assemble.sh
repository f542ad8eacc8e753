#!/bin/sh
# assemble.sh OUT VERSION: lays out the macOS package tree in OUT (on any
# OS; `make package` runs it): the payload (launchd jobs, binaries'
# places, the sudo_local template, the uninstaller), the installer
# scripts, the component plist and the Distribution file, and the Go
# binaries cross-built for darwin/arm64 and darwin/amd64. build-pkg.sh
# then makes the .pkg on a Mac.
set -eu
out=$1
version=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"
mkdir -p "$out/payload/usr/local/jitkey/bin" "$out/payload/usr/local/jitkey/share" "$out/payload/usr/local/jitkey/lib/pam" "$out/scripts"
cp -R "$here/root/." "$out/payload/"
cp "$here/pam.d/sudo_local.jitkey" "$out/payload/usr/local/jitkey/share/sudo_local.jitkey"
cp "$here/uninstall.sh" "$out/payload/usr/local/jitkey/bin/jitkey-uninstall"
cp "$here/scripts/preinstall" "$here/scripts/postinstall" "$out/scripts/"
chmod 755 "$out/scripts/preinstall" "$out/scripts/postinstall" "$out/payload/usr/local/jitkey/bin/jitkey-uninstall"
cp "$here/component.plist" "$here/distribution.xml" "$here/build-pkg.sh" "$out/"
echo "$version" > "$out/VERSION"
for arch in arm64 amd64; do
	mkdir -p "$out/bin/darwin-$arch"
	for cmd in agent/cmd/jitkey-agent macos/cmd/jitkey-macos; do
		CGO_ENABLED=0 GOOS=darwin GOARCH=$arch ${GO:-go} build -trimpath -o "$out/bin/darwin-$arch/$(basename "$cmd")" "./$cmd"
	done
done
echo "assembled $out (run packaging/macos/build-pkg.sh $out on a Mac for the .pkg)"
