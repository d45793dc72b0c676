#!/bin/sh
# Guest /init for the VM test tier (run by /bin/sh = dash as PID 1 inside Debian's 6.1 kernel).
# Mounts the pseudo filesystems, brings loopback up, loads the few modules shipped in /nono/modules,
# runs /nono/cmd.sh with its output on the second serial port (/dev/ttyS1, read by the host as a
# clean channel: kernel messages go to the console on ttyS0), prints "NONO-VM-EXIT <status>" and
# powers the machine off. If anything here fails, the kernel panics (panic=-1) and qemu exits
# (-no-reboot); the host then reports the missing sentinel together with the console log.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts && ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# /tmp stays on the initramfs root (itself a tmpfs): the project tree is laid in at its host path,
# which may be under /tmp (CI clones anywhere), and a tmpfs mounted here would hide it.
chmod 1777 /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
hostname nono-vm
ip link set lo up
out=/dev/ttyS1
stty -F "$out" raw -echo 2>/dev/null
{
	echo "NONO-VM-BOOTED $(uname -r)"
	for m in /nono/modules/*.ko; do
		[ -f "$m" ] || continue
		args=
		# dummy creates dummy0 by default; the host has none, tests create their own.
		case "$m" in */dummy.ko) args=numdummies=0 ;; esac
		insmod "$m" $args || echo "NONO-VM-WARN insmod $m failed"
	done
} >"$out" 2>&1
cd /
sh /nono/cmd.sh </dev/null >"$out" 2>&1
status=$?
echo "NONO-VM-EXIT $status" >"$out"
sync
poweroff -f
echo o >/proc/sysrq-trigger
