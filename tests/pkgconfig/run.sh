#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds consumer.c with only pkg-config's flags,
# and runs it.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
san=""
grep -q '^WXAUTH_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"
# shellcheck disable=SC2046,SC2086
cc -std=c17 -Wall -Werror $san "$here/consumer.c" -o "$prefix/consumer" $(pkg-config --cflags --libs wxauth)
LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer"
