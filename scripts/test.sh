#!/usr/bin/env bash
# Build nono and run the whole test suite (C unit tests, integration, escape battery, 6.1 VM tier).
#   scripts/test.sh            normal build in build/
#   scripts/test.sh --asan     ASan+UBSan build in build-asan/ (same suite)
# Extra arguments go to pytest (e.g. -k proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=build
setup_args=()
if [ "${1:-}" = --asan ]; then
	shift
	builddir=build-asan
	setup_args=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug)
fi
scripts/deps.sh
[ -f "$builddir/build.ninja" ] || meson setup "$builddir" "${setup_args[@]}" >/dev/null
ninja -C "$builddir" >/dev/null
export NONO_BUILD_DIR="$PWD/$builddir"
# Debian's python3 has pytest; a python3 earlier on PATH may not.
exec /usr/bin/python3 -m pytest -q -ra -p no:cacheprovider tests "$@"
