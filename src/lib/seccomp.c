/* seccomp.c — the seccomp-bpf program for a plan's variant, as a reviewable table. plan.c decides
 * which variant (which rules apply); this file only builds it.
 *
 * Built with libseccomp in the parent, exported as raw BPF (seccomp_export_bpf into a memfd) into
 * plan->prog; nono_plan_enter loads it with the raw seccomp(2) syscall after fork (libseccomp's
 * seccomp_load is not async-signal-safe). Layout (OpenSSH sandbox-seccomp-filter.c style):
 *
 *   1. architecture: native x86_64 only. A foreign-arch syscall (i386 `int $0x80`, which reaches
 *      the filter with AUDIT_ARCH_I386) kills the process (SCMP_FLTATR_ACT_BADARCH =
 *      KILL_PROCESS). x32 syscalls arrive with AUDIT_ARCH_X86_64 and nr | __X32_SYSCALL_BIT:
 *      libseccomp 2.5 emits "nr >= 0x40000000 → bad-arch action" for an x86_64-only filter; we do
 *      not trust that silently — export_prog scans the exported program for that exact
 *      instruction and refuses to continue without it (tests/unit/test_seccomp.c runs an x32
 *      syscall under the filter and expects SIGSYS).
 *   2. the table below: rules with a "when" condition (every mode / network restricted / …).
 *   3. default: allow.
 *
 * Decisions (docs/decisions.md and docs/cli.md carry them for users):
 * - Network denials return EACCES ("permission denied", the errno socket(2) documents for a
 *   refused family/type and the one Landlock's TCP rules return), never a misleading
 *   EAFNOSUPPORT. TIOCSTI/TIOCLINUX → EPERM. io_uring → ENOSYS (what a kernel built without
 *   io_uring returns: every runtime we know falls back to plain syscalls on ENOSYS).
 * - io_uring is refused in EVERY mode, network allowed included: its operations (connect, sendmsg,
 *   openat…) never pass through this filter, and it is a large, CVE-rich kernel surface that an
 *   untrusted process does not need.
 * - Integer syscall arguments (int domain/type/protocol, unsigned ioctl cmd) are compared on their
 *   low 32 bits only with SCMP_CMP_MASKED_EQ and a 64-bit mask of 0xffffffff: the kernel
 *   truncates them to 32 bits, so garbage in the upper half must not dodge a rule. (libseccomp
 *   2.5.4's SCMP_A1_32(SCMP_CMP_EQ, …) still emits "hi32 == 0", which 0xffffffff00005412 evades.)
 *   "Not one of these values" is expressed as deny rules over aligned blocks of the complement
 *   (libseccomp refuses an allow rule beside a deny rule for the same syscall).
 * - Refused socket families and types are made visible: with a supervisor, socket() and
 *   socketpair() calls the table refuses are sent to it (via_supervisor) and it answers
 *   EACCES exactly as the filter would, recording the first refusal of each family and type for
 *   the denial report. If the supervisor is gone the kernel answers ENOSYS: still refused.
 * - blocked and proxy-only: sockets of family AF_UNIX (stream, seqpacket), AF_NETLINK protocol
 *   NETLINK_ROUTE, and AF_INET/AF_INET6 SOCK_STREAM with protocol 0 or IPPROTO_TCP (not MPTCP, not
 *   SCTP, no UDP/raw/ICMP/packet). Netlink is kernel IPC, not egress; glibc uses NETLINK_ROUTE for
 *   getaddrinfo (AI_ADDRCONFIG) and getifaddrs, so refusing it breaks ordinary programs for
 *   nothing. Under blocked a TCP socket may exist, as in an empty network namespace (what
 *   nono-py's block_network() promises and programs probe for, e.g. `socket.socket()` at import
 *   time): every way it could carry a packet is an address syscall below (connect, bind, listen —
 *   which auto-binds —, sendto with an address), denied with EACCES by the supervisor or, without
 *   one, by this filter, on every kernel: Landlock's TCP rules (ABI 4, 6.7) are not needed for it
 *   and do not cover listen's auto-bind anyway. UDP, raw and packet sockets stay refused at
 *   socket(), which is stronger than a namespace: they take a destination per message.
 * - AF_UNIX SOCK_DGRAM (and SOCK_RAW, which AF_UNIX turns into DGRAM) is refused under blocked and
 *   proxy-only, for socket() and socketpair(): a datagram socket takes a destination per message
 *   (sendmsg's msghdr, which BPF cannot read), so it could reach host daemons (journald, abstract
 *   sockets) without a connect. With no per-message-destination socket creatable (UDP, raw,
 *   packet, unix dgram), sendmsg/sendmmsg need no supervision; MSG_FASTOPEN — the one way TCP takes
 *   its destination from a send — is refused here on sendto/sendmsg/sendmmsg. The one way to hold
 *   such a socket anyway is to inherit it: a datagram/raw socket on stdin/stdout/stderr is refused
 *   (-EINVAL) under blocked and proxy-only. (nono_apply does not revoke sockets the process
 *   already holds — like Landlock, it restricts what is opened from now on.)
 * - connect, bind, listen, and sendto with a non-NULL address go to the supervisor (user
 *   notification) under blocked and proxy-only: it decides on its own copy of the address and
 *   performs the call itself on the child's socket (supervisor_io.c). listen is supervised because
 *   listen() on an unbound socket auto-binds (INADDR_ANY ephemeral port, or an abstract unix
 *   address): the supervisor only lets sockets that were bound through it listen.
 * - Without user notification (kernel < 5.0, or pidfd_getfd missing: < 5.6) blocked is still
 *   enforced: connect/bind/listen/sendto-with-address are denied outright in BPF (granted unix
 *   sockets and bind ports cannot be honoured: refused unless best effort). proxy-only then needs
 *   best effort and becomes blocked.
 * - Below Landlock ABI 3 (kernels 5.13–6.1) Landlock has no truncate hook, so every truncation
 *   path that does not need a write fd is closed here (review F2):
 *   truncate(2) → EACCES; open/openat/open_by_handle_at with O_TRUNC and access mode O_RDONLY (0)
 *   or 3 → EACCES — file_open asks Landlock only for what f_mode says (READ_FILE for O_RDONLY,
 *   nothing at all for mode 3), yet the kernel truncates whenever DAC allows writing;
 *   openat2 → ENOSYS (its flags sit in a struct BPF cannot read; glibc and runtimes fall back to
 *   openat on ENOSYS, as on kernels < 5.6). O_WRONLY/O_RDWR|O_TRUNC and creat need WRITE_FILE,
 *   which Landlock checks; ftruncate needs an fd opened for writing, which Landlock already
 *   mediated. With this, plan.c reports TRUNCATE as enforced below ABI 3 whenever the filter is on.
 * - setsockopt: a short deny list (EPERM) under blocked and proxy-only (review F10/F11), for the
 *   options that change WHERE a TCP connection's packets go after the supervisor approved its
 *   address: IPv6 routing/hop-by-hop/destination-option headers (an unprivileged IPV6_RTHDR
 *   segment-routing header sends a connection "to [::1]:P" to any IPv6 address, also when set
 *   after connect), IPv4 IP_OPTIONS (source routing; CAP_NET_RAW, i.e. root), and SO_BINDTODEVICE
 *   / SO_BINDTOIFINDEX (unprivileged since 5.7: a connect to 127.0.0.1 leaves on another
 *   interface). The list is nono_rerouting_sockopts[] (sockopt.c). A socket created BEFORE the sandbox (nono_apply's
 *   caller, an inherited stdio socket) may already carry such an option: the supervisor reads
 *   them back on its copy before performing a proxy connect and refuses (EACCES) a socket that
 *   has any (supervisor_decide.c rerouting_option). An already connected socket keeps what it has
 *   (nono_apply, like Landlock, does not revoke what the process holds).
 */
