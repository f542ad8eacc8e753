#!/bin/sh
# build.sh OUT builds the credential provider DLL (jitkey_cp.dll) at OUT
# with mingw-w64 (x86_64-w64-mingw32-gcc/g++), statically linked libgcc
# and libstdc++ (no runtime to install beside it), no exceptions, and
# only DllGetClassObject and DllCanUnloadNow exported (jitkey_cp.def).
set -eu
out=$1
dir=$(cd "$(dirname "$0")" && pwd)
core=$dir/../core
ipcc=$dir/../../../internal/ipcc # the IPC codec all C login surfaces share
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CC=${MINGW_CC:-x86_64-w64-mingw32-gcc}
CXX=${MINGW_CXX:-x86_64-w64-mingw32-g++}
common="-O2 -Wall -Wextra -Werror -D_WIN32_WINNT=0x0A00 -DUNICODE -D_UNICODE -I$ipcc -I$core -I$dir"
$CC -std=gnu11 $common -c "$ipcc/jkmsg.c" -o "$tmp/jkmsg.o"
for f in "$core/tile.cpp" "$core/pack.cpp" "$core/qrterm.cpp" "$dir/module.cpp" "$dir/provider.cpp" "$dir/credential.cpp" "$dir/agentlink.cpp"; do
	$CXX -std=c++17 $common -fno-exceptions -fno-rtti -Wno-unused-parameter -c "$f" -o "$tmp/$(basename "$f" .cpp).o"
done
$CXX -shared -static-libgcc -static-libstdc++ -Wl,--no-insert-timestamp -o "$out" \
	"$tmp"/*.o "$dir/jitkey_cp.def" \
	-lsecur32 -lcredui -lnetapi32 -ladvapi32 -lshlwapi -lole32 -luuid -luser32 -lgdi32 -lkernel32
