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

echo
echo "== proxy-only: a local web server stands in for an allowed API (loopback only) =="
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$work/project" "$port" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
proxied=(--allow "$work/project" --allow-domain 127.0.0.1 --allow-internal "127.0.0.1:$port")
# --allow-internal lets the command reach that one address both through the proxy (--noproxy ''
# sends this request there) and directly (NO_PROXY lists it); any other loopback port is refused,
# as the last command shows.
run "$nono" run "${proxied[@]}" -- curl -sS --noproxy '' "http://127.0.0.1:$port/README"
run "$nono" run "${proxied[@]}" -- sh -c \
	"curl -s -i http://metadata.google.internal/computeMetadata/v1/ | grep -i -e '^HTTP' -e '^x-nono'"
run "$nono" run "${proxied[@]}" -- sh -c \
	"curl -s -i http://example.com/ | grep -i -e '^HTTP' -e '^x-nono'"
run "$nono" run "${proxied[@]}" -- /usr/bin/python3 -c \
	"import socket; s=socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', $port)); print('direct to the allowed service: ok')"
run "$nono" run "${proxied[@]}" -- /usr/bin/python3 -c \
	"import socket; s=socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', 9))"
