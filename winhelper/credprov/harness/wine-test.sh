#!/bin/sh
# wine-test.sh BIN: builds harness.exe and the bcryptprimitives shim into
# BIN (which holds jitkey-agent.exe and jitkey_cp.dll from make
# winhelper) and the tests of relay/client/winudp for windows, installs
# wine64 if missing, and runs the end-to-end Wine test (winetest/main.go). make test runs it too (winhelper/credprov
# TestWine); see README "Windows".
set -eu
bin=$1
dir=$(cd "$(dirname "$0")" && pwd)
root=$dir/../../..
[ -x /usr/lib/wine/wine64 ] || "$root/scripts/install-deps.sh" wine64
x86_64-w64-mingw32-g++ -std=c++17 -O2 -Wall -Wno-unused-parameter -DUNICODE -D_UNICODE \
	-I"$dir/../dll" -I"$dir/../core" -static -o "$bin/harness.exe" "$dir/harness.cpp" -lcredui -lole32 -luuid -luser32 -lgdi32
x86_64-w64-mingw32-gcc -O2 -Wall -shared -o "$bin/bcryptprimitives.dll" \
	"$dir/bcryptprimitives.c" "$dir/bcryptprimitives.def" -ladvapi32
cd "$root"
# The relay client's winsock UDP socket's tests, run under Wine by winetest.
GOOS=windows GOARCH=amd64 go test -c -o "$bin/winudp.test.exe" ./relay/client/winudp
go run ./winhelper/credprov/harness/winetest "$bin"
