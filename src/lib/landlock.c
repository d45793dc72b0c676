/* landlock.c — build the Landlock ruleset for a capability set at a given ABI (1..7).
 *
 * Policy: the capability set is an allow-list, and Landlock is ALWAYS applied when the kernel has
 * it. A set with zero filesystem grants therefore means "no filesystem access at all" (every right
 * this ABI knows is handled and nothing is granted) — not "filesystem unrestricted". There is no
 * implicit grant: callers that want /usr readable grant it.
 *
 * Everything here runs in the parent before fork: paths are opened O_PATH|O_CLOEXEC, rules are
 * added, and the ruleset fd is kept in plan->ruleset_fd for nono_plan_enter's landlock_restrict_self.
 */
#include "internal.h"
#include "uapi.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define NONO_LANDLOCK_ABI_KNOWN 7

#define FS(x) LANDLOCK_ACCESS_FS_##x

/* ABI 1 (5.13): the 13 original rights. */
#define FS_ABI1                                                                                 \
	(FS(EXECUTE) | FS(WRITE_FILE) | FS(READ_FILE) | FS(READ_DIR) | FS(REMOVE_DIR) |         \
	 FS(REMOVE_FILE) | FS(MAKE_CHAR) | FS(MAKE_DIR) | FS(MAKE_REG) | FS(MAKE_SOCK) |        \
	 FS(MAKE_FIFO) | FS(MAKE_BLOCK) | FS(MAKE_SYM))

/* Every right our model wants handled (what ABI 5+ can express). */
#define FS_MODEL (FS_ABI1 | FS(REFER) | FS(TRUNCATE) | FS(IOCTL_DEV))

/* Rights valid on a rule whose fd is not a directory; naming others is EINVAL in the kernel. */
#define FS_FILE_ONLY (FS(EXECUTE) | FS(WRITE_FILE) | FS(READ_FILE) | FS(TRUNCATE) | FS(IOCTL_DEV))

#define FS_READ (FS(READ_FILE) | FS(READ_DIR) | FS(EXECUTE))
#define FS_WRITE                                                                                \
	(FS(WRITE_FILE) | FS(REMOVE_DIR) | FS(REMOVE_FILE) | FS(MAKE_CHAR) | FS(MAKE_DIR) |     \
	 FS(MAKE_REG) | FS(MAKE_SOCK) | FS(MAKE_FIFO) | FS(MAKE_BLOCK) | FS(MAKE_SYM) |         \
	 FS(REFER) | FS(TRUNCATE) | FS(IOCTL_DEV))

/* FS rights the kernel handles at `abi`. */
static uint64_t fs_handled_for_abi(int abi)
{
	if (abi < 1)
		return 0;
	uint64_t r = FS_ABI1;
	if (abi >= 2)
		r |= FS(REFER); /* 5.19. Below ABI 2 reparenting (rename/link across directories) is
				 * always denied, so REFER is not "unenforced" there: it is stricter. */
	if (abi >= 3)
		r |= FS(TRUNCATE); /* 6.2 */
	if (abi >= 5)
		r |= FS(IOCTL_DEV); /* 6.10 */
	return r;
}

/* Rights our model wants restricted that `abi` cannot restrict. truncate(2)/ftruncate below ABI 3
 * and device ioctls below ABI 5 stay unmediated by Landlock. */
static uint64_t fs_unenforced_for_abi(int abi)
{
	if (abi < 1)
		return FS_MODEL;
	return FS_MODEL & ~fs_handled_for_abi(abi) & ~(uint64_t)FS(REFER);
}

static uint64_t grant_rights(nono_access access, bool is_file, uint64_t handled)
{
	uint64_t r = 0;
	if (access & NONO_ACCESS_READ)
		r |= FS_READ;
	if (access & NONO_ACCESS_WRITE)
		r |= FS_WRITE;
	if (is_file)
		r &= FS_FILE_ONLY;
	return r & handled;
}

static size_t ruleset_attr_size(int abi)
{
	/* Pass only what this ABI knows: a larger size with non-zero unknown fields is E2BIG
	 * (seen on 6.1 with handled_access_net). */
	if (abi >= 6)
		return NONO_RULESET_ATTR_SIZE_V6;
	if (abi >= 4)
		return NONO_RULESET_ATTR_SIZE_V4;
	return NONO_RULESET_ATTR_SIZE_V1;
}

