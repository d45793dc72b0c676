/* landlock.c — the Landlock ABI facts (one table) and the ruleset a plan describes.
 *
 * plan.c decides the ABI, the handled rights, TCP rules and scopes; this file only builds them.
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
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

/* THE table: what each ABI added (Documentation/userspace-api/landlock.rst). */
const struct nono_landlock_abi_row nono_landlock_abis[NONO_LANDLOCK_ABI_KNOWN] = {
	{1, "5.13", "filesystem rules", FS_ABI1},
	/* Below ABI 2 reparenting (rename/link across directories) is always denied, so REFER is
	 * never "unenforced": it is stricter. */
	{2, "5.19", "refer / cross-directory rename", FS(REFER)},
	{3, "6.2", "truncate", FS(TRUNCATE)},
	{4, "6.7", "TCP bind/connect port rules", 0},
	{5, "6.10", "device ioctl", FS(IOCTL_DEV)},
	{6, "6.12", "scopes: abstract unix sockets, signals", 0},
	{7, "6.15", "restrict_self log flags", 0},
};

uint64_t nono_landlock_fs_handled(int abi)
{
	uint64_t r = 0;
	for (int i = 0; i < abi && i < NONO_LANDLOCK_ABI_KNOWN; i++)
		r |= nono_landlock_abis[i].fs_rights;
	return r;
}

/* truncate(2)/ftruncate below ABI 3 and device ioctls below ABI 5 stay unmediated by Landlock. */
uint64_t nono_landlock_fs_unenforced(int abi)
{
	if (abi < 1)
		return FS_MODEL;
	return FS_MODEL & ~nono_landlock_fs_handled(abi) & ~(uint64_t)FS(REFER);
}

void nono_landlock_rights_text(uint64_t r, char *buf, size_t len)
{
	static const char *const names[] = {
		"execute",   "write_file", "read_file", "read_dir",	 "remove_dir", "remove_file",
		"make_char", "make_dir",   "make_reg",	"make_sock", "make_fifo",  "make_block",
		"make_sym",  "refer",	   "truncate",	"ioctl_dev",
	};
	size_t used = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < N_ELEMENTS(names) && used + 1 < len; i++)
		if (r & (1ULL << i)) {
			int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i]);
			if (n < 0)
				break;
			used += (size_t)n;
		}
	if (!buf[0])
		snprintf(buf, len, "none");
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

/* Is the object open at `fd` the one the canonical `path` names now, with no symlink on the way
 * (its name as the kernel gives it)? For a grant whose object changed in place since it was
 * resolved: an automount point mounted by the open, a directory replaced by another. */
static bool named_by(int fd, const char *path)
{
	char link[32], now[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, now, sizeof now - 1);
	if (n < 0)
		return false;
	now[n] = '\0';
	return !strcmp(now, path);
}

static int add_path_rule(int ruleset_fd, const nono_grant *g, dev_t dev, ino_t ino,
			 uint64_t handled, nono_error *err)
{
	/* O_NOFOLLOW: `resolved` is canonical; if its last component is a symlink now, the path was
	 * swapped after the grant was made — refuse rather than follow it somewhere else. A
	 * directory grant opens with O_DIRECTORY: the kernel then refuses a file or a symlink in its
	 * place (ENOTDIR). A directory on the way that became a symlink is followed by the open,
	 * so the object opened must be the one the grant resolved (device and inode): otherwise the
	 * rule would cover another tree than the one --dry-run and the ledger name (review of
	 * 2026-12-05 c, R5). */
	cleanup_fd int fd = open(g->resolved, O_PATH | O_CLOEXEC | O_NOFOLLOW |
						      (g->is_file ? 0 : O_DIRECTORY));
	if (fd < 0 && errno == ENOTDIR && !g->is_file)
		return nono_fail(err, -ENOTDIR, "landlock: directory grant '%s' is not a directory "
				 "(or became a symlink)", g->resolved);
	if (fd < 0)
		return nono_fail(err, -errno, "landlock: cannot open grant '%s': %s", g->resolved,
				 strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0)
		return nono_fail(err, -errno, "landlock: cannot stat grant '%s': %s", g->resolved,
				 strerror(errno));
	if ((st.st_dev != dev || st.st_ino != ino) && !named_by(fd, g->resolved))
		return nono_fail(err, -ESTALE, "landlock: grant '%s' names another file or directory "
				 "than when it was granted (a directory on the way was replaced): "
				 "refused", g->resolved);
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

/* Proxy-only also connects directly to its internal grants and to its own bind ports on loopback
 * (the supervisor pins the address; Landlock, 6.7+, can only say which ports). A port already
 * granted is added again harmlessly (Landlock unites the rights). */
static int add_direct_port_rules(int rfd, const nono_caps *caps, nono_error *err)
{
	for (size_t i = 0; i < nono_caps_internal_count(caps); i++) {
		nono_internal_dest d;
		int r = nono_caps_internal(caps, i, &d);
		if (r == 0)
			r = add_port_rule(rfd, LANDLOCK_ACCESS_NET_CONNECT_TCP, d.port, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < nono_caps_bind_port_count(caps); i++) {
		int r = add_port_rule(rfd, LANDLOCK_ACCESS_NET_CONNECT_TCP,
				      nono_caps_bind_port(caps, i), err);
		if (r < 0)
			return r;
	}
	return 0;
}

int nono_landlock_build(const nono_caps *caps, const struct nono_plan *plan, int *ruleset_fd,
			nono_error *err)
{
	*ruleset_fd = -1;
	if (plan->landlock_abi < 1)
		return 0;
	int abi = plan->landlock_abi;
	struct nono_landlock_ruleset_attr attr = {
		.handled_access_fs = plan->fs_handled,
		.scoped = plan->landlock_scoped,
	};
	if (plan->landlock_tcp)
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;

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
		dev_t dev;
		ino_t ino;
		r = nono_caps_grant_id(caps, i, &dev, &ino);
		if (r == 0)
			r = add_path_rule(rfd, &g, dev, ino, plan->fs_handled, err);
		if (r < 0)
			return r;
	}

	if (plan->landlock_tcp) {
		/* 6.7: by port, on any address (the supervisor pins loopback). Port 0 is a proxy port
		 * not chosen yet: only a plan report gets here with it, and it grants nothing. */
		if (plan->net == NONO_NET_PROXY_ONLY && plan->proxy_port) {
			int r = add_port_rule(rfd, LANDLOCK_ACCESS_NET_CONNECT_TCP, plan->proxy_port, err);
			if (r < 0)
				return r;
		}
		size_t nb = nono_caps_bind_port_count(caps);
		for (size_t i = 0; plan->net == NONO_NET_PROXY_ONLY && i < nb; i++) {
			int r = add_port_rule(rfd, LANDLOCK_ACCESS_NET_BIND_TCP,
					      nono_caps_bind_port(caps, i), err);
			if (r < 0)
				return r;
		}
		int r = plan->net == NONO_NET_PROXY_ONLY ? add_direct_port_rules(rfd, caps, err) : 0;
		if (r < 0)
			return r;
	}
	*ruleset_fd = nono_steal_fd(&rfd);
	return 0;
}
