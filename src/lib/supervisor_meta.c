/* supervisor_meta.c — metadata writes and file watches, decided and performed by the supervisor
 * (issue 11, items 3 and 4).
 *
 * Landlock (every ABI up to 7) does not mediate chmod, chown, utimes or xattr changes, nor
 * inotify/fanotify marks: a sandboxed command could `chmod o+r ~/.ssh/id_ed25519` or learn the
 * names of new files in a directory it cannot read. The filter (seccomp.c, variant NONO_SC_META)
 * traps these syscalls whenever Landlock restricts the filesystem, in every network mode, and this
 * file answers them:
 *   - chmod, fchmod, fchmodat, fchmodat2 (6.6), chown, fchown, lchown, fchownat, utime, utimes,
 *     futimesat, utimensat, setxattr, lsetxattr, fsetxattr, removexattr, lremovexattr,
 *     fremovexattr: only on an object inside a WRITE grant;
 *   - inotify_add_watch, fanotify_mark (inode marks; unprivileged fanotify is 5.13+): only on an
 *     object inside a READ grant; mount and filesystem marks are refused (they cover everything on
 *     the mount).
 * How (race-free, the same on 6.1 and on 6.18):
 *   1. the object is found by US: a path (our copy, read once from the child's memory) is opened
 *      O_PATH with openat2(RESOLVE_NO_MAGICLINKS) relative to the child's cwd (/proc/TID/cwd) or
 *      to our copy of its dirfd (pidfd_getfd); an fd form (fchmod, fsetxattr, futimens, an
 *      AT_EMPTY_PATH call) takes our copy of the child's fd. "/proc/self/fd/N", "/dev/fd/N" and
 *      /dev/std* name the CHILD's fd N, so they are taken with pidfd_getfd rather than resolved
 *      (resolved here they would name the supervisor's own fds); any other magic link is refused
 *      (ELOOP) rather than followed in the supervisor's context;
 *   2. the real path of that very object (the link N of our fd in /proc/thread-self/fd) is checked
 *      against the grants (supervisor_grants.c, which memoizes the verdict by directory);
 *   3. the call is performed by us ON THAT OBJECT (our fd, or the /proc/self/fd/N magic link to it),
 *      so nothing the child changes afterwards (a symlink swapped, a path rewritten by another
 *      thread, an fd closed and reopened) can redirect it. It is never continued in the child.
 * An fd the child got from outside the grants (inherited, or an O_PATH open, which Landlock never
 * checks) names an object outside the grants: refused like its path would be. The f-forms are
 * performed with the same f-syscall on our copy, so an O_PATH fd gets EBADF exactly as the kernel
 * would answer the child.
 * Known differences from the kernel's own answer (documented in docs/decisions.md):
 *   - an l-form xattr call on a symlink answers EPERM (the kernel's answer for user.* on a symlink;
 *     other namespaces need privileges an unprivileged command lacks): no fd-based lsetxattr exists
 *     before setxattrat (6.13);
 *   - a path through a /proc magic link other than the child's own fd links answers ELOOP;
 *   - after chroot (only possible with --allow-userns) absolute paths resolve from the supervisor's
 *     root: a different object may be named, but the grant check on its real path still holds.
 */
#include "supervisor_int.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <utime.h>

#ifndef __NR_openat2
#define __NR_openat2 437 /* 5.6 */
#endif
#define META_NAME_MAX 256    /* XATTR_NAME_MAX + 1 */
#define META_VALUE_MAX 65536 /* XATTR_SIZE_MAX */
#define AT_OK_FLAGS (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
#define FAN_MARK_TYPES (FAN_MARK_MOUNT | FAN_MARK_FILESYSTEM) /* also FAN_MARK_MNTNS (6.14) */

enum meta_kind { MK_CHMOD, MK_CHOWN, MK_TIMES, MK_SETX, MK_RMX, MK_INOTIFY, MK_FANOTIFY };
enum times_fmt { T_NONE, T_UTIMBUF, T_TIMEVAL, T_TIMESPEC };