static int add_path_rule(int ruleset_fd, const nono_grant *g, uint64_t handled, nono_error *err)
{
	/* O_NOFOLLOW: `resolved` is canonical; if its last component is a symlink now, the path was
	 * swapped after the grant was made — refuse rather than follow it somewhere else. */
	cleanup_fd int fd = open(g->resolved, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return nono_fail(err, -errno, "landlock: cannot open grant '%s': %s", g->resolved,
				 strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0)
		return nono_fail(err, -errno, "landlock: cannot stat grant '%s': %s", g->resolved,
				 strerror(errno));
	if (S_ISLNK(st.st_mode))
		return nono_fail(err, -ELOOP, "landlock: grant '%s' became a symlink", g->resolved);
	/* A file grant must still be a file: a directory in its place would turn a single-file grant
	 * into a whole tree. A directory grant that became a file is refused likewise. */
	if (g->is_file && S_ISDIR(st.st_mode))
		return nono_fail(err, -EISDIR, "landlock: file grant '%s' is now a directory",
				 g->resolved);
	if (!g->is_file && !S_ISDIR(st.st_mode))
		return nono_fail(err, -ENOTDIR, "landlock: directory grant '%s' is not a directory",
				 g->resolved);

	struct landlock_path_beneath_attr pb = {
		.allowed_access = grant_rights(g->access, g->is_file, handled),
		.parent_fd = fd,
	};
	if (pb.allowed_access == 0)
		return 0; /* nothing this ABI can grant (cannot happen for read/write modes) */
	if (syscall(__NR_landlock_add_rule, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
		return nono_fail(err, -errno, "landlock: add rule for '%s' (rights 0x%llx): %s",
				 g->resolved, (unsigned long long)pb.allowed_access,
				 strerror(errno));
	return 0;
}

static int add_port_rule(int ruleset_fd, uint64_t access, uint16_t port, nono_error *err)
{
	struct nono_landlock_net_port_attr np = { .allowed_access = access, .port = port };
	if (syscall(__NR_landlock_add_rule, ruleset_fd, NONO_LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
		return nono_fail(err, -errno, "landlock: add %s rule for TCP port %u: %s",
				 access == LANDLOCK_ACCESS_NET_BIND_TCP ? "bind" : "connect",
				 (unsigned)port, strerror(errno));
	return 0;
}

int nono_landlock_prepare(const nono_caps *caps, unsigned flags, int abi, struct nono_plan *plan,
			  nono_error *err)
{
	nono_report *rep = &plan->report;
	plan->ruleset_fd = -1;
	plan->restrict_flags = 0;
	if (abi > NONO_LANDLOCK_ABI_KNOWN)
		abi = NONO_LANDLOCK_ABI_KNOWN;

	uint16_t proxy_port = 0;
	nono_net_mode net = nono_caps_network(caps, &proxy_port);
	bool net_restricted = net == NONO_NET_BLOCKED || net == NONO_NET_PROXY_ONLY;

	if (abi < 1) {
		/* No Landlock (kernel < 5.13, disabled at boot, or capped). Since the capability set
		 * is an allow-list, the filesystem side always needs Landlock: refuse unless the
		 * caller asked for best effort, and then say the filesystem is unrestricted. */
		rep->landlock_abi = 0;
		rep->fs_handled = 0;
		rep->fs_unenforced = FS_MODEL;
		rep->landlock_tcp = false;
		rep->landlock_scopes = false;
		if (!(flags & NONO_FLAG_BEST_EFFORT))
			return nono_fail(err, -EOPNOTSUPP,
					 "landlock is not available (kernel < 5.13, disabled, or "
					 "capped): the filesystem policy cannot be enforced");
		rep->downgraded = true;
		return 0;
	}

	uint64_t handled = fs_handled_for_abi(abi);
	struct nono_landlock_ruleset_attr attr = { .handled_access_fs = handled };
	bool tcp = abi >= 4 && net_restricted;
	if (tcp) /* 6.7: TCP bind/connect by port; any address (the supervisor pins loopback) */
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
	if (abi >= 6) {
		/* 6.12: never signal processes outside the sandbox; with the network restricted,
		 * abstract unix sockets outside are a network too (D-Bus, X11 "@/tmp/.X11-unix"). */
		attr.scoped = LANDLOCK_SCOPE_SIGNAL;
		if (net_restricted)
			attr.scoped |= LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
	}
	/* ABI 7 (6.15) restrict_self flags only steer audit logging of denials (same-exec logging on,
	 * new-exec logging off, subdomain logging on by default); none changes what is enforced, and
	 * the defaults are what we want, so we pass 0. */
	plan->restrict_flags = 0;

	cleanup_fd int rfd = (int)syscall(__NR_landlock_create_ruleset, &attr, ruleset_attr_size(abi),
					  0);
	if (rfd < 0)
		return nono_fail(err, -errno, "landlock: create ruleset at ABI %d: %s", abi,
				 strerror(errno));

	size_t n = nono_caps_grant_count(caps);
	for (size_t i = 0; i < n; i++) {
		nono_grant g;
		int r = nono_caps_grant(caps, i, &g);
		if (r < 0)
			return nono_fail(err, r, "landlock: cannot read grant %zu", i);
		r = add_path_rule(rfd, &g, handled, err);
		if (r < 0)
			return r;
	}

	if (tcp) {
		if (net == NONO_NET_PROXY_ONLY) {
			int r = add_port_rule(rfd, LANDLOCK_ACCESS_NET_CONNECT_TCP, proxy_port, err);
			if (r < 0)
				return r;
		}
		size_t nb = nono_caps_bind_port_count(caps);
		for (size_t i = 0; i < nb; i++) {
			int r = add_port_rule(rfd, LANDLOCK_ACCESS_NET_BIND_TCP,
					      nono_caps_bind_port(caps, i), err);
			if (r < 0)
				return r;
		}
	}

	rep->landlock_abi = abi;
	rep->fs_handled = handled;
	rep->fs_unenforced = fs_unenforced_for_abi(abi);
	rep->landlock_tcp = tcp;
	rep->landlock_scopes = attr.scoped != 0;
	plan->ruleset_fd = nono_steal_fd(&rfd);
	return 0;
}
