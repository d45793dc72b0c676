#!/usr/bin/env bash
# Install what building, the demo and the tests need on Debian 12 (idempotent; needs root or sudo).
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config libseccomp-dev libjansson-dev libevent-dev
      python3 python3-dev python3-pytest curl git iproute2 gcc-multilib)
if [ "${NONO_VM_TESTS:-1}" != 0 ]; then
	pkgs+=(qemu-system-x86 busybox-static)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	echo "installing: ${missing[*]}" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
