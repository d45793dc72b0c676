/* snapshot.c — the snapshot store handle: open, baseline, incremental, load, verify. Layout and
 * manifest format: snapshot_store.c; restore: snapshot_restore.c. */
#include "snapshot_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

void nono_snap_options_init(nono_snap_options *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->exclusion.use_defaults = true;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int layout_init(nono_snap *s, const char *objects_dir, nono_error *err)
{
	if (mkdirat(s->dirfd, "snapshots", 0700) < 0 && errno != EEXIST)
		return nono_fail(err, -errno, "%s/snapshots: %s", s->dir, strerror(errno));
	char def[PATH_MAX];
	if (!objects_dir) {
		snprintf(def, sizeof def, "%s/objects", s->dir);
		objects_dir = def;
	}
	int rc = mkdir_p(objects_dir);
	if (rc < 0 || (s->objfd = open(objects_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return nono_fail(err, rc < 0 ? rc : -errno, "%s: %s", objects_dir,
				 strerror(rc < 0 ? -rc : errno));
	/* Created once: a store that has objects/ff has them all. */
	struct stat st;
	if (fstatat(s->objfd, "ff", &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	for (int i = -1; i < 256; i++) {
		char d[16];
		snprintf(d, sizeof d, i < 0 ? "tmp" : "%02x", i);
		if (mkdirat(s->objfd, d, 0700) < 0 && errno != EEXIST)
			return nono_fail(err, -errno, "%s/%s: %s", objects_dir, d, strerror(errno));
	}
	return 0;
}

/* The canonical form of a tracked path that does not exist (yet, or any more): its parent's
 * canonical path and its name. NULL (errno set) if the parent does not resolve either. */
static char *canon_missing(const char *path)
{
	char buf[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (snprintf(buf, sizeof buf, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".") >=
	    (int)sizeof buf || !*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		errno = ENOENT;
		return NULL;
	}
	cleanup_free char *dir = realpath(*buf ? buf : "/", NULL);
	char *out = NULL;
	if (dir && asprintf(&out, "%s/%s", strcmp(dir, "/") ? dir : "", name) < 0)
		out = NULL;
	return out;
}

/* Tracked path i: a directory (a tree) or a regular file; or, with *missing set, a path that does
 * not exist, allowed only as a file the latest snapshot tracks (checked by latest_roots_adopt). */
static int root_init(nono_snap *s, size_t i, const char *path, bool *missing, nono_error *err)
{
	struct stat st;
	*missing = false;
	if (!path)
		return nono_fail(err, -EINVAL, "(null): not a path");
	if (!(s->roots[i] = realpath(path, NULL))) {
		int e = errno;
		if (e != ENOENT || !(s->roots[i] = canon_missing(path)))
			return nono_fail(err, -e, "%s: %s", path, strerror(e));
		*missing = s->root_is_file[i] = true;
		return 0;
	}
	if (stat(s->roots[i], &st) < 0 || (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)))
		return nono_fail(err, -ENOTDIR, "%s: a tracked path must be a directory or a "
				 "regular file", s->roots[i]);
	s->root_is_file[i] = S_ISREG(st.st_mode);
	return 0;
}

static int roots_init(nono_snap *s, const char *const *tracked, size_t n, bool *missing,
		      nono_error *err)
{
	if (n == 0)
		return nono_fail(err, -EINVAL, "no tracked paths");
	if (!(s->roots = calloc(n + 1, sizeof *s->roots)) ||
	    !(s->root_is_file = calloc(n + 1, sizeof *s->root_is_file)))
		return nono_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++, s->n_roots++) {
		int rc = root_init(s, i, tracked[i], &missing[i], err);
		if (rc < 0)
			return rc;
		/* The store must not be inside what it records (a snapshot would store itself, and
		 * a restore would delete it), nor hold a tracked tree. */
		if (snap_path_under(s->dir, s->roots[i]) || snap_path_under(s->roots[i], s->dir))
			return nono_fail(err, -EINVAL, "the snapshot store %s and the tracked tree %s "
					 "overlap: keep the store outside every tracked tree",
					 s->dir, s->roots[i]);
		for (size_t j = 0; j < i; j++)
			if (snap_path_under(s->roots[i], s->roots[j]) ||
			    snap_path_under(s->roots[j], s->roots[i]))
				return nono_fail(err, -EINVAL, "tracked paths %s and %s overlap",
						 s->roots[j], s->roots[i]);
	}
	return 0;
}

/* A resumed store keeps the kind (tree or file) its latest snapshot gave each root, whatever is
 * there now. A tracked path that does not exist is accepted only as a file the latest snapshot
 * tracked (the command deleted it; a restore brings it back): a typo is not tracked as "absent". */
static int latest_roots_adopt(nono_snap *s, const bool *missing, nono_error *err)
{
	for (size_t i = 0; i < s->n_roots; i++) {
		bool known = false;
		for (size_t k = 0; s->latest && k < s->latest->n_roots && !known; k++) {
			if (strcmp(s->latest->roots[k], s->roots[i]) != 0)
				continue;
			known = true;
			s->root_is_file[i] = snap_root_is_file(s->latest, k);
		}
		if (missing[i] && (!known || !s->root_is_file[i]))
			return nono_fail(err, -ENOENT, "%s: %s", s->roots[i], strerror(ENOENT));
	}
	return 0;
}

static int opts_init(nono_snap *s, const nono_snap_options *o, nono_error *err)
{
	nono_snap_options def;
	if (!o) {
		nono_snap_options_init(&def);
		o = &def;
	}
	s->use_defaults = o->exclusion.use_defaults;
	s->use_gitignore = o->exclusion.use_gitignore;
	s->max_entries = o->max_entries ? o->max_entries : NONO_SNAP_DEFAULT_MAX_ENTRIES;
	s->max_bytes = o->max_bytes ? o->max_bytes : NONO_SNAP_DEFAULT_MAX_BYTES;
	s->progress = o->progress;
	s->progress_ctx = o->progress_ctx;
	s->excl_names = snap_strv_dup(o->exclusion.exclude_patterns);
	s->excl_globs = snap_strv_dup(o->exclusion.exclude_globs);
	s->force = snap_strv_dup(o->exclusion.force_include);
	if (!s->excl_names || !s->excl_globs || !s->force)
		return nono_fail(err, -ENOMEM, "out of memory");
	return 0;
}

int nono_snap_open(const char *session_dir, const char *const *tracked, size_t n,
		   const nono_snap_options *opts, nono_snap **out, nono_error *err)
{
	nono_error_clear(err);
	*out = NULL;
	if (!session_dir || !*session_dir)
		return nono_fail(err, -EINVAL, "no session directory");
	nono_snap *s = calloc(1, sizeof *s);
	if (!s)
		return nono_fail(err, -ENOMEM, "out of memory");
	s->dirfd = s->objfd = -1;
	int rc = mkdir_p(session_dir);
	if (rc < 0) {
		nono_fail(err, rc, "%s: %s", session_dir, strerror(-rc));
	} else if (!(s->dir = realpath(session_dir, NULL)) ||
		   (s->dirfd = open(s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = nono_fail(err, -errno, "%s: %s", session_dir, strerror(errno));
	}
	cleanup_free bool *missing = calloc(n + 1, sizeof *missing);
	if (rc == 0 && !missing)
		rc = nono_fail(err, -ENOMEM, "out of memory");
	if (rc == 0 && (rc = opts_init(s, opts, err)) == 0 &&
	    (rc = roots_init(s, tracked, n, missing, err)) == 0)
		rc = layout_init(s, opts ? opts->objects_dir : NULL, err);
	long latest = rc == 0 ? snap_manifest_latest(s) : -1;
	/* Parsed now, its Merkle root checked by the next snapshot alongside the walk (take). */
	if (latest >= 0 &&
	    (rc = snap_manifest_parse(s, (uint32_t)latest, false, &s->latest_paths, &s->latest,
				      err)) == 0)
		s->count = (uint32_t)latest + 1;
	if (rc == 0)
		rc = latest_roots_adopt(s, missing, err);
	if (rc < 0) {
		nono_snap_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void nono_snap_free(nono_snap *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->objfd >= 0)
		close(s->objfd);
	snap_manifest_free_arena(s->hint, &s->hint_paths);
	free(s->hint_dir);
	snap_mtree_free(&s->latest_tree);
	snap_mtree_free(&s->hint_tree);
	free(s->dir);
	nono_strv_free(s->roots);
	free(s->root_is_file);
	nono_strv_free(s->excl_names);
	nono_strv_free(s->excl_globs);
	nono_strv_free(s->force);
	snap_manifest_free_arena(s->latest, &s->latest_paths);
	free(s);
}

uint32_t nono_snap_count(const nono_snap *s)
{
	return s->count;
}

const char *nono_snap_session_dir(const nono_snap *s)
{
	return s->dir;
}

int64_t nono_snap_latest_root(const nono_snap *s, uint8_t root[32])
{
	if (!s->latest)
		return -ENOENT;
	memcpy(root, s->latest->merkle_root, 32);
	return s->latest->number;
}

/* Hash and store every file whose size, mtime, ctime or inode differ from `prev`'s record. */
static int store_changed(nono_snap *s, struct snap_vec *cur, const nono_snap_manifest *prev,
			 nono_error *err)
{
	struct snap_parent_cache pc = {.rootfd = -1, .fd = -1};
	size_t j = 0, done = 0;
	int rc = 0;
	for (size_t i = 0; i < cur->n && rc == 0; i++) {
		nono_snap_entry *e = &cur->v[i];
		const nono_snap_entry *p = NULL;
		while (prev && j < prev->n_entries && snap_entry_cmp(&prev->entries[j], e) < 0)
			j++;
		if (prev && j < prev->n_entries && snap_entry_cmp(&prev->entries[j], e) == 0)
			p = &prev->entries[j];
		if (e->type != NONO_SNAP_FILE)
			continue;
		if (p && snap_stat_same(e, p) && p->mode == e->mode) {
			memcpy(e->hash, p->hash, 32);
			continue;
		}
		const char *base;
		int dfd = snap_parent_get(&pc, s->roots, e, &base);
		if (dfd < 0)
			rc = nono_fail(err, dfd, "%s: %s", e->path, strerror(-dfd));
		else
			rc = snap_store_file(s, dfd, base, e, err);
		if (s->progress && (++done & 255) == 0)
			s->progress(s->progress_ctx, "hashing", i, cur->n);
	}
	snap_parent_close(&pc);
	return rc;
}

static int diff_add(nono_snap_change **c, size_t *n, size_t *cap, const nono_snap_entry *old,
		    const nono_snap_entry *new)
{
	const nono_snap_entry *e = new ? new : old;
	int64_t delta = (int64_t)(new ? new->size : 0) - (int64_t)(old ? old->size : 0);
	bool file = e->type == NONO_SNAP_FILE;
	if (!old)
		return snap_change_add(c, n, cap, e->path, NONO_SNAP_CREATED, e->type, file, delta);
	if (!new)
		return snap_change_add(c, n, cap, e->path, NONO_SNAP_DELETED, e->type, file, delta);
	if (old->type != new->type || (new->type != NONO_SNAP_DIR && memcmp(old->hash, new->hash, 32)))
		return snap_change_add(c, n, cap, e->path, NONO_SNAP_MODIFIED, e->type, file, delta);
	if (old->mode != new->mode)
		return snap_change_add(c, n, cap, e->path, NONO_SNAP_PERMISSIONS, e->type, false, 0);
	return 0;
}

int snap_diff_entries(const nono_snap_entry *a, size_t na, const nono_snap_entry *b, size_t nb,
			nono_snap_change **out, size_t *n_out)
{
	nono_snap_change *c = NULL;
	size_t n = 0, cap = 0, i = 0, j = 0;
	int rc = 0;
	while (rc == 0 && (i < na || j < nb)) {
		int cmp = i == na ? 1 : j == nb ? -1 : snap_entry_cmp(&a[i], &b[j]);
		if (cmp < 0)
			rc = diff_add(&c, &n, &cap, &a[i++], NULL);
		else if (cmp > 0)
			rc = diff_add(&c, &n, &cap, NULL, &b[j++]);
		else
			rc = diff_add(&c, &n, &cap, &a[i++], &b[j++]);
	}
	if (rc < 0) {
		nono_snap_changes_free(c, n);
		return rc;
	}
	*out = c;
	*n_out = n;
	return 0;
}

struct base_job {
	nono_snap *s;
	bool load_hint; /* else: check the latest manifest's root */
	int rc;
	nono_error err;
};

static void *base_main(void *arg)
{
	struct base_job *j = arg;
	nono_snap *s = j->s;
	j->rc = j->load_hint ? snap_hint_load(s, &j->err)
			     : snap_manifest_verify(s->latest, s->dir, &s->latest_tree, &j->err);
	return NULL;
}

/* Walk the trees while another thread gets the manifest the walk is compared with ready: it checks
 * the Merkle root of the latest one (parsed unverified by nono_snap_open), or reads and checks the
 * seeding session's (nono_snap_seed). The walk waits on the kernel, that work on the CPU, and
 * nothing from that manifest is trusted before its check passed. The thread only touches
 * s->latest_tree or s->hint*, which the walk does not read. */
static int walk_ready(nono_snap *s, struct snap_vec *cur, nono_error *err)
{
	struct base_job j = {.s = s, .load_hint = !s->latest};
	pthread_t t;
	bool need = s->latest ? !s->latest_checked : s->hint_pending;
	bool threaded = need && nono_thread_start(&t, NULL, base_main, &j) == 0;
	int rc = snap_walk(s, s->roots, s->root_is_file, s->n_roots, true, cur, err);
	if (threaded)
		pthread_join(t, NULL);
	else if (need)
		base_main(&j);
	if (need && j.rc < 0) {
		if (rc == 0 && err)
			*err = j.err;
		return rc < 0 ? rc : j.rc;
	}
	if (need && s->latest)
		s->latest_checked = true;
	return rc;
}

static int take(nono_snap *s, nono_snap_manifest **out, nono_snap_change **changes,
		size_t *n_changes, nono_error *err)
{
	struct snap_vec cur = {.arena_paths = true};
	struct snap_arena paths = {NULL}; /* m's, once it holds cur's entries */
	const nono_snap_manifest *prev = s->latest;
	struct snap_mtree *base_tree = prev ? &s->latest_tree : &s->hint_tree, tree = {0};
	/* Sized from the last snapshot (the seed's is not loaded yet): a hint, grown as needed. */
	if (prev && snap_vec_reserve(&cur, prev->n_entries + prev->n_entries / 16 + 64) < 0)
		return nono_fail(err, -ENOMEM, "out of memory");
	int rc = walk_ready(s, &cur, err);
	const nono_snap_manifest *base = prev ? prev : s->hint;
	/* A baseline seeded from another session (nono_snap_seed) trusts that session's hashes for
	 * files whose stat is unchanged: their objects are in the shared objects directory. */
	if (rc == 0)
		rc = store_changed(s, &cur, base, err);
	nono_snap_manifest *m = rc == 0 ? snap_manifest_from_vec(&cur, s->roots, s->root_is_file, s->n_roots) : NULL;
	if (rc == 0 && !m)
		rc = nono_fail(err, -ENOMEM, "out of memory");
	if (m) {
		paths = cur.arena;
		cur.arena.head = NULL;
	}
	snap_vec_clear(&cur);
	if (rc == 0) {
		m->number = s->count;
		m->parent = prev ? (int64_t)prev->number : -1;
		snap_timestamp(m->timestamp);
		/* Only what changed since base is hashed again (snapshot_merkle.c). */
		if ((rc = snap_mtree_build(&tree, m->entries, m->n_entries, base ? base_tree : NULL,
					   base ? base->entries : NULL, base ? base->n_entries : 0,
					   m->merkle_root)) < 0)
			nono_fail(err, rc, "hashing failed");
	}
	if (rc == 0 && changes)
		rc = snap_diff_entries(prev ? prev->entries : NULL, prev ? prev->n_entries : 0, m->entries,
				  m->n_entries, changes, n_changes);
	if (rc == 0 && (rc = snap_manifest_write(s, m, err)) < 0 && changes) {
		nono_snap_changes_free(*changes, *n_changes);
		*changes = NULL;
	}
	if (rc < 0) {
		if (rc == -ENOMEM)
			nono_fail(err, rc, "out of memory");
		snap_manifest_free_arena(m, &paths);
		snap_mtree_free(&tree);
		return rc;
	}
	snap_manifest_free_arena(s->latest, &s->latest_paths);
	s->latest = m;
	s->latest_paths = paths;
	snap_mtree_free(&s->latest_tree);
	s->latest_tree = tree;
	s->latest_checked = true; /* its root was computed from its entries just now */
	s->count++;
	/* The seed served the baseline: not kept for the process (`nono run` forks after this). */
	snap_manifest_free_arena(s->hint, &s->hint_paths);
	snap_mtree_free(&s->hint_tree);
	s->hint = NULL;
	if (out && !(*out = snap_manifest_clone(m)))
		return nono_fail(err, -ENOMEM, "out of memory");
	return 0;
}

int nono_snap_baseline(nono_snap *s, nono_snap_manifest **out, nono_error *err)
{
	nono_error_clear(err);
	if (s->count > 0)
		return nono_fail(err, -EEXIST, "%s already has a baseline snapshot", s->dir);
	return take(s, out, NULL, NULL, err);
}

int nono_snap_incremental(nono_snap *s, nono_snap_manifest **out, nono_snap_change **changes,
			  size_t *n_changes, nono_error *err)
{
	nono_error_clear(err);
	if (changes) {
		*changes = NULL;
		*n_changes = 0;
	}
	if (!s->latest)
		return nono_fail(err, -ENOENT, "no previous snapshot in %s: take the baseline first",
				 s->dir);
	return take(s, out, changes, n_changes, err);
}

int nono_snap_load_manifest(const nono_snap *s, uint32_t number, nono_snap_manifest **out,
			    nono_error *err)
{
	nono_error_clear(err);
	return snap_manifest_read(s, number, out, err);
}