#include "internal.h"
#include "uapi.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#define NONO_X32_SYSCALL_BIT 0x40000000u

/* When a rule applies: the plan's variant (internal.h NONO_SC_*), chosen by plan.c. */
#define W_ALWAYS NONO_SC_ALWAYS
#define W_BLOCKED NONO_SC_BLOCKED
#define W_PROXY NONO_SC_PROXY
#define W_NOTIFY NONO_SC_NOTIFY
#define W_NONOTIFY NONO_SC_NONOTIFY
#define W_OLD_LL NONO_SC_OLD_LL
#define W_NO_USERNS NONO_SC_NO_USERNS
#define W_NET (W_BLOCKED | W_PROXY)
#define W_META NONO_SC_META
#define W_NOMETA NONO_SC_NOMETA

enum cmp_op {
	C_NONE = 0,
	C_EQ,      /* (arg & mask) == v[0] */
	C_NOTIN,   /* (arg & mask) not in v[0..n-1]; mask must be 2^k - 1 */
	C_NONZERO, /* full 64-bit argument != 0 (pointers) */
};

struct sc_cond {
	int arg;
	enum cmp_op op;
	uint32_t mask;
	unsigned n;
	uint32_t v[4];
};

struct sc_rule {
	const char *sys;
	unsigned when;
	uint32_t action; /* SCMP_ACT_NOTIFY, or 0 for SCMP_ACT_ERRNO(err) */
	int err;
	struct sc_cond a, b;
};

