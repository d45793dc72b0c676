#!/usr/bin/env bash
# MANUAL / REHEARSAL TOOL, NOT PART OF CI. Runs a clean clone of this repository's HEAD in a fresh
# Debian 12 root, the way CI runs it on the debian:12 image, to prove that the README's commands
# install every command the suite calls (issue 10). Needs root, debootstrap and the Debian archive this
# machine's apt is configured for; it changes nothing on the host outside DIR (mounts live in a private mount
# namespace, whose root is pivoted into DIR/root, and vanish with it).
#   scripts/fresh-root-check.sh [DIR] [-- COMMAND...]
# DIR defaults to /var/tmp/nono-fresh-root. COMMAND runs in the clone inside the root, default
# `bash .ci/run`; e.g. `-- bash -c 'scripts/deps.sh && NONO_VM_TESTS=0 scripts/test.sh'`.
# NONO_VM_TESTS and NONO_VM_SUITES pass through. Each run starts from a pristine copy of the root
# (DIR/pristine, made once with `debootstrap --variant=minbase`) in DIR/root.
#
# What the root gets besides minbase, to match the debian:12 image:
# - this machine's own Debian apt sources (bookworm, bookworm-updates, bookworm-security, as in the
#   image; minbase writes only `bookworm main` to sources.list);
# - /etc/hosts with the localhost lines the container runtime writes (a minbase root has none);
# - /etc/resolv.conf from the host (the runtime bind-mounts one too).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dir=/var/tmp/nono-fresh-root
if [ $# -gt 0 ] && [ "$1" != -- ]; then dir=$1; shift; fi
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || set -- bash .ci/run
[ "$(id -u)" -eq 0 ] || { echo "fresh-root-check: needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "fresh-root-check: apt-get install debootstrap" >&2; exit 1; }
# The archive this machine's own apt sources name (no host is written into this script).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "fresh-root-check: no Debian archive in this machine's apt sources" >&2; exit 1; }

mkdir -p "$dir"
if [ ! -f "$dir/pristine/.complete" ]; then
	rm -rf "$dir/pristine"
	debootstrap --variant=minbase bookworm "$dir/pristine" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
		{ tail -20 "$dir/debootstrap.log" >&2; exit 1; }
	rm -f "$dir/pristine/etc/apt/sources.list"
	# The image's sources are the machine's own (bookworm, -updates, -security).
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		cp /etc/apt/sources.list.d/debian.sources "$dir/pristine/etc/apt/sources.list.d/"
	else
		cp /etc/apt/sources.list "$dir/pristine/etc/apt/sources.list"
	fi
	printf '%s\n' '127.0.0.1	localhost' '::1	localhost ip6-localhost ip6-loopback' \
		'fe00::0	ip6-localnet' 'ff00::0	ip6-mcastprefix' 'ff02::1	ip6-allnodes' \
		'ff02::2	ip6-allrouters' >"$dir/pristine/etc/hosts"
	touch "$dir/pristine/.complete"
fi

root="$dir/root"
rm -rf "$root"
cp -a "$dir/pristine" "$root"
rm -f "$root/.complete"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# A clean clone of the committed HEAD (git is not in the fresh root: clone from the host).
git clone -q --no-hardlinks "$src" "$root/root/nono"

# The clone sits at /root/nono; the command's output is also kept in DIR/run.log.
# pivot_root, as container runtimes do, not chroot(2): a chrooted process may not create a user
# namespace (EPERM, kernel/user_namespace.c: current_chrooted()), and the tests need `unshare -rn`.
inner=$(printf '%q ' "$@")
unshare --mount --propagation private -- bash -euc '
	r=$1; inner=$2
	mount --bind "$r" "$r"
	mount -t proc proc "$r/proc"
	mount -t sysfs sysfs "$r/sys"
	mount --bind /dev "$r/dev"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts"
	mount --bind "$r/dev/pts/ptmx" "$r/dev/ptmx"
	mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
	mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
	cd "$r"
	pivot_root . .      # the old root now sits on top of the new one at /
	umount -l .         # and is gone: only the fresh root is left in this namespace
	cd /root/nono
	exec /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		${NONO_VM_TESTS+NONO_VM_TESTS=$NONO_VM_TESTS} ${NONO_VM_SUITES+NONO_VM_SUITES="$NONO_VM_SUITES"} \
		bash -c "$inner"
' fresh-root "$root" "$inner" 2>&1 | tee "$dir/run.log"
exit "${PIPESTATUS[0]}"