/* Where each syscall keeps its object. dirfd -1: AT_FDCWD; path -1: the object is the fd in
 * `dirfd` (f-forms); flags -1: no AT_* flags; null_dirfd: a NULL path names dirfd itself. */
struct meta_sys {
	const char *name;
	enum meta_kind kind;
	int dirfd, path, flags, times;
	bool nofollow; /* the l-forms */
	bool null_dirfd;
	enum times_fmt tf;
};

static const struct meta_sys meta_table[] = {
	{"chmod", MK_CHMOD, -1, 0, -1, -1, false, false, T_NONE},
	{"fchmod", MK_CHMOD, 0, -1, -1, -1, false, false, T_NONE},
	{"fchmodat", MK_CHMOD, 0, 1, -1, -1, false, false, T_NONE},
	{"fchmodat2", MK_CHMOD, 0, 1, 3, -1, false, false, T_NONE},
	{"chown", MK_CHOWN, -1, 0, -1, -1, false, false, T_NONE},
	{"fchown", MK_CHOWN, 0, -1, -1, -1, false, false, T_NONE},
	{"lchown", MK_CHOWN, -1, 0, -1, -1, true, false, T_NONE},
	{"fchownat", MK_CHOWN, 0, 1, 4, -1, false, false, T_NONE},
	{"utime", MK_TIMES, -1, 0, -1, 1, false, false, T_UTIMBUF},
	{"utimes", MK_TIMES, -1, 0, -1, 1, false, false, T_TIMEVAL},
	{"futimesat", MK_TIMES, 0, 1, -1, 2, false, true, T_TIMEVAL},
	{"utimensat", MK_TIMES, 0, 1, 3, 2, false, true, T_TIMESPEC},
	{"setxattr", MK_SETX, -1, 0, -1, -1, false, false, T_NONE},
	{"lsetxattr", MK_SETX, -1, 0, -1, -1, true, false, T_NONE},
	{"fsetxattr", MK_SETX, 0, -1, -1, -1, false, false, T_NONE},
	{"removexattr", MK_RMX, -1, 0, -1, -1, false, false, T_NONE},
	{"lremovexattr", MK_RMX, -1, 0, -1, -1, true, false, T_NONE},
	{"fremovexattr", MK_RMX, 0, -1, -1, -1, false, false, T_NONE},
	{"inotify_add_watch", MK_INOTIFY, -1, 1, -1, -1, false, false, T_NONE},
	{"fanotify_mark", MK_FANOTIFY, 3, 4, -1, -1, false, true, T_NONE},
};

/* The object a request names, as we hold it. */
enum obj_via {
	VIA_FD,    /* the child's fd itself: an f-form, or a NULL path naming dirfd */
	VIA_EMPTY, /* "" with AT_EMPTY_PATH: dirfd (or the cwd) itself */
	VIA_PATH,  /* a path, resolved by us with the call's follow rules */
};
struct obj {
	int fd; /* ours: O_PATH when we opened it by path, else a copy of the child's fd */
	enum obj_via via;
	bool is_link; /* VIA_PATH with nofollow landed on a symlink */
	char proc[32]; /* "/proc/self/fd/N": the magic link to exactly this object */
	int pdir;          /* …and the same link for an *at call: (pdir, pname) */
	const char *pname;
	char canon[NONO_PATH_MAX];
};

static void obj_close(struct obj *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

/* ---- grants ---- */

int nono_sup_meta_load(struct nono_supervisor *s, const nono_caps *caps)
{
	if (!(s->view = nono_caps_clone(caps)))
		return -ENOMEM;
	size_t ng = nono_caps_grant_count(caps);
	s->mgrants = calloc(ng + 1, sizeof *s->mgrants);
	if (!s->mgrants)
		return -ENOMEM;
	for (size_t i = 0; i < ng; i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) < 0 || !g.resolved)
			continue;
		struct meta_grant *m = &s->mgrants[s->nmgrants];
		if (!(m->path = strdup(g.resolved)))
			return -ENOMEM;
		m->dir = !g.is_file;
		m->access = (unsigned)g.access;
		s->nmgrants++;
	}
	return 0;
}

