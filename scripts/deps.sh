#!/usr/bin/env bash
# Install what building, the demo and the tests need on Debian 12 (idempotent; needs root or sudo).
# Quiet when nothing is missing. Checked on a `debootstrap --variant=minbase bookworm` root, the same
# package set as the debian:12 image (scripts/fresh-root-check.sh): whatever that root lacks and the
# suite runs must be listed here, with the commands it provides.
#   NONO_VM_TESTS=0 scripts/deps.sh    leaves out the VM tier's qemu and busybox
set -euo pipefail
pkgs=(
	# the build
	build-essential meson ninja-build pkg-config libseccomp-dev libjansson-dev
	libssl-dev        # OpenSSL 3: TLS to credential routes' upstreams, TLS interception
	libsecret-1-dev   # keyring:// credentials: libsecret's headers (the library is dlopen()ed)
	python3 python3-dev
	python3-mesonpy   # pip install . (pyproject.toml's build backend, offline: --no-build-isolation)
	python3-venv      # tests/python/test_py_pip.py installs nono_py into a fresh venv
	# the tests: pytest, and the commands they run
	python3-pytest
	curl              # test_cli/test_proxy: a real HTTP client through the proxy; the demo
	git               # test_proxy: git clone over HTTP through the proxy
	iproute2          # ip: addresses and dummy links in the tests' own network namespaces
	procps            # sysctl: ping_group_range in test_escape's namespace (not in debian:12)
	mount             # mount --bind of /etc/hosts, resolv.conf in test_proxy's namespace
	util-linux        # unshare, nsenter, setpriv, setsid
	tinyproxy-bin     # test_proxy_socks_upstream: the corporate proxy upstream (no service started)
	openssl           # test_proxy_intercept: a test CA and server certificate made at test time
	dbus-daemon dbus-bin  # test_keyring: a private session bus (dbus-send: its readiness)
	gnome-keyring     # test_keyring: the secret service on it
	libsecret-tools   # secret-tool: test_keyring stores items
	python3-dbus      # test_keyring: stores a secret over secret-tool's 8 KiB limit
)
# Commands the suite calls, each checked after installing (a package that stops shipping one
# fails here, not as a confusing test error).
cmds=(cc meson ninja pkg-config python3 curl git ip sysctl mount unshare nsenter setpriv setsid
      ldd dpkg-deb apt-get tinyproxy openssl dbus-daemon dbus-send gnome-keyring-daemon secret-tool)
if [ "${NONO_VM_TESTS:-1}" != 0 ]; then
	pkgs+=(qemu-system-x86   # qemu-system-x86_64: boots Debian's 6.1 kernel (tests/vm)
	       busybox-static)   # the guest's userland
	cmds+=(qemu-system-x86_64 busybox)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	SUDO=
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "deps.sh: run as root (missing: ${missing[*]})" >&2; exit 1; }
		SUDO=sudo
	fi
	echo "installing: ${missing[*]}" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >&2
fi
absent=()
for c in "${cmds[@]}"; do
	# sbin is not on a normal user's PATH; the tests call these as root or by absolute path.
	PATH="$PATH:/usr/sbin:/sbin" command -v "$c" >/dev/null || absent+=("$c")
done
if [ ${#absent[@]} -gt 0 ]; then
	echo "deps.sh: still missing after installing: ${absent[*]}" >&2
	exit 1
fi
