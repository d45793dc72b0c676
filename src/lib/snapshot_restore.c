/* snapshot_restore.c — bringing the tracked trees back to a snapshot, and its dry run.
 *
 * The trees are walked as they are now (never following a symlink), each file compared with the
 * snapshot (re-hashed only when its size, mtime, ctime or inode differ from what the snapshot
 * recorded), then: entries that are not in the snapshot, or are of another type, are deleted,
 * deepest first; entries of the snapshot that are missing or differ are written beside their
 * target under a temporary name (SNAP_RESTORE_TMP) and renamed over it, parents first. Every
 * directory on the way is opened component by component with O_NOFOLLOW, so a symlink planted in
 * the tree is deleted like any entry created since, and never written through. A restore killed
 * at any point leaves each file either old or new (rename is atomic), and a temporary at most,
 * which the next restore deletes: running it again finishes the job. */
#include "snapshot_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct restore {
	nono_snap *s;
	nono_snap_manifest *m;  /* the target */
	struct snap_vec cur;    /* the trees now */
	ssize_t *match;         /* cur index -> m index, -1 when not in m */
	bool *keep;             /* m index: already as in the snapshot */
	nono_error *err;
};

static void restore_clear(struct restore *r)
{
	nono_snap_manifest_free(r->m);
	snap_vec_clear(&r->cur);
	free(r->match);
	free(r->keep);
}

/* Content hash of current file e, by reading it (only when its stat differs from the record). */
static int hash_current(struct snap_parent_cache *pc, char *const *roots, nono_snap_entry *e)
{
	const char *base;
	int dfd = snap_parent_get(pc, roots, e, &base);
	if (dfd < 0)
		return dfd;
	cleanup_fd int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return snap_sha256_fd(fd, e->hash);
}

static int restore_scan(struct restore *r)
{
	nono_snap_manifest *m = r->m;
	int rc = snap_walk(r->s, m->roots, m->root_is_file, m->n_roots, false, &r->cur, r->err);
	if (rc < 0)
		return rc;
	r->match = calloc(r->cur.n + 1, sizeof *r->match);
	r->keep = calloc(m->n_entries + 1, sizeof *r->keep);
	if (!r->match || !r->keep)
		return nono_fail(r->err, -ENOMEM, "out of memory");
	struct snap_parent_cache pc = {.rootfd = -1, .fd = -1};
	size_t j = 0;
	for (size_t i = 0; i < r->cur.n && rc == 0; i++) {
		nono_snap_entry *e = &r->cur.v[i];
		while (j < m->n_entries && snap_entry_cmp(&m->entries[j], e) < 0)
			j++;
		bool same = j < m->n_entries && snap_entry_cmp(&m->entries[j], e) == 0;
		r->match[i] = same ? (ssize_t)j : -1;
		if (!same || m->entries[j].type != e->type)
			continue;
		const nono_snap_entry *t = &m->entries[j];
		if (e->type == NONO_SNAP_FILE) {
			if (snap_stat_same(e, t))
				memcpy(e->hash, t->hash, 32);
			else if ((rc = hash_current(&pc, m->roots, e)) < 0)
				rc = nono_fail(r->err, rc, "%s: %s", e->path, strerror(-rc));
		}
		r->keep[j] = rc == 0 && e->mode == t->mode &&
			     (e->type == NONO_SNAP_DIR || !memcmp(e->hash, t->hash, 32));
	}
	snap_parent_close(&pc);
	return rc;
}

static int delete_extra(struct restore *r)
{
	struct snap_parent_cache pc = {.rootfd = -1, .fd = -1};
	int rc = 0;
	for (size_t i = r->cur.n; i-- > 0 && rc == 0;) {
		const nono_snap_entry *e = &r->cur.v[i];
		ssize_t j = r->match[i];
		if (j >= 0 && r->m->entries[j].type == e->type)
			continue;
		const char *base;
		int dfd = snap_parent_get(&pc, r->m->roots, e, &base);
		if (dfd == -ENOENT)
			continue; /* its directory went with an earlier deletion */
		if (dfd < 0) {
			rc = nono_fail(r->err, dfd, "%s: %s", e->path, strerror(-dfd));
			break;
		}
		if (unlinkat(dfd, base, e->type == NONO_SNAP_DIR ? AT_REMOVEDIR : 0) == 0 ||
		    errno == ENOENT)
			continue;
		/* A directory created since that holds excluded entries (a new node_modules, say)
		 * cannot go without deleting what was never tracked: refused, and said. */
		rc = nono_fail(r->err, -errno, "cannot delete %s: %s%s", e->path, strerror(errno),
			       errno == ENOTEMPTY ? " (it holds entries the snapshots exclude)" : "");
	}
	snap_parent_close(&pc);
	return rc;
}

static int write_entry(struct restore *r, int dfd, const char *base, const nono_snap_entry *t)
{
	static _Atomic unsigned long counter;
	char tmp[64];
	snprintf(tmp, sizeof tmp, SNAP_RESTORE_TMP "%d-%lu", (int)getpid(), ++counter);
	if (t->type == NONO_SNAP_SYMLINK) {
		if (symlinkat(t->target, dfd, tmp) < 0)
			return -errno;
	} else {
		cleanup_fd int fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
					   0600);
		if (fd < 0)
			return -errno;
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
					 {.tv_sec = t->mtime_sec, .tv_nsec = t->mtime_nsec}};
		int rc = snap_object_copy(r->s, t->hash, fd);
		if (rc == 0 && (fchmod(fd, t->mode) < 0 || futimens(fd, ts) < 0))
			rc = -errno;
		if (rc < 0) {
			unlinkat(dfd, tmp, 0);
			return rc;
		}
	}
	if (renameat(dfd, tmp, dfd, base) < 0) {
		int e = errno;
		unlinkat(dfd, tmp, 0);
		return -e;
	}
	return 0;
}