#define M32 0xffffffffu
#define SOCKTYPE_MASK 0xfu /* SOCK_TYPE_MASK: the flags SOCK_NONBLOCK|SOCK_CLOEXEC sit above it */
#define DENY(e) 0, (e)
#define NOTIFY SCMP_ACT_NOTIFY, 0
#define EQ(i, m, x) {(i), C_EQ, (m), 1, {(x)}}
#define NOTIN(i, m, ...) {(i), C_NOTIN, (m), sizeof((uint32_t[]){__VA_ARGS__}) / 4, {__VA_ARGS__}}
#define NONZERO(i) {(i), C_NONZERO, 0, 0, {0}}
#define ANY {0, C_NONE, 0, 0, {0}}

/* THE TABLE. Arguments: socket(domain=0, type=1, protocol=2), socketpair(domain=0, type=1, …),
 * sendto(fd, buf, len, flags=3, addr=4, addrlen), sendmsg(fd, msg, flags=2),
 * sendmmsg(fd, vec, vlen, flags=3), ioctl(fd, cmd=1, …). */
static const struct sc_rule rules[] = {
	/* Terminal injection into the parent's tty (CVE-2017-5226 and friends). */
	{"ioctl", W_ALWAYS, DENY(EPERM), EQ(1, M32, TIOCSTI), ANY},
	{"ioctl", W_ALWAYS, DENY(EPERM), EQ(1, M32, TIOCLINUX), ANY},
	/* io_uring: operations invisible to this filter. */
	{"io_uring_setup", W_ALWAYS, DENY(ENOSYS), ANY, ANY},
	{"io_uring_enter", W_ALWAYS, DENY(ENOSYS), ANY, ANY},
	{"io_uring_register", W_ALWAYS, DENY(ENOSYS), ANY, ANY},
	/* The kernel keyring (issue 11): the user and session keyrings are shared by every process
	 * of the uid (Kerberos KEYRING: caches, CIFS/NFS credentials, ecryptfs keys), and
	 * request_key with callout data makes the kernel run /sbin/request-key as root, outside the
	 * sandbox, with a type and description the caller chose (dns_resolver: a DNS lookup). No
	 * policy grants them; EPERM as in Docker's default profile. */
	{"add_key", W_ALWAYS, DENY(EPERM), ANY, ANY},
	{"keyctl", W_ALWAYS, DENY(EPERM), ANY, ANY},
	{"request_key", W_ALWAYS, DENY(EPERM), ANY, ANY},
	/* Device nodes: a root command (CAP_MKNOD) could create one with any mode in a write grant —
	 * the root disk, /dev/mem, kmsg — and leave it on the host for other users (review of
	 * 2026-12-05, B1). FIFOs and sockets stay allowed; mode is arg 1 of mknod, arg 2 of mknodat. */
	{"mknod", W_ALWAYS, DENY(EPERM), EQ(1, S_IFMT, S_IFCHR), ANY},
	{"mknod", W_ALWAYS, DENY(EPERM), EQ(1, S_IFMT, S_IFBLK), ANY},
	{"mknodat", W_ALWAYS, DENY(EPERM), EQ(2, S_IFMT, S_IFCHR), ANY},
	{"mknodat", W_ALWAYS, DENY(EPERM), EQ(2, S_IFMT, S_IFBLK), ANY},
	/* User namespaces (issue 11, review F6), unless the caps allow them: a new user namespace
	 * opens the kernel's namespace attack surface (CAP_SYS_ADMIN over fresh mount, net, …
	 * namespaces) to the command. clone's and unshare's flags are ints to the kernel (clone
	 * takes lower_32_bits(clone_flags)), so one masked bit decides. clone3 carries its flags in
	 * a struct BPF cannot read: ENOSYS, as on kernels < 5.3 — glibc (2.34+ pthread_create,
	 * posix_spawn) falls back to clone, as in Docker's and Chromium's filters. setns: joining
	 * another process's namespaces is refused whole. */
	{"unshare", W_NO_USERNS, DENY(EPERM), EQ(0, CLONE_NEWUSER, CLONE_NEWUSER), ANY},
	{"clone", W_NO_USERNS, DENY(EPERM), EQ(0, CLONE_NEWUSER, CLONE_NEWUSER), ANY},
	{"clone3", W_NO_USERNS, DENY(ENOSYS), ANY, ANY},
	{"setns", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	/* The mount API: a command that keeps capabilities (real root) could clear MOUNT_ATTR_RDONLY
	 * of a read-only bind or a deny cover (mounts.c) with mount_setattr, which has no Landlock
	 * hook (Landlock denies mount, umount, remount, move_mount and pivot_root, 5.13), or take a
	 * non-recursive open_tree clone of a grant, which has none of the covers below it. Nothing
	 * unprivileged needs these outside a user namespace of its own, so they go with user
	 * namespaces (--allow-userns lets them: a nested sandboxer needs them). */
	{"mount", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"umount2", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"mount_setattr", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"open_tree", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"open_tree_attr", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"move_mount", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"fsopen", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"fsconfig", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"fsmount", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"fspick", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	{"pivot_root", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	/* chroot goes with them (review of 2026-12-05, B4): the supervisor resolves a metadata
	 * call's absolute path from its own root, so after a chroot it would act on another object
	 * than the one the command named (still checked against the grants, but not what the
	 * kernel would have done). A root command that needs a chroot needs --allow-userns. */
	{"chroot", W_NO_USERNS, DENY(EPERM), ANY, ANY},
	/* Landlock < ABI 3 does not mediate truncation (header comment): truncate(2), and opens
	 * with O_TRUNC whose access mode Landlock checks as a read (O_RDONLY) or as nothing (3).
	 * Flags: open arg 1, openat arg 2, open_by_handle_at arg 2 (int: masked compare). */
	{"truncate", W_OLD_LL, DENY(EACCES), ANY, ANY},
	{"open", W_OLD_LL, DENY(EACCES), EQ(1, O_TRUNC | O_ACCMODE, O_TRUNC | O_RDONLY), ANY},
	{"open", W_OLD_LL, DENY(EACCES), EQ(1, O_TRUNC | O_ACCMODE, O_TRUNC | O_ACCMODE), ANY},
	{"openat", W_OLD_LL, DENY(EACCES), EQ(2, O_TRUNC | O_ACCMODE, O_TRUNC | O_RDONLY), ANY},
	{"openat", W_OLD_LL, DENY(EACCES), EQ(2, O_TRUNC | O_ACCMODE, O_TRUNC | O_ACCMODE), ANY},
	{"open_by_handle_at", W_OLD_LL, DENY(EACCES), EQ(2, O_TRUNC | O_ACCMODE, O_TRUNC | O_RDONLY),
	 ANY},
	{"open_by_handle_at", W_OLD_LL, DENY(EACCES),
	 EQ(2, O_TRUNC | O_ACCMODE, O_TRUNC | O_ACCMODE), ANY},
	{"openat2", W_OLD_LL, DENY(ENOSYS), ANY, ANY},

	/* Socket families. */
	{"socket", W_NET, DENY(EACCES), NOTIN(0, M32, AF_UNIX, AF_NETLINK, AF_INET, AF_INET6), ANY},
	{"socket", W_NET, DENY(EACCES), EQ(0, M32, AF_UNIX),
	 NOTIN(1, SOCKTYPE_MASK, SOCK_STREAM, SOCK_SEQPACKET)},
	{"socket", W_NET, DENY(EACCES), EQ(0, M32, AF_NETLINK), NOTIN(2, M32, NETLINK_ROUTE)},
	{"socket", W_NET, DENY(EACCES), EQ(0, M32, AF_INET), NOTIN(1, SOCKTYPE_MASK, SOCK_STREAM)},
	{"socket", W_NET, DENY(EACCES), EQ(0, M32, AF_INET6), NOTIN(1, SOCKTYPE_MASK, SOCK_STREAM)},
	{"socket", W_NET, DENY(EACCES), EQ(0, M32, AF_INET), NOTIN(2, M32, 0, IPPROTO_TCP)},
	{"socket", W_NET, DENY(EACCES), EQ(0, M32, AF_INET6), NOTIN(2, M32, 0, IPPROTO_TCP)},
	{"socketpair", W_NET, DENY(EACCES), NOTIN(0, M32, AF_UNIX), ANY},
	{"socketpair", W_NET, DENY(EACCES), ANY, NOTIN(1, SOCKTYPE_MASK, SOCK_STREAM, SOCK_SEQPACKET)},

	/* setsockopt(level, optname) pairs that re-route a connection: nono_rerouting_sockopts[]
	 * (sockopt.c; added by build_prog for W_NET). */
	/* Netlink multicast groups (issue 11): the supervisor refuses a bind with nl_groups, and
	 * NETLINK_ADD_MEMBERSHIP / NETLINK_LISTEN_ALL_NSID are the other ways to join a group (the
	 * host's link, address and route events). The supervisor refuses and audits them; without
	 * one, EPERM here. */
	{"setsockopt", W_NOTIFY, NOTIFY, EQ(1, M32, SOL_NETLINK), EQ(2, M32, NETLINK_ADD_MEMBERSHIP)},
	{"setsockopt", W_NOTIFY, NOTIFY, EQ(1, M32, SOL_NETLINK), EQ(2, M32, NETLINK_LISTEN_ALL_NSID)},
	{"setsockopt", W_NONOTIFY, DENY(EPERM), EQ(1, M32, SOL_NETLINK),
	 EQ(2, M32, NETLINK_ADD_MEMBERSHIP)},
	{"setsockopt", W_NONOTIFY, DENY(EPERM), EQ(1, M32, SOL_NETLINK),
	 EQ(2, M32, NETLINK_LISTEN_ALL_NSID)},

	/* TCP Fast Open: a send that connects, to the address in the send. */
	{"sendto", W_NET, DENY(EACCES), EQ(3, MSG_FASTOPEN, MSG_FASTOPEN), ANY},
	{"sendmsg", W_NET, DENY(EACCES), EQ(2, MSG_FASTOPEN, MSG_FASTOPEN), ANY},
	{"sendmmsg", W_NET, DENY(EACCES), EQ(3, MSG_FASTOPEN, MSG_FASTOPEN), ANY},

	/* Addresses: the supervisor decides (on its own copy) and performs the call. */
	{"connect", W_NOTIFY, NOTIFY, ANY, ANY},
	{"bind", W_NOTIFY, NOTIFY, ANY, ANY},
	{"listen", W_NOTIFY, NOTIFY, ANY, ANY},
	{"sendto", W_NOTIFY, NOTIFY, EQ(3, MSG_FASTOPEN, 0), NONZERO(4)},
	/* …or, with no supervisor, nobody decides: deny. */
	{"connect", W_NONOTIFY, DENY(EACCES), ANY, ANY},
	{"bind", W_NONOTIFY, DENY(EACCES), ANY, ANY},
	{"listen", W_NONOTIFY, DENY(EACCES), ANY, ANY},
	{"sendto", W_NONOTIFY, DENY(EACCES), EQ(3, MSG_FASTOPEN, 0), NONZERO(4)},

	/* Metadata writes and watches (issue 11; Landlock mediates none of them): whenever Landlock
	 * restricts the filesystem, in every network mode, the supervisor resolves the object, checks
	 * its real path against the grants and performs the call (supervisor_meta.c)… */
#define META_SYSCALL(name) {name, W_META, NOTIFY, ANY, ANY}, {name, W_NOMETA, DENY(EPERM), ANY, ANY}
	META_SYSCALL("chmod"), META_SYSCALL("fchmod"), META_SYSCALL("fchmodat"),
	META_SYSCALL("fchmodat2"), META_SYSCALL("chown"), META_SYSCALL("fchown"),
	META_SYSCALL("lchown"), META_SYSCALL("fchownat"), META_SYSCALL("utime"),
	META_SYSCALL("utimes"), META_SYSCALL("futimesat"), META_SYSCALL("utimensat"),
	META_SYSCALL("setxattr"), META_SYSCALL("lsetxattr"), META_SYSCALL("fsetxattr"),
	META_SYSCALL("removexattr"), META_SYSCALL("lremovexattr"), META_SYSCALL("fremovexattr"),
	META_SYSCALL("inotify_add_watch"), META_SYSCALL("fanotify_mark"),
#undef META_SYSCALL
	/* …or, with no supervisor, nobody decides: denied (EPERM) above. The *at forms with the
	 * object behind a dirfd and flags, newer than every runtime's use (setxattrat, removexattrat:
	 * 6.13; file_setattr: 6.17), answer ENOSYS, what older kernels answer (glibc wraps none). */
	{"setxattrat", W_META | W_NOMETA, DENY(ENOSYS), ANY, ANY},
	{"removexattrat", W_META | W_NOMETA, DENY(ENOSYS), ANY, ANY},
	{"file_setattr", W_META | W_NOMETA, DENY(ENOSYS), ANY, ANY},
};

/* Syscalls the libseccomp we build with may not know by name (2.5.4 does not know these): their
 * x86_64 numbers (uapi.h). */
static const struct {
	const char *name;
	int nr;
} newer_syscalls[] = {
	{"fchmodat2", __NR_fchmodat2},
	{"setxattrat", __NR_setxattrat},
	{"removexattrat", __NR_removexattrat},
	{"file_setattr", __NR_file_setattr},
	{"open_tree_attr", __NR_open_tree_attr},
};

static int syscall_nr(const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);
	for (size_t i = 0; nr == __NR_SCMP_ERROR && i < N_ELEMENTS(newer_syscalls); i++)
		if (!strcmp(newer_syscalls[i].name, name))
			nr = newer_syscalls[i].nr;
	return nr;
}

/* Expand one condition into alternative comparisons (OR). Returns the count, or -EINVAL. */
static int cond_alternatives(const struct sc_cond *c, struct scmp_arg_cmp *out, int max)
{
	int n = 0;
	switch (c->op) {
	case C_NONE:
		return 0;
	case C_EQ:
		out[0] = (struct scmp_arg_cmp){(unsigned)c->arg, SCMP_CMP_MASKED_EQ, c->mask, c->v[0]};
		return 1;
	case C_NONZERO:
		out[0] = (struct scmp_arg_cmp){(unsigned)c->arg, SCMP_CMP_NE, 0, 0};
		return 1;
	case C_NOTIN: {
		/* Complement of the values inside [0, mask], as aligned power-of-two blocks: block
		 * [start, start+size) matches (arg & (mask & ~(size-1))) == start. */
		uint64_t lo = 0, top = (uint64_t)c->mask;
		uint32_t vals[4];
		unsigned nv = c->n;
		memcpy(vals, c->v, sizeof vals);
		for (unsigned i = 0; i < nv; i++) /* sort (tiny) */
			for (unsigned j = i + 1; j < nv; j++)
				if (vals[j] < vals[i]) {
					uint32_t t = vals[i];
					vals[i] = vals[j];
					vals[j] = t;
				}
		/* For a full 32-bit mask the gap above the largest value is one 64-bit "greater
		 * than" (it also catches any upper-half garbage: fail closed), not ~30 blocks —
		 * libseccomp's build time grows fast with the rule count. */
		bool tail_gt = c->mask == M32 && nv > 0;
		for (unsigned i = 0; i < nv + (tail_gt ? 0u : 1u); i++) {
			uint64_t hi = i < nv ? (uint64_t)vals[i] : top + 1; /* gap is [lo, hi) */
			while (lo < hi) {
				uint64_t size = 1;
				while ((lo & (size * 2 - 1)) == 0 && lo + size * 2 <= hi && size * 2 <= top + 1)
					size *= 2;
				if (n >= max)
					return -EINVAL;
				out[n++] = (struct scmp_arg_cmp){(unsigned)c->arg, SCMP_CMP_MASKED_EQ,
								 (uint32_t)(c->mask & ~(size - 1)),
								 (uint32_t)lo};
				lo += size;
			}
			if (i < nv)
				lo = (uint64_t)vals[i] + 1;
		}
		if (tail_gt) {
			if (n >= max)
				return -EINVAL;
			out[n++] = (struct scmp_arg_cmp){(unsigned)c->arg, SCMP_CMP_GT, vals[nv - 1], 0};
		}
		return n;
	}
	}
	return -EINVAL;
}

static int add_rule(scmp_filter_ctx ctx, const struct sc_rule *r, nono_error *err)
{
	int nr = syscall_nr(r->sys);
	if (nr == __NR_SCMP_ERROR)
		return nono_fail(err, -EINVAL, "libseccomp does not know syscall %s", r->sys);
	uint32_t act = r->action ? r->action : SCMP_ACT_ERRNO((uint32_t)r->err);
	struct scmp_arg_cmp a[40], b[40];
	int na = cond_alternatives(&r->a, a, 40), nb = cond_alternatives(&r->b, b, 40);
	if (na < 0 || nb < 0)
		return nono_fail(err, -EINVAL, "seccomp table: bad condition for %s", r->sys);
	for (int i = 0; i < (na ? na : 1); i++) {
		for (int j = 0; j < (nb ? nb : 1); j++) {
			struct scmp_arg_cmp cmp[2];
			unsigned k = 0;
			if (na)
				cmp[k++] = a[i];
			if (nb)
				cmp[k++] = b[j];
			int rc = seccomp_rule_add_array(ctx, act, nr, k, cmp);
			if (rc < 0)
				return nono_fail(err, rc, "libseccomp refused the rule for %s: %s",
						 r->sys, strerror(-rc));
		}
	}
	return 0;
}

/* The x32 guard libseccomp should have emitted: BPF_JMP|BPF_JGE|BPF_K against 0x40000000. */
static bool has_x32_guard(const struct sock_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].code == (BPF_JMP | BPF_JGE | BPF_K) && f[i].k == NONO_X32_SYSCALL_BIT)
			return true;
	return false;
}

