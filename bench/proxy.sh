#!/usr/bin/env bash
# Proxy benchmark: direct vs nono's proxy vs tinyproxy (Debian), same load, same run, loopback only.
#   bench/proxy.sh [BUILD_DIR] [bench_proxy options, e.g. --rounds 5 --idle 9900]
# Installs tinyproxy if missing (Debian package; only run here, on 127.0.0.1, from this script) and
# stops the one it started on exit. Numbers: see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[ $# -gt 0 ] && shift
ninja -C "$build" bench/bench_proxy >/dev/null
if ! command -v tinyproxy >/dev/null; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends tinyproxy >&2
fi
tmp=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=$(id -un)
cat >"$tmp/tinyproxy.conf" <<CONF
User $user
Group $(id -gn)
Port $port
Listen 127.0.0.1
Timeout 600
MaxClients 10000
LogLevel Critical
LogFile "$tmp/tinyproxy.log"
PidFile "$tmp/tinyproxy.pid"
DisableViaHeader Yes
CONF
# The same fd limit as the bench (two fds a tunnel).
ulimit -n "$(ulimit -Hn)"
tinyproxy -d -c "$tmp/tinyproxy.conf" &
tpid=$!
trap 'kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
tinyproxy -v
"$build/bench/bench_proxy" --tinyproxy "$port" --tinyproxy-pid "$tpid" "$@"
