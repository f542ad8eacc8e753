#!/bin/sh
# build-pkg.sh: turns the tree `make package` assembled (dist/macos/) into
# dist/macos/jitkey-agent-VERSION.pkg. RUN IT ON A MAC: lipo, pkgbuild
# and productbuild are macOS tools, and the plugin bundle builds there
# (make -C macos/plugin). Set SIGN_APP / SIGN_INSTALLER to Developer ID
# identities to sign (and notarize the result with notarytool).
#
#   ./build-pkg.sh dist/macos            (from the repository root)
set -eu
dir=${1:-dist/macos}
version=$(cat "$dir/VERSION")
root="$dir/payload"
test "$(uname)" = Darwin || { echo "build-pkg.sh runs on macOS only (pkgbuild, productbuild, lipo)" >&2; exit 1; }
# Universal binaries from the two cross-built ones.
for b in jitkey-agent jitkey-macos; do
	lipo -create -output "$root/usr/local/jitkey/bin/$b" "$dir/bin/darwin-arm64/$b" "$dir/bin/darwin-amd64/$b"
done
# The authorization plugin (universal).
make -C "$(dirname "$0")/../../macos/plugin" OUT="$(cd "$dir" && pwd)/plugin"
mkdir -p "$root/Library/Security/SecurityAgentPlugins"
rm -rf "$root/Library/Security/SecurityAgentPlugins/JitkeyLogin.bundle"
cp -R "$dir/plugin/JitkeyLogin.bundle" "$root/Library/Security/SecurityAgentPlugins/"
if [ -n "${SIGN_APP:-}" ]; then
	codesign --force --options runtime --timestamp --sign "$SIGN_APP" \
		"$root/usr/local/jitkey/bin/jitkey-agent" "$root/usr/local/jitkey/bin/jitkey-macos" \
		"$root/Library/Security/SecurityAgentPlugins/JitkeyLogin.bundle"
fi
pkgbuild --root "$root" --scripts "$dir/scripts" --component-plist "$dir/component.plist" \
	--identifier com.jitkey.agent --version "$version" --ownership recommended \
	"$dir/jitkey-agent-component.pkg"
sed "s/@VERSION@/$version/" "$dir/distribution.xml" > "$dir/distribution.resolved.xml"
set -- --distribution "$dir/distribution.resolved.xml" --package-path "$dir"
if [ -n "${SIGN_INSTALLER:-}" ]; then set -- "$@" --sign "$SIGN_INSTALLER"; fi
productbuild "$@" "$dir/jitkey-agent-$version.pkg"
echo "built $dir/jitkey-agent-$version.pkg"
