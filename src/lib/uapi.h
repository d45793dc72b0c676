/* uapi.h — the one place for kernel ABI constants newer than Debian 12's 6.1 headers.
 * Every definition is guarded so newer system headers win. Sources: Documentation/userspace-api/
 * landlock.rst and include/uapi/linux/{landlock,seccomp}.h of the kernel version named. */
#ifndef NONO_UAPI_H
#define NONO_UAPI_H

#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/ioctl.h> /* SECCOMP_IOW needs _IOW */
#include <sys/syscall.h>

/* ---- Landlock syscalls (5.13) ---- */
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

/* ABI 1 (5.13) and 2 (5.19: REFER) are in the 6.1 header. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
/* ABI 3 (6.2) */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
/* ABI 5 (6.10) */
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
/* ABI 4 (6.7): TCP port rules */
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#define NONO_LANDLOCK_RULE_NET_PORT 2
struct nono_landlock_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
};
/* ABI 6 (6.12): scopes */
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
/* ABI 7 (6.15): restrict_self logging flags */
#ifndef LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF
#define LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF (1U << 0)
#define LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (1U << 1)
#define LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF (1U << 2)
#endif

/* Our own full-size ruleset attribute; pass only the size the ABI knows (E2BIG otherwise, seen on
 * 6.1 with handled_access_net). */
struct nono_landlock_ruleset_attr {
	uint64_t handled_access_fs;  /* ABI 1 */
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};
#define NONO_RULESET_ATTR_SIZE_V1 8
#define NONO_RULESET_ATTR_SIZE_V4 16
#define NONO_RULESET_ATTR_SIZE_V6 24

/* ---- seccomp ---- */
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3) /* 5.0 */
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5) /* 5.19 */
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, uint64_t) /* 6.6 */
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_GET_NOTIF_SIZES
#define SECCOMP_GET_NOTIF_SIZES 3
#endif

/* ---- pidfd (5.3 / 5.6) ---- */
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef PIDFD_THREAD
#include <fcntl.h>
#define PIDFD_THREAD O_EXCL /* 6.9: a pidfd for a thread, not only a thread-group leader */
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* ---- metadata syscalls newer than Debian 12's headers (x86_64 numbers) ---- */
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* 6.6 */
#endif
#ifndef __NR_setxattrat
#define __NR_setxattrat 463 /* 6.13 */
#endif
#ifndef __NR_removexattrat
#define __NR_removexattrat 466 /* 6.13 */
#endif
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467 /* 6.15: open_tree with a mount_attr */
#endif
#ifndef __NR_file_setattr
#define __NR_file_setattr 469 /* 6.17 */
#endif

#endif /* NONO_UAPI_H */