static void ctx_releasep(scmp_filter_ctx *c)
{
	if (*c)
		seccomp_release(*c);
}

/* Export the program: seccomp_export_bpf into a memfd, read back. */
static int export_prog(scmp_filter_ctx ctx, struct sock_fprog *prog, nono_error *err)
{
	cleanup_fd int fd = memfd_create("nono-seccomp-bpf", MFD_CLOEXEC);
	if (fd < 0)
		return nono_fail(err, -errno, "memfd_create for the seccomp program: %s",
				 strerror(errno));
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		return nono_fail(err, rc, "seccomp_export_bpf: %s", strerror(-rc));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return nono_fail(err, -errno, "fstat of the exported program: %s", strerror(errno));
	size_t size = (size_t)st.st_size;
	if (size == 0 || size % sizeof(struct sock_filter) != 0 ||
	    size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return nono_fail(err, -EINVAL, "exported seccomp program has a bad size (%zu bytes)",
				 size);
	cleanup_free struct sock_filter *f = malloc(size);
	if (!f)
		return nono_fail(err, -ENOMEM, "out of memory");
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, (char *)f + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return nono_fail(err, n < 0 ? -errno : -EIO,
					 "reading the exported seccomp program back failed");
		got += (size_t)n;
	}
	size_t len = size / sizeof(struct sock_filter);
	if (!has_x32_guard(f, len))
		return nono_fail(err, -EOPNOTSUPP,
				 "this libseccomp did not emit the x32 syscall guard "
				 "(nr >= 0x40000000 → kill): refusing a filter x32 syscalls could evade");
	prog->len = (unsigned short)len;
	prog->filter = steal_pointer(&f);
	return 0;
}