static int put_dir(int dfd, const char *base, uint32_t mode)
{
	if (mkdirat(dfd, base, 0700) < 0 && errno != EEXIST)
		return -errno;
	cleanup_fd int fd = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}

/* Directories get their modes last, deepest first: a read-only directory is filled before it
 * becomes read-only. */
static int dir_modes(struct restore *r)
{
	struct snap_parent_cache pc = {.rootfd = -1, .fd = -1};
	int rc = 0;
	for (size_t j = r->m->n_entries; j-- > 0 && rc == 0;) {
		const nono_snap_entry *t = &r->m->entries[j];
		if (r->keep[j] || t->type != NONO_SNAP_DIR)
			continue;
		const char *base;
		int dfd = snap_parent_get(&pc, r->m->roots, t, &base);
		if (dfd >= 0)
			dfd = put_dir(dfd, base, t->mode);
		if (dfd < 0)
			rc = nono_fail(r->err, dfd, "cannot restore %s: %s", t->path, strerror(-dfd));
	}
	snap_parent_close(&pc);
	return rc;
}

static int write_missing(struct restore *r)
{
	struct snap_parent_cache pc = {.rootfd = -1, .fd = -1};
	int rc = 0;
	uint64_t done = 0;
	for (size_t j = 0; j < r->m->n_entries && rc == 0; j++) {
		const nono_snap_entry *t = &r->m->entries[j];
		if (r->keep[j])
			continue;
		const char *base;
		int dfd = snap_parent_get(&pc, r->m->roots, t, &base);
		if (dfd >= 0)
			dfd = t->type == NONO_SNAP_DIR ? put_dir(dfd, base, t->mode | 0700)
							: write_entry(r, dfd, base, t);
		if (dfd < 0)
			rc = nono_fail(r->err, dfd, "cannot restore %s: %s", t->path, strerror(-dfd));
		if (r->s->progress && (++done & 63) == 0)
			r->s->progress(r->s->progress_ctx, "restoring", j, r->m->n_entries);
	}
	snap_parent_close(&pc);
	return rc;
}

static int journal(nono_snap *s, uint32_t number, bool begin)
{
	if (!begin)
		return unlinkat(s->dirfd, "restore.pending", 0) < 0 && errno != ENOENT ? -errno : 0;
	cleanup_fd int fd = openat(s->dirfd, "restore.pending",
				   O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	char buf[16];
	int n = snprintf(buf, sizeof buf, "%" PRIu32 "\n", number);
	return fd < 0 || write(fd, buf, (size_t)n) != n ? -errno : 0;
}

static int restore_run(nono_snap *s, uint32_t number, bool apply, nono_snap_change **changes,
		       size_t *n_changes, nono_error *err)
{
	nono_error_clear(err);
	nono_snap_change *c = NULL;
	size_t nc = 0;
	if (changes) {
		*changes = NULL;
		*n_changes = 0;
	}
	struct restore r = {.s = s, .err = err};
	int rc = snap_manifest_read(s, number, &r.m, err);
	if (rc == 0)
		rc = restore_scan(&r);
	if (rc == 0 && (rc = snap_diff_entries(r.cur.v, r.cur.n, r.m->entries, r.m->n_entries, &c,
					       &nc)) < 0)
		nono_fail(err, rc, "out of memory");
	if (rc == 0 && apply && nc > 0) {
		if ((rc = journal(s, number, true)) < 0)
			nono_fail(err, rc, "%s/restore.pending: %s", s->dir, strerror(-rc));
		if (rc == 0 && (rc = delete_extra(&r)) == 0 && (rc = write_missing(&r)) == 0 &&
		    (rc = dir_modes(&r)) == 0 &&
		    (rc = journal(s, number, false)) < 0)
			nono_fail(err, rc, "%s/restore.pending: %s", s->dir, strerror(-rc));
	}
	restore_clear(&r);
	if (rc < 0 || !changes) {
		nono_snap_changes_free(c, nc);
		return rc;
	}
	*changes = c;
	*n_changes = nc;
	return 0;
}

int nono_snap_restore_diff(nono_snap *s, uint32_t number, nono_snap_change **changes,
			   size_t *n_changes, nono_error *err)
{
	return restore_run(s, number, false, changes, n_changes, err);
}

int nono_snap_restore(nono_snap *s, uint32_t number, nono_snap_change **changes, size_t *n_changes,
		      nono_error *err)
{
	return restore_run(s, number, true, changes, n_changes, err);
}

long nono_snap_restore_pending(const nono_snap *s)
{
	cleanup_fd int fd = openat(s->dirfd, "restore.pending", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[16] = "";
	if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
		return -1;
	char *end;
	unsigned long n = strtoul(buf, &end, 10);
	return end == buf || n >= UINT32_MAX ? -1 : (long)n;
}
