#!/usr/bin/env bash
# Fetch Debian 12's own 6.1 kernel for the VM test tier, WITHOUT installing it on the host:
# `apt-get download` the newest linux-image-6.1.0-*-amd64 in the archive, `dpkg-deb -x` it into
# tests/vm/cache/<package>_<version>/, keep only /boot and the few modules the guest loads, and extract
# the uncompressed vmlinux from the bzImage (Debian 12 builds with CONFIG_KERNEL_XZ). qemu boots the
# vmlinux through its PVH entry point (Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY, CONFIG_PVH=y): that skips
# the decompressor and real-mode set-up — ~2.3 s instead of ~7 s for boot + command + power-off under
# TCG, measured here. If the note is missing, the bzImage is used instead.
#
# Prints the kernel directory on stdout (the last line). Idempotent: an existing complete cache dir is
# reused without touching the network. Environment:
#   NONO_VM_KERNEL_PKG   exact package name to use (default: newest linux-image-6.1.0-N-amd64)
#   NONO_VM_CACHE        cache dir (default: tests/vm/cache)
# Exit status: 0 ok; 3 when no kernel package can be found or downloaded (the test tier skips on 3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${NONO_VM_CACHE:-$here/cache}"
mkdir -p "$cache"
log() { echo "fetch-kernel: $*" >&2; }

# The modules the guest may insmod (none are needed for Landlock/seccomp, which are built in):
# dummy and veth are modules in Debian's config (CONFIG_DUMMY=m, CONFIG_VETH=m).
keep_modules=(kernel/drivers/net/dummy.ko kernel/drivers/net/veth.ko)

complete() { [ -f "$1/.complete" ]; }

list_candidates() {
	apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | awk '{print $1}'
}

pick_newest() {
	# One apt-cache call for all candidates (one call each costs ~1 s).
	local cands best="" bestv="" p v
	cands="$(list_candidates)"
	[ -n "$cands" ] || return 1
	while read -r p v; do
		if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$bestv"; then
			best="$p"; bestv="$v"
		fi
	done < <(apt-cache show --no-all-versions $cands 2>/dev/null |
		awk '/^Package:/{p=$2} /^Version:/{print p, $2}')
	[ -n "$best" ] && echo "$best $bestv"
}

pkg="${NONO_VM_KERNEL_PKG:-}"
if [ -n "$pkg" ]; then
	ver="$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/{print $2; exit}')" || true
else
	sel="$(pick_newest || true)"
	if [ -z "$sel" ] && [ "$(id -u)" -eq 0 ]; then
		log "no linux-image-6.1.0-*-amd64 in apt's lists; running apt-get update"
		apt-get update -qq >&2 || true
		sel="$(pick_newest || true)"
	fi
	pkg="${sel%% *}"; ver="${sel#* }"
fi

# Offline or stale lists: the newest complete cache entry, if any, else give up (exit 3: skip).
cached_or_fail() {
	local d
	for d in $(ls -1d "$cache/${NONO_VM_KERNEL_PKG:-linux-image-6.1.0-*-amd64}"_* 2>/dev/null |
		   sort -V -r); do
		if complete "$d"; then log "$1; using cached $d"; echo "$d"; exit 0; fi
	done
	log "$1; no kernel cached in $cache"
	exit 3
}

if [ -z "${pkg:-}" ] || [ -z "${ver:-}" ]; then
	cached_or_fail "no ${NONO_VM_KERNEL_PKG:-linux-image-6.1.0-*-amd64} package in apt's lists"
fi

dir="$cache/${pkg}_${ver}"
if complete "$dir"; then echo "$dir"; exit 0; fi

log "fetching $pkg $ver"
tmp="$(mktemp -d "$cache/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# apt drops privileges to _apt for downloads; a root-owned cache dir makes it warn and fall back to root.
download() {
	(cd "$tmp" && apt-get download "$pkg=$ver" >&2 2> >(grep -v 'Download is performed unsandboxed' >&2))
}
if ! download; then
	# Stale lists name a version the security archive has already replaced: refresh once.
	if [ -z "${NONO_VM_KERNEL_PKG:-}" ] && [ "$(id -u)" -eq 0 ] && apt-get update -qq >&2; then
		sel="$(pick_newest || true)"; pkg="${sel%% *}"; ver="${sel#* }"
		dir="$cache/${pkg}_${ver}"
		if [ -n "$sel" ] && complete "$dir"; then echo "$dir"; exit 0; fi
		[ -n "$sel" ] && log "retrying with $pkg $ver" && download ||
			cached_or_fail "apt-get download $pkg=$ver failed"
	else
		cached_or_fail "apt-get download $pkg=$ver failed"
	fi
fi
deb="$(ls "$tmp"/*.deb)"
dpkg-deb -x "$deb" "$tmp/x"
rm -f "$deb"

kver="$(basename "$(ls -d "$tmp"/x/lib/modules/*)")"
out="$tmp/k"
mkdir -p "$out/modules"
cp "$tmp/x/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$tmp/x/boot/config-$kver" "$out/config"
for m in "${keep_modules[@]}"; do
	if [ -f "$tmp/x/lib/modules/$kver/$m" ]; then cp "$tmp/x/lib/modules/$kver/$m" "$out/modules/"; fi
done
rm -rf "$tmp/x"

py=/usr/bin/python3; [ -x "$py" ] || py=python3
if "$py" "$here/vm.py" extract-vmlinux "$out/vmlinuz" "$out/vmlinux" >&2; then
	log "vmlinux extracted; PVH entry note present"
else
	log "no bootable PVH vmlinux (see above); the bzImage will be booted instead"
	rm -f "$out/vmlinux"
fi
printf 'package=%s\nversion=%s\nrelease=%s\n' "$pkg" "$ver" "$kver" > "$out/kernel.info"
touch "$out/.complete"
rm -rf "$dir"
mv "$out" "$dir"
log "kernel ready in $dir"
echo "$dir"