void nono_sup_meta_free(struct nono_supervisor *s)
{
	for (size_t i = 0; s->mgrants && i < s->nmgrants; i++)
		free(s->mgrants[i].path);
	free(s->mgrants);
	s->mgrants = NULL;
	nono_caps_free(s->view);
	s->view = NULL;
	s->nmgrants = 0;
	nono_sup_memo_free(s);
	nono_sup_fd_dir_close(s);
}

/* ---- reading the request ---- */

/* A NUL-terminated string from the child, page by page (a path may end just before an unmapped
 * page). Length, or -EFAULT / -ENAMETOOLONG (-ERANGE for xattr names, chosen by the caller). */
static int fetch_str(struct rq *q, uint64_t addr, char *buf, size_t size)
{
	if (addr == 0)
		return -EFAULT;
	size_t got = 0;
	while (got < size) {
		size_t page = 4096 - (size_t)((addr + got) & 4095);
		size_t n = page < size - got ? page : size - got;
		int r = nono_sup_fetch(q, addr + got, buf + got, n);
		if (r < 0)
			return r;
		char *z = memchr(buf + got, '\0', n);
		if (z)
			return (int)(z - buf);
		got += n;
	}
	return -ENAMETOOLONG;
}

/* Is the symlink `link` (/dev/fd, /dev/stdin…) there, pointing at `want`? A minimal /dev (a
 * container's, the VM tier's) may lack it: then the path is resolved like any other (ENOENT). */
static bool links_to(const char *link, const char *want)
{
	char t[64];
	ssize_t n = readlink(link, t, sizeof t - 1);
	if (n < 0)
		return false;
	t[n] = '\0';
	return !strcmp(t, want);
}

/* "/proc/self/fd/N", "/proc/thread-self/fd/N", "/dev/fd/N", "/dev/stdin|stdout|stderr": the
 * child's own fd N (resolved by us they would name the supervisor's fds). -1 if not one. */
