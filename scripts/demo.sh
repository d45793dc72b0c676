#!/usr/bin/env bash
# Build nono and show a sandboxed command: allowed and denied file and network access, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
NONO_VM_TESTS=0 scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
nono=build/src/cli/nono
work=$(mktemp -d /tmp/nono-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/project" "$work/secrets"
echo "hello from the project" >"$work/project/README"
echo "AWS_SECRET=hunter2" >"$work/secrets/credentials"

echo "== this kernel =="
"$nono" setup --check
echo
echo "== policy: read-write $work/project, network blocked =="
"$nono" run --dry-run --allow "$work/project" --net-block -- /bin/sh
echo
run() { echo "\$ $*"; "$@" && echo "  -> exit 0" || echo "  -> exit $?"; }
echo "== inside the sandbox =="
run "$nono" run --allow "$work/project" --net-block -- cat "$work/project/README"
run "$nono" run --allow "$work/project" --net-block -- sh -c "echo written >$work/project/out && cat $work/project/out"
run "$nono" run --allow "$work/project" --net-block -- cat "$work/secrets/credentials"
run "$nono" run --allow "$work/project" --net-block -- sh -c "echo x >$work/secrets/planted"
run "$nono" run --allow "$work/project" --net-block -- /usr/bin/python3 -c \
	"import socket; s=socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', 9))"