/* The socket()/socketpair() refusals: with a supervisor they go to it, which answers the same
 * EACCES and records the first of each kind (supervisor_net.c nono_sup_h_socket). */
static bool via_supervisor(const struct sc_rule *r)
{
	return r->action == 0 && r->err == EACCES &&
	       (!strcmp(r->sys, "socket") || !strcmp(r->sys, "socketpair"));
}

/* Build (libseccomp) and export the program for one environment. */
static int build_prog(unsigned env, struct sock_fprog *prog, nono_error *err)
{
	__attribute__((cleanup(ctx_releasep))) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return nono_fail(err, -ENOMEM, "seccomp_init failed");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* nono_plan_enter sets it */
	if (rc < 0)
		return nono_fail(err, rc, "libseccomp attribute: %s", strerror(-rc));
	for (size_t i = 0; i < N_ELEMENTS(rules); i++) {
		if (!(rules[i].when & env))
			continue;
		struct sc_rule r = rules[i];
		if ((env & W_NOTIFY) && via_supervisor(&r))
			r.action = SCMP_ACT_NOTIFY;
		rc = add_rule(ctx, &r, err);
		if (rc < 0)
			return rc;
	}
	/* setsockopt(fd, level=1, optname=2, …) → EPERM: the options that re-route an approved
	 * connection (sockopt.c). level and optname are ints: compared on their low 32 bits. */
	for (size_t i = 0; (env & W_NET) && i < nono_rerouting_sockopts_n; i++) {
		const struct sc_rule r = {"setsockopt", W_NET, DENY(EPERM),
					  EQ(1, M32, (uint32_t)nono_rerouting_sockopts[i].level),
					  EQ(2, M32, (uint32_t)nono_rerouting_sockopts[i].optname)};
		rc = add_rule(ctx, &r, err);
		if (rc < 0)
			return rc;
	}
	return export_prog(ctx, prog, err);
}

