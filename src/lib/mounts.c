/* mounts.c — deny paths inside grants, enforced. Landlock only grants: it cannot take ~/.ssh back
 * out of a grant of ~. nono_exec's command therefore gets a private mount namespace (plus a user
 * namespace when unprivileged) in which, before Landlock applies, every denied path inside a grant
 * is covered: a directory by an empty read-only tmpfs with mode 000, a file by a read-only, nodev
 * bind of /dev/null (opening it fails with EACCES). The cover is a mount point, so it cannot be
 * renamed or removed (EBUSY), and a Landlock-restricted process cannot unmount it (Landlock denies
 * mount topology changes, 5.13).
 * A command running as root would read through mode 000 with CAP_DAC_OVERRIDE, and with
 * CAP_DAC_READ_SEARCH open any file of a bind's filesystem by handle through it
 * (open_by_handle_at: Landlock judges the disconnected path by the bind's root): it loses both
 * whenever it gets a mount op. The plan decides (nono_mounts_decide); the exec
 * child enters (nono_mounts_enter); support.c asks once whether a namespace can be made here
 * (nono_mounts_probe_child, in a forked child). The fs mount API (fsopen, 5.2; mount_setattr,
 * 5.12) is always there where Landlock (5.13) is. */
#include "caps_int.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* `p` is `g` or below it (below only for a directory grant). Our own copy of nono_path_within's
 * rule: caps_query.c asks nono_mounts_write_blocked, so calling back into it would make a cycle. */
static bool within(const char *p, const char *g, bool dir)
{
	size_t n = strlen(g);
	if (strncmp(g, p, n))
		return false;
	return p[n] == '\0' || (dir && (p[n] == '/' || (n == 1 && g[0] == '/')));
}

/* The grant (other than `self`) covering `p` with `want` access bits, or NULL. */
static const struct grant *covering(const nono_caps *caps, const char *p, unsigned want,
				    const struct grant *self)
{
	for (size_t i = 0; i < caps->ngrants; i++) {
		const struct grant *g = &caps->grants[i];
		if (g != self && (g->access & want) && within(p, g->resolved, !g->is_file) &&
		    strcmp(p, g->resolved))
			return g;
	}
	return NULL;
}

/* A read-only grant strictly inside a writable directory grant: Landlock would let it be written
 * (rights add up along the hierarchy); a read-only bind makes it read-only. */
static bool is_ro_bind(const nono_caps *caps, const struct grant *g)
{
	return g->access == NONO_ACCESS_READ && covering(caps, g->resolved, NONO_ACCESS_WRITE, g);
}

/* The innermost read-only bind covering `p`, or NULL. */
static const struct grant *ro_bind_of(const nono_caps *caps, const char *p)
{
	const struct grant *best = NULL;
	for (size_t i = 0; i < caps->ngrants; i++) {
		const struct grant *g = &caps->grants[i];
		/* within() first: it is a strncmp, is_ro_bind a scan of every grant (this ran for
		 * each grant of each writable grant: ~0.4 ms a `nono run` with /etc's entries). */
		if (within(p, g->resolved, !g->is_file) && is_ro_bind(caps, g) &&
		    (!best || strlen(g->resolved) > strlen(best->resolved)))
			best = g;
	}
	return best;
}

/* A writable grant strictly inside a read-only bind gets its own writable bind again. */
static bool is_rw_bind(const nono_caps *caps, const struct grant *g)
{
	if (!(g->access & NONO_ACCESS_WRITE))
		return false;
	const struct grant *ro = ro_bind_of(caps, g->resolved);
	return ro && strcmp(ro->resolved, g->resolved);
}

bool nono_mounts_write_blocked(const nono_caps *caps, const char *p)
{
	const struct grant *ro = ro_bind_of(caps, p);
	if (!ro)
		return false;
	/* A writable bind deeper than the read-only one, and covering p, lifts it. */
	for (size_t i = 0; i < caps->ngrants; i++) {
		const struct grant *g = &caps->grants[i];
		if (strlen(g->resolved) > strlen(ro->resolved) && within(p, g->resolved, !g->is_file) &&
		    is_rw_bind(caps, g))
			return false;
	}
	return true;
}

static const char *deny_inside_grant(const nono_caps *caps, const char *d)
{
	for (size_t i = 0; i < caps->ngrants; i++)
		if (within(d, caps->grants[i].resolved, !caps->grants[i].is_file))
			return caps->grants[i].resolved;
	return NULL;
}

static int op_cmp(const void *a, const void *b)
{
	const struct nono_mount_op *x = a, *y = b;
	if ((x->kind == 'd') != (y->kind == 'd'))
		return x->kind == 'd' ? 1 : -1; /* covers last, on top of every bind */
	size_t lx = strlen(x->path), ly = strlen(y->path);
	return lx < ly ? -1 : lx > ly; /* outer binds first */
}