static int child_fd_link(const char *p)
{
	static const char *const std[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
	static const char *const pre[] = {"/proc/self/fd/", "/proc/thread-self/fd/", "/dev/fd/"};
	static const char *const std_to[] = {"/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"};
	for (int i = 0; i < 3; i++)
		if (!strcmp(p, std[i]))
			return links_to(std[i], std_to[i]) ? i : -1;
	for (size_t i = 0; i < N_ELEMENTS(pre); i++) {
		size_t l = strlen(pre[i]);
		if (strncmp(p, pre[i], l) != 0 || !p[l] || strlen(p + l) > 9)
			continue;
		if (i == 2 && !links_to("/dev/fd", "/proc/self/fd"))
			return -1;
		if (p[l] == '0' && p[l + 1]) /* proc names no fd "05": the kernel says ENOENT */
			return -1;
		long v = 0;
		for (const char *c = p + l; *c; c++) {
			if (*c < '0' || *c > '9')
				return -1;
			v = v * 10 + (*c - '0');
		}
		return (int)v;
	}
	return -1;
}

/* Our O_PATH fd for the child's cwd. */
static int child_cwd(struct rq *q)
{
	if (q->tid == 0)
		return -ESRCH;
	char p[64];
	snprintf(p, sizeof p, "/proc/%u/cwd", q->tid);
	int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Our copy of the child's dirfd, or its cwd for AT_FDCWD. */
static int child_dirfd(struct rq *q, int dirfd)
{
	return dirfd == AT_FDCWD ? child_cwd(q) : nono_sup_take_fd(q, dirfd);
}

struct lookup {
	int dirfd;      /* the child's dirfd (AT_FDCWD for the cwd) */
	uint64_t path;  /* the child's path pointer; ignored when !has_path */
	bool has_path;  /* false: the object is `dirfd` itself (f-forms) */
	bool null_ok;   /* a NULL path names `dirfd` (utimensat, futimesat, fanotify_mark) */
	bool null_cwd;  /* …and AT_FDCWD with a NULL path names the cwd (fanotify_mark) */
	bool empty_ok;  /* AT_EMPTY_PATH: "" names `dirfd` */
	bool nofollow;
	bool onlydir;
};

/* Find the object; fills o->fd (ours). Returns 0 or -errno (the child's answer). */
static int lookup_obj(struct rq *q, const struct lookup *l, struct obj *o)
{
	o->via = VIA_FD;
	if (!l->has_path)
		return (o->fd = nono_sup_take_fd(q, l->dirfd)) < 0 ? o->fd : 0;
	if (l->path == 0) {
		if (!l->null_ok || (l->dirfd == AT_FDCWD && !l->null_cwd))
			return -EFAULT; /* utimensat(AT_FDCWD, NULL): the kernel's getname fails */
		return (o->fd = child_dirfd(q, l->dirfd)) < 0 ? o->fd : 0;
	}
	char path[NONO_PATH_MAX];
	int n = fetch_str(q, l->path, path, sizeof path);
	if (n < 0)
		return n;
	if (n == 0) {
		if (!l->empty_ok)
			return -ENOENT;
		o->via = VIA_EMPTY;
		return (o->fd = child_dirfd(q, l->dirfd)) < 0 ? o->fd : 0;
	}
	o->via = VIA_PATH;
	int cfd = child_fd_link(path);
	if (cfd >= 0) {
		if (l->nofollow) /* the /proc link itself: nothing a command may change */
			return -EPERM;
		return (o->fd = nono_sup_take_fd(q, cfd)) < 0 ? o->fd : 0;
	}
	cleanup_fd int base = -1;
	if (path[0] != '/' && (base = child_dirfd(q, l->dirfd)) < 0)
		return base;
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | (l->nofollow ? O_NOFOLLOW : 0) |
			 (l->onlydir ? O_DIRECTORY : 0),
		.resolve = RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(__NR_openat2, path[0] == '/' ? AT_FDCWD : base, path, &how, sizeof how);
	if (fd < 0)
		return -errno;
	o->fd = (int)fd;
	struct stat st;
	o->is_link = l->nofollow && fstat(o->fd, &st) == 0 && S_ISLNK(st.st_mode);
	return 0;
}

/* After lookup: the magic link and the real path of our object. */
static int obj_name(struct rq *q, struct obj *o)
{
	o->pdir = nono_sup_proc_at(q->s, o->proc, &o->pname);
	return nono_sup_real_path(q->s, o->fd, o->proc, o->canon, sizeof o->canon);
}

/* ---- performing, on our object: 0 or -errno ---- */

static long sys_ret(long r)
{
	return r < 0 ? -errno : r;
}

static long do_chmod(const struct meta_sys *m, const struct obj *o, mode_t mode, unsigned flags)
{
	bool at2 = m->flags >= 0; /* fchmodat2: 6.6; ENOSYS before, as the kernel would answer */
	if (o->via == VIA_FD)
		return sys_ret(fchmod(o->fd, mode));
	if (o->via == VIA_EMPTY)
		return sys_ret(syscall(__NR_fchmodat2, o->fd, "", mode, flags));
	if (o->is_link) /* fchmodat2(AT_SYMLINK_NOFOLLOW) on a symlink: EOPNOTSUPP from the kernel */
		return sys_ret(syscall(__NR_fchmodat2, o->fd, "", mode,
				       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	return sys_ret(syscall(at2 ? __NR_fchmodat2 : __NR_fchmodat, o->pdir, o->pname, mode, 0));
}

static long do_chown(const struct obj *o, uid_t u, gid_t g, unsigned flags)
{
	if (o->via == VIA_FD)
		return sys_ret(fchown(o->fd, u, g));
	/* AT_EMPTY_PATH (2.6.39) on our O_PATH fd: the object itself, a symlink included. */
	return sys_ret(fchownat(o->fd, "", u, g, o->via == VIA_EMPTY ? (int)flags : AT_EMPTY_PATH));
}

/* The times argument, converted to timespecs (the kernel's own conversion and checks). */
static int read_times(struct rq *q, const struct meta_sys *m, struct timespec ts[2], bool *now)
{
	uint64_t p = q->args[m->times];
	*now = p == 0;
	if (*now)
		return 0;
	if (m->tf == T_TIMESPEC)
		return nono_sup_fetch(q, p, ts, 2 * sizeof *ts);
	if (m->tf == T_UTIMBUF) {
		struct utimbuf u;
		int r = nono_sup_fetch(q, p, &u, sizeof u);
		ts[0] = (struct timespec){u.actime, 0};
		ts[1] = (struct timespec){u.modtime, 0};
		return r;
	}
	struct timeval tv[2];
	int r = nono_sup_fetch(q, p, tv, sizeof tv);
	for (int i = 0; r == 0 && i < 2; i++) {
		if (tv[i].tv_usec < 0 || tv[i].tv_usec >= 1000000)
			return -EINVAL;
		ts[i] = (struct timespec){tv[i].tv_sec, tv[i].tv_usec * 1000};
	}
	return r;
}

static long do_times(const struct obj *o, const struct timespec *ts, unsigned flags)
{
	if (o->via == VIA_FD) /* futimens: a NULL path (flags must be 0: the kernel checks) */
		return sys_ret(syscall(__NR_utimensat, o->fd, NULL, ts, flags));
	if (o->via == VIA_EMPTY)
		return sys_ret(syscall(__NR_utimensat, o->fd, "", ts, flags));
	if (o->is_link) /* AT_EMPTY_PATH in utimensat: 5.8 */
		return sys_ret(syscall(__NR_utimensat, o->fd, "", ts,
				       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	return sys_ret(syscall(__NR_utimensat, o->pdir, o->pname, ts, 0));
}

/* What a call reads from the task besides its object: copied with the object, before the one
 * ID_VALID that makes all of it the waiting task's (one ioctl a call, not two). */
struct meta_args {
	int error; /* 0, or the -errno to answer once the object is known to be granted */
	struct timespec ts[2];
	bool now; /* times: NULL */
	char name[META_NAME_MAX];
	char *val; /* xattr value (size bytes), owned */
	size_t size;
};

static void args_free(struct meta_args *a)
{
	free(a->val);
}

static int read_xattr(struct rq *q, const struct meta_sys *m, struct meta_args *a)
{
	int n = fetch_str(q, q->args[1], a->name, sizeof a->name);
	if (n == -ENAMETOOLONG || n == 0)
		return -ERANGE; /* the kernel's answer for an empty or over-long name */
	if (n < 0)
		return n;
	a->size = m->kind == MK_SETX ? (size_t)q->args[3] : 0;
	if (a->size > META_VALUE_MAX)
		return -E2BIG;
	if (!(a->val = malloc(a->size ? a->size : 1)))
		return -ENOMEM;
	return a->size ? nono_sup_fetch(q, q->args[2], a->val, a->size) : 0;
}

static void read_args(struct rq *q, const struct meta_sys *m, struct meta_args *a)
{
	if (m->kind == MK_TIMES)
		a->error = read_times(q, m, a->ts, &a->now);
	else if (m->kind == MK_SETX || m->kind == MK_RMX)
		a->error = read_xattr(q, m, a);
}

static long do_xattr(struct rq *q, const struct meta_sys *m, const struct obj *o,
		     const struct meta_args *a)
{
	int xflags = (int)(uint32_t)q->args[4];
	if (o->via == VIA_FD)
		return sys_ret(m->kind == MK_SETX ? fsetxattr(o->fd, a->name, a->val, a->size, xflags)
						  : fremovexattr(o->fd, a->name));
	if (o->is_link) /* no fd-based lsetxattr before setxattrat (6.13): header comment */
		return -EPERM;
	return sys_ret(m->kind == MK_SETX ? setxattr(o->proc, a->name, a->val, a->size, xflags)
					  : removexattr(o->proc, a->name));
}

/* ---- the handler ---- */

static const struct meta_sys *meta_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(meta_table); i++)
		if (!strcmp(meta_table[i].name, name))
			return &meta_table[i];
	return NULL;
}

/* How the call names its object, from its arguments. 0, or -errno (bad flags). */
static int meta_lookup_spec(const struct rq *q, const struct meta_sys *m, unsigned flags,
			    struct lookup *l)
{
	memset(l, 0, sizeof *l);
	l->dirfd = m->dirfd >= 0 ? (int)(uint32_t)q->args[m->dirfd] : AT_FDCWD;
	l->has_path = m->path >= 0;
	l->path = l->has_path ? q->args[m->path] : 0;
	l->null_ok = m->null_dirfd;
	l->nofollow = m->nofollow;
	if (m->kind == MK_INOTIFY) {
		uint32_t mask = (uint32_t)q->args[2];
		l->nofollow = mask & IN_DONT_FOLLOW;
		l->onlydir = mask & IN_ONLYDIR;
	} else if (m->kind == MK_FANOTIFY) {
		l->null_cwd = true;
		l->nofollow = flags & FAN_MARK_DONT_FOLLOW;
		l->onlydir = flags & FAN_MARK_ONLYDIR;
	} else if (m->flags >= 0) {
		if (flags & ~(unsigned)AT_OK_FLAGS)
			return -EINVAL;
		l->nofollow = flags & AT_SYMLINK_NOFOLLOW;
		l->empty_ok = flags & AT_EMPTY_PATH;
	}
	return 0;
}

static long meta_perform(struct rq *q, const struct meta_sys *m, const struct obj *o,
			 const struct meta_args *a, int group, unsigned flags)
{
	if (a->error)
		return a->error;
	switch (m->kind) {
	case MK_CHMOD:
		return do_chmod(m, o, (mode_t)(uint32_t)q->args[m->path >= 0 ? m->path + 1 : 1], flags);
	case MK_CHOWN: {
		int ai = m->path >= 0 ? m->path + 1 : 1;
		return do_chown(o, (uid_t)q->args[ai], (gid_t)q->args[ai + 1], flags);
	}
	case MK_TIMES:
		return do_times(o, a->now ? NULL : a->ts, flags);
	case MK_SETX:
	case MK_RMX:
		return do_xattr(q, m, o, a);
	case MK_INOTIFY: /* the magic link is followed to exactly our object (a symlink too) */
		return sys_ret(inotify_add_watch(group, o->proc,
						 (uint32_t)q->args[2] & ~(uint32_t)IN_DONT_FOLLOW));
	case MK_FANOTIFY:
		return sys_ret(fanotify_mark(group, flags & ~(unsigned)FAN_MARK_DONT_FOLLOW,
					     q->args[2], AT_FDCWD, o->proc));
	}
	return -ENOSYS;
}

/* A watch's notification group: our copy of the child's inotify/fanotify fd. FAN_MARK_FLUSH names
 * no object: performed at once. *done: answered. */
static struct denial watch_group(struct rq *q, const struct meta_sys *m, unsigned flags, int *group,
				 bool *done)
{
	*done = false;
	*group = nono_sup_take_fd(q, (int)(uint32_t)q->args[0]);
	if (*group < 0 && !nono_sup_id_valid(q->s, q->id))
		return *done = true, SUP_DONE;
	if (*group < 0)
		return sup_refuse(*group == -EBADF ? EBADF : EPERM, "cannot take the watch's fd");
	if (m->kind != MK_FANOTIFY)
		return SUP_DONE;
	if (flags & FAN_MARK_TYPES)
		return sup_refuse(EPERM, "fanotify mount and filesystem marks are not granted");
	/* Permission events (FAN_*_PERM, root with FAN_CLASS_CONTENT) would let the command hold or
	 * refuse opens and execs of other processes on the host (review of 2026-12-04): never. */
	if (q->args[2] & (FAN_ACCESS_PERM | FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM))
		return sup_refuse(EPERM, "fanotify permission events are not granted");
	if (flags & FAN_MARK_FLUSH) {
		*done = true;
		nono_sup_answer(q, sys_ret(fanotify_mark(*group, flags, q->args[2], AT_FDCWD, NULL)),
				"fanotify_mark failed");
	}
	return SUP_DONE;
}

struct denial nono_sup_meta(struct rq *q)
{
	const struct meta_sys *m = meta_find(q->sys);
	if (!m)
		return sup_refuse(EPERM, "request not in the supervisor's table");
	memcpy(q->family, "file", sizeof "file");
	bool watch = m->kind == MK_INOTIFY || m->kind == MK_FANOTIFY;
	unsigned flags = m->kind == MK_FANOTIFY ? (uint32_t)q->args[1]
			 : m->flags >= 0	 ? (uint32_t)q->args[m->flags]
						 : 0;
	cleanup_fd int group = -1;
	if (watch) {
		bool done;
		struct denial d = watch_group(q, m, flags, &group, &done);
		if (done || d.error)
			return d;
	}
	struct lookup l;
	int r = meta_lookup_spec(q, m, flags, &l);
	if (r < 0)
		return sup_refuse(-r, "unknown flags");
	struct obj o = {.fd = -1};
	__attribute__((cleanup(args_free))) struct meta_args a = {0};
	r = lookup_obj(q, &l, &o);
	if (r == 0)
		r = obj_name(q, &o);
	if (r == 0)
		read_args(q, m, &a);
	/* Everything above was read from the task: it counts only if the task still waits. */
	if (!nono_sup_id_valid(q->s, q->id)) {
		obj_close(&o);
		return SUP_DONE;
	}
	if (r < 0) {
		obj_close(&o);
		return sup_refuse(-r, r == -ELOOP ? "path through a /proc magic link, or a loop"
						 : "cannot resolve the object");
	}
	size_t tl = strnlen(o.canon, 250);
	for (size_t i = 0; i < tl; i++) /* audit strings are printable only */
		q->target[i] = (unsigned char)o.canon[i] < 0x20 || o.canon[i] == 0x7f ? '?' : o.canon[i];
	q->target[tl] = '\0';
	/* Under a read-only bind the kernel itself would answer EROFS: so do we. */
	const char *why;
	int v = nono_sup_meta_verdict(q->s, o.canon, watch ? NONO_ACCESS_READ : NONO_ACCESS_WRITE,
				      &why);
	if (v) {
		obj_close(&o);
		return sup_refuse(v, why);
	}
	/* The system set grants device files read-write (/dev/null, /dev/tty, …) for their data, not
	 * their inode: a root command must not re-mode the host's /dev/null, a user's command not make
	 * its terminal world-writable (review of 2026-12-05, F6). */
	struct stat st;
	if (!watch && fstat(o.fd, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
		obj_close(&o);
		return sup_refuse(EPERM, "metadata change of a device node");
	}
	long res = meta_perform(q, m, &o, &a, group, flags);
	obj_close(&o);
	nono_sup_answer(q, res, "the call failed");
	return SUP_DONE;
}
