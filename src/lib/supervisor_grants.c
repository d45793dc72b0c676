/* supervisor_grants.c — which real paths a supervised metadata change or watch may touch: the real
 * path of the supervisor's own object, the grant check on it, and a memo of its verdicts by
 * directory.
 *
 * The verdict is a pure function of the canonical path and the caps the supervisor was started with
 * (its own copy, never changed): the deny paths, the read-only binds inside writable grants and the
 * grants themselves, all compared as path prefixes. Computed in full it costs a scan of every grant
 * for each grant covering the path (nono_mounts_write_blocked), about 5 µs a call on the team
 * machine with the system set's grants: a fifth of a supervised fchmod (bench/README.md).
 *
 * Why a memo by directory is exact: for p = D/name (name without '/'), a static path s decides
 * anything about p only if it is a prefix of p ending at a component boundary. If no static path
 * lies strictly below D (none starts with "D/"), those s are exactly the ancestors of D (D itself
 * included), whatever the name: every child of D gets the same verdict. The memo keeps a verdict
 * only for such a D. It is keyed by path text, never by inode (inode numbers are reused), and holds
 * no object: the object is still the supervisor's own fd, resolved and named for each call; only
 * the string comparison of its real path against the grants is not repeated. */
#include "supervisor_int.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

bool nono_sup_path_withheld(const struct nono_supervisor *s, const char *canon, bool write)
{
	if (!s->view)
		return true; /* fail closed */
	return nono_caps_denied_by(s->view, canon) ||
	       (write && nono_mounts_write_blocked(s->view, canon));
}

bool nono_sup_meta_granted(const struct nono_supervisor *s, const char *canon, unsigned access)
{
	if (canon[0] != '/') /* pipe:[…], socket:[…], anon_inode:…: no path, no grant */
		return false;
	if (nono_sup_path_withheld(s, canon, access & NONO_ACCESS_WRITE))
		return false;
	for (size_t i = 0; i < s->nmgrants; i++)
		if ((s->mgrants[i].access & access) == access &&
		    nono_path_within(canon, s->mgrants[i].path, s->mgrants[i].dir))
			return true;
	return false;
}

/* The verdict in full: 0, EROFS (under a read-only bind: the kernel itself would answer that) or
 * EACCES. */
static int verdict(const struct nono_supervisor *s, const char *canon, unsigned need,
		   const char **why)
{
	bool write = need & NONO_ACCESS_WRITE;
	if (write && s->view && !nono_caps_denied_by(s->view, canon) &&
	    nono_mounts_write_blocked(s->view, canon)) {
		*why = "inside a read-only grant (bound read-only)";
		return EROFS;
	}
	if (!nono_sup_meta_granted(s, canon, need)) {
		*why = write ? "metadata change outside the write grants" : "watch outside the read grants";
		return EACCES;
	}
	*why = NULL;
	return 0;
}

/* Does `s` start with the `n` bytes of `d` followed by '/' (lies strictly below D)? */
static bool below_dir(const char *s, const char *d, size_t n)
{
	return s && !strncmp(s, d, n) && s[n] == '/';
}

/* May every child of the directory `d` (n bytes, not NUL-terminated) share one verdict? Only when
 * no grant and no deny path lies below it (header comment). */
static bool dir_memoizable(const struct nono_supervisor *s, const char *d, size_t n)
{
	if (n == 0 || !s->view) /* "/x": "/" is below "" — every path is */
		return false;
	for (size_t i = 0; i < s->nmgrants; i++)
		if (below_dir(s->mgrants[i].path, d, n))
			return false;
	size_t ng = nono_caps_grant_count(s->view), nd = nono_caps_deny_count(s->view);
	for (size_t i = 0; i < ng; i++) {
		nono_grant g;
		if (nono_caps_grant(s->view, i, &g) < 0 || below_dir(g.resolved, d, n))
			return false;
	}
	for (size_t i = 0; i < nd; i++)
		if (below_dir(nono_caps_deny(s->view, i), d, n))
			return false;
	return true;
}

int nono_sup_meta_verdict(struct nono_supervisor *s, const char *canon, unsigned need,
			  const char **why)
{
	const char *slash = canon[0] == '/' ? strrchr(canon, '/') : NULL;
	size_t n = slash ? (size_t)(slash - canon) : 0;
	for (size_t i = 0; slash && i < N_ELEMENTS(s->memo); i++) {
		const struct meta_memo *e = &s->memo[i];
		if (e->dir && e->need == need && e->len == n && !memcmp(e->dir, canon, n)) {
			*why = e->why;
			return e->verdict;
		}
	}
	int v = verdict(s, canon, need, why);
	if (!slash || !dir_memoizable(s, canon, n))
		return v;
	struct meta_memo *e = &s->memo[s->memo_next++ % N_ELEMENTS(s->memo)];
	char *d = strndup(canon, n);
	if (!d)
		return v; /* no memo, same verdict */
	free(e->dir);
	*e = (struct meta_memo){.dir = d, .len = n, .need = need, .verdict = v, .why = *why};
	return v;
}

void nono_sup_memo_free(struct nono_supervisor *s)
{
	for (size_t i = 0; i < N_ELEMENTS(s->memo); i++) {
		free(s->memo[i].dir);
		s->memo[i].dir = NULL;
	}
}

/* ---- the real path of our object ---- */

/* "/proc/self/fd/N" into `buf` (32 bytes), without printf (a measurable part of a ~20 µs call). */
#define PROC_FD_PREFIX "/proc/self/fd/"
static void proc_fd_link(char *buf, int fd)
{
	char digits[12];
	size_t n = 0;
	unsigned v = (unsigned)fd;
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof digits);
	memcpy(buf, PROC_FD_PREFIX, sizeof PROC_FD_PREFIX - 1);
	for (size_t i = 0; i < n; i++)
		buf[sizeof PROC_FD_PREFIX - 1 + i] = digits[n - 1 - i];
	buf[sizeof PROC_FD_PREFIX - 1 + n] = '\0';
}

/* Our /proc/thread-self/fd, opened on first use by the thread that decides (in the helper process
 * too: it must name the fd table our fds live in). readlinkat on it skips walking /proc/self. */
static int fd_dir(struct nono_supervisor *s)
{
	if (!s->fd_dir_tried) { /* /proc/thread-self is 3.17: without it, readlink of the link */
		s->fd_dir = open("/proc/thread-self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
		s->fd_dir_tried = true;
	}
	return s->fd_dir;
}

int nono_sup_real_path(struct nono_supervisor *s, int fd, char proc[32], char *canon, size_t size)
{
	proc_fd_link(proc, fd);
	int dir = fd_dir(s);
	ssize_t n = dir >= 0 ? readlinkat(dir, proc + sizeof PROC_FD_PREFIX - 1, canon, size - 1)
			     : readlink(proc, canon, size - 1);
	if (n < 0 || (size_t)n >= size - 1)
		return n < 0 ? -errno : -ENAMETOOLONG;
	canon[n] = '\0';
	return 0;
}

int nono_sup_proc_at(struct nono_supervisor *s, const char *proc, const char **name)
{
	int dir = fd_dir(s);
	*name = dir >= 0 ? proc + sizeof PROC_FD_PREFIX - 1 : proc;
	return dir >= 0 ? dir : AT_FDCWD;
}

void nono_sup_fd_dir_close(struct nono_supervisor *s)
{
	if (s->fd_dir_tried && s->fd_dir >= 0)
		close(s->fd_dir);
	s->fd_dir_tried = false;
}