/* The ops, sorted; *n_deny / *n_ro counted; *why names the first one for messages. */
static struct nono_mount_op *build_ops(const nono_caps *caps, size_t *n_deny, size_t *n_ro,
				       char *why, size_t why_len)
{
	struct nono_mount_op *ops = calloc(caps->ngrants + caps->ndenies + 1, sizeof *ops);
	size_t n = 0;
	*n_deny = *n_ro = 0;
	for (size_t i = 0; ops && i < caps->ngrants; i++) {
		const struct grant *g = &caps->grants[i];
		bool ro = is_ro_bind(caps, g), rw = !ro && is_rw_bind(caps, g);
		if (ro && why && !why[0])
			snprintf(why, why_len, "read-only grant %.200s lies inside the writable grant "
				 "%.200s", g->resolved,
				 covering(caps, g->resolved, NONO_ACCESS_WRITE, g)->resolved);
		if (ro || rw)
			ops[n++] = (struct nono_mount_op){ro ? 'r' : 'w', g->resolved};
		*n_ro += ro;
	}
	for (size_t i = 0; ops && i < caps->ndenies; i++) {
		const char *g = deny_inside_grant(caps, caps->denies[i]);
		if (!g)
			continue;
		if (why && !why[0])
			snprintf(why, why_len, "deny path %.200s lies inside the grant %.200s",
				 caps->denies[i], g);
		ops[n++] = (struct nono_mount_op){'d', caps->denies[i]};
		++*n_deny;
	}
	if (ops)
		qsort(ops, n, sizeof *ops, op_cmp);
	return ops;
}

bool nono_mounts_wanted(const nono_caps *caps)
{
	size_t n_deny, n_ro;
	struct nono_mount_op *ops = build_ops(caps, &n_deny, &n_ro, NULL, 0);
	bool wanted = !ops || ops[0].kind; /* out of memory: let the plan say so */
	free(ops);
	return wanted;
}

int nono_mounts_decide(const nono_caps *caps, const struct nono_kernel *k, bool best_effort,
		       struct nono_plan *plan, nono_error *err)
{
	size_t n_deny, n_ro;
	char why[480] = "";
	struct nono_mount_op *ops = build_ops(caps, &n_deny, &n_ro, why, sizeof why);
	if (!ops)
		return nono_fail(err, -ENOMEM, "out of memory");
	if (!ops[0].kind) {
		free(ops);
		return 0;
	}
	if (!k->mount_ns) {
		free(ops);
		if (!best_effort)
			return nono_fail(err, -EOPNOTSUPP,
					 "%s: Landlock cannot enforce that alone and this process "
					 "cannot make a private mount namespace (user namespaces "
					 "disabled?)", why);
		nono_report_downgrade(&plan->report,
				      "NOT enforced without a private mount namespace: %zu deny "
				      "path(s) inside grants, %zu read-only grant(s) inside writable "
				      "ones (%.120s)", n_deny, n_ro, why);
		return 0;
	}
	plan->mount_ops = ops;
	plan->report.deny_mounts = n_deny;
	plan->report.ro_binds = n_ro;
	return 0;
}

/* ---- in the child: raw syscalls and stack memory only ---- */

static int write_all(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, buf, len);
	int e = errno;
	close(fd);
	return w == (ssize_t)len ? 0 : -(w < 0 ? e : EIO);
}

/* "ID ID 1\n" for a uid_map / gid_map of our own id alone. */
static size_t id_map(char *buf, unsigned id)
{
	char digits[12];
	size_t n = 0, len = 0;
	do
		digits[n++] = (char)('0' + id % 10);
	while ((id /= 10) && n < sizeof digits);
	for (int rep = 0; rep < 2; rep++) {
		for (size_t i = n; i > 0; i--)
			buf[len++] = digits[i - 1];
		buf[len++] = ' ';
	}
	buf[len++] = '1';
	buf[len++] = '\n';
	return len;
}