/* The program depends on `env` only: keep one exported copy per variant (a process that runs many
 * sandboxed commands pays libseccomp's build once). */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct sock_filter *f;
	unsigned short len;
} cache[1024]; /* every NONO_SC_* combination (bits 0..9) */

static int build_cached(unsigned env, struct sock_fprog *prog, nono_error *err)
{
	if (env >= N_ELEMENTS(cache))
		return build_prog(env, prog, err);
	pthread_mutex_lock(&cache_lock);
	int rc = 0;
	if (!cache[env].f) {
		struct sock_fprog p = {0, NULL};
		rc = build_prog(env, &p, err);
		if (rc == 0) {
			cache[env].f = p.filter;
			cache[env].len = p.len;
		}
	}
	if (rc == 0) {
		size_t sz = cache[env].len * sizeof(struct sock_filter);
		prog->filter = malloc(sz);
		if (prog->filter) {
			memcpy(prog->filter, cache[env].f, sz);
			prog->len = cache[env].len;
		} else {
			rc = nono_fail(err, -ENOMEM, "out of memory");
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return rc;
}

int nono_seccomp_build(unsigned variant, struct sock_fprog *prog, nono_error *err)
{
	prog->filter = NULL;
	prog->len = 0;
	if (seccomp_arch_native() != SCMP_ARCH_X86_64) /* plan.c refuses this first */
		return nono_fail(err, -EOPNOTSUPP,
				 "nono's seccomp filter supports x86_64 only (native arch token 0x%x)",
				 seccomp_arch_native());
	return build_cached(variant, prog, err);
}