/* A private mount namespace; unprivileged: in a new user namespace mapping only our ids. */
static int enter_namespace(bool priv)
{
	unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
	if (unshare(priv ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -errno;
	char buf[40];
	int r = 0;
	if (!priv) {
		/* setgroups must be denied before an unprivileged gid_map (3.19). */
		r = write_all("/proc/self/setgroups", "deny", 4);
		r = r ? r : write_all("/proc/self/uid_map", buf, id_map(buf, uid));
		r = r ? r : write_all("/proc/self/gid_map", buf, id_map(buf, gid));
	}
	/* Nothing we mount may propagate back to the caller's namespace. */
	if (!r && syscall(__NR_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		r = -errno;
	return r;
}

/* A detached tmpfs: mode 000, tiny; `attrs` MOUNT_ATTR_*. Returns the mount fd or -errno. */
static int new_tmpfs(unsigned attrs)
{
	int fs = (int)syscall(__NR_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	int r = 0;
	if (syscall(__NR_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "000", 0) < 0 ||
	    syscall(__NR_fsconfig, fs, FSCONFIG_SET_STRING, "size", "4k", 0) < 0 ||
	    syscall(__NR_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = -errno;
	int mnt = r ? -1 : (int)syscall(__NR_fsmount, fs, FSMOUNT_CLOEXEC, attrs);
	if (!r && mnt < 0)
		r = -errno;
	close(fs);
	return r ? r : mnt;
}

#define COVER_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)

static int attach(int mnt, int target)
{
	if (syscall(__NR_move_mount, mnt, "", target, "",
		    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

/* Cover one file with a bind of /dev/null, read-only and nodev: opening it fails with EACCES
 * (nodev), it reads and writes nothing. The source must be a mount of our own namespace: before
 * 6.15 open_tree cannot clone a detached mount (EINVAL on 6.1), so no private tmpfs file here. */
static int cover_file(int target)
{
	int t = (int)syscall(__NR_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t < 0)
		return -errno;
	struct mount_attr a = {.attr_set = COVER_ATTRS};
	int r = syscall(__NR_mount_setattr, t, "", AT_EMPTY_PATH, &a, sizeof a) < 0 ? -errno : 0;
	r = r ? r : attach(t, target);
	close(t);
	return r;
}

/* Cover `path` (opened without following a final symlink: the deny path was canonicalised when
 * it was added; a symlink there now is refused, never followed). A missing path is skipped. */
static int cover(const char *path)
{
	int t = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (t < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	int r = fstat(t, &st) < 0 ? -errno : S_ISLNK(st.st_mode) ? -ELOOP : 0;
	if (!r && S_ISDIR(st.st_mode)) {
		int m = new_tmpfs(COVER_ATTRS);
		r = m < 0 ? m : attach(m, t);
		if (m >= 0)
			close(m);
	} else if (!r) {
		r = cover_file(t);
	}
	close(t);
	return r;
}

/* Take capability `cap` (< 32) from the effective, permitted, inheritable and bounding sets. */
static int drop_cap(unsigned cap)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(__NR_capget, &h, d) < 0)
		return -errno;
	d[0].effective &= ~(1u << cap);
	d[0].permitted &= ~(1u << cap);
	d[0].inheritable &= ~(1u << cap);
	if (syscall(__NR_capset, &h, d) < 0)
		return -errno;
	/* Root regains its bounding set at execve, so the drop there is what counts; one that is not
	 * in it (a container's reduced set) needs no CAP_SETPCAP to stay out. */
	if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* Root reads through mode 000: take the two capabilities that would let it. */
static int drop_dac_caps(void)
{
	int r = drop_cap(CAP_DAC_OVERRIDE);
	return r ? r : drop_cap(CAP_DAC_READ_SEARCH);
}

int nono_drop_read_search(void)
{
	return geteuid() == 0 ? drop_cap(CAP_DAC_READ_SEARCH) : 0;
}

/* A bind of `path` onto itself, read-only ('r') or writable again ('w', inside a read-only one),
 * with what is mounted below it. */
static int rebind(const char *path, bool readonly)
{
	int t = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (t < 0)
		return errno == ENOENT ? 0 : -errno;
	int c = (int)syscall(__NR_open_tree, t, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
				    AT_EMPTY_PATH | AT_RECURSIVE);
	int r = c < 0 ? -errno : 0;
	struct mount_attr a = {0};
	if (readonly)
		a.attr_set = MOUNT_ATTR_RDONLY;
	else
		a.attr_clr = MOUNT_ATTR_RDONLY;
	if (!r && syscall(__NR_mount_setattr, c, "", AT_EMPTY_PATH | (readonly ? AT_RECURSIVE : 0),
			  &a, sizeof a) < 0)
		r = -errno;
	r = r ? r : attach(c, t);
	if (c >= 0)
		close(c);
	close(t);
	return r;
}

/* The working directory was moved into the new namespace by unshare, before the binds and covers:
 * it still names the dentry under them. One inside a covered path is refused (relative lookups
 * would pass under the cover); otherwise it is looked up again, so that it lies in the new mounts
 * (a working directory inside a read-only bind becomes read-only too). */
static int check_cwd(const struct nono_mount_op *ops)
{
	char cwd[4096];
	if (syscall(__NR_getcwd, cwd, sizeof cwd) < 0)
		return -errno;
	for (size_t i = 0; ops[i].kind; i++) {
		size_t n = strlen(ops[i].path);
		if (ops[i].kind == 'd' && !strncmp(cwd, ops[i].path, n) &&
		    (cwd[n] == '\0' || cwd[n] == '/'))
			return -EACCES;
	}
	return chdir(cwd) < 0 ? -errno : 0;
}

int nono_mounts_enter(const struct nono_mount_op *ops)
{
	bool priv = geteuid() == 0;
	int r = enter_namespace(priv);
	for (size_t i = 0; !r && ops[i].kind; i++)
		r = ops[i].kind == 'd' ? cover(ops[i].path) : rebind(ops[i].path, ops[i].kind == 'r');
	r = r ? r : check_cwd(ops);
	return r || !priv ? r : drop_dac_caps();
}

int nono_mounts_probe_child(void)
{
	int r = enter_namespace(geteuid() == 0);
	int m = r ? r : new_tmpfs(COVER_ATTRS);
	return m < 0 ? -m : 0;
}
