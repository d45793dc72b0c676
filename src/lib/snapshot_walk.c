/* snapshot_walk.c — the walk of the tracked trees. Every directory is opened relative to its parent
 * with O_NOFOLLOW, every entry is lstat'ed (fstatat AT_SYMLINK_NOFOLLOW): a symlink is recorded as
 * a link and never followed, so nothing outside the tracked trees is read. */
#include "snapshot_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ctime_nsec of an entry whose stat is still to be taken; its ino holds, until then, the slot of
 * its directory's fd in walk.dirs. */
#define DEFERRED (-1L)
/* Directory fds held for the deferred stats at most: past this many they are taken and closed
 * (the walk also holds one fd per level of depth; RLIMIT_NOFILE is often 1024). */
#define HELD_DIRS 128

struct walk {
	const nono_snap *s;
	struct snap_vec *out;
	struct snap_rules rules;
	uint32_t root;
	const char *root_path;
	size_t root_len;
	bool limits;
	uint64_t bytes;
	nono_error *err;
	int dirs[HELD_DIRS]; /* directories with deferred entries, until flush_deferred */
	size_t n_dirs;
	size_t flushed;      /* entries before this index have their stat */
	unsigned flushes;    /* a slot taken before a flush is void */
};

static int flush_deferred(struct walk *w);

static void entry_stat(nono_snap_entry *e, const struct stat *st)
{
	e->mode = st->st_mode & 07777;
	e->size = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size;
	e->mtime_sec = st->st_mtim.tv_sec;
	e->mtime_nsec = st->st_mtim.tv_nsec;
	e->ctime_sec = st->st_ctim.tv_sec;
	e->ctime_nsec = st->st_ctim.tv_nsec;
	e->ino = st->st_ino;
	e->dev = st->st_dev;
}

bool snap_stat_same(const nono_snap_entry *a, const nono_snap_entry *b)
{
	return a->type == b->type && a->size == b->size && a->mtime_sec == b->mtime_sec &&
	       a->mtime_nsec == b->mtime_nsec && a->ctime_sec == b->ctime_sec &&
	       a->ctime_nsec == b->ctime_nsec && a->ino == b->ino && a->dev == b->dev;
}

static int limit_check(struct walk *w)
{
	const nono_snap *s = w->s;
	if (!w->limits)
		return 0;
	if (w->out->n > s->max_entries)
		return nono_fail(w->err, -EFBIG,
				 "the tracked trees hold more than max_entries=%llu entries: nothing was "
				 "stored; raise the limit or exclude more",
				 (unsigned long long)s->max_entries);
	if (w->bytes > s->max_bytes)
		return nono_fail(w->err, -EFBIG,
				 "the tracked trees hold more than max_bytes=%llu bytes (%llu counted so "
				 "far): nothing was stored; raise the limit or exclude more",
				 (unsigned long long)s->max_bytes, (unsigned long long)w->bytes);
	return 0;
}

static int walk_dir(struct walk *w, int dirfd, char *rel, size_t rel_len);

static int add_entry(struct walk *w, int dirfd, const char *name, const struct stat *st,
		     char *rel, size_t rel_len)
{
	nono_snap_entry *e;
	int rc = snap_vec_push(w->out, &e);
	if (rc < 0)
		return nono_fail(w->err, rc, "out of memory");
	size_t plen = w->root_len + 1 + rel_len;
	if (!(e->path = w->out->arena_paths ? snap_arena_alloc(&w->out->arena, plen + 1)
					    : malloc(plen + 1)))
		return nono_fail(w->err, -ENOMEM, "out of memory");
	memcpy(e->path, w->root_path, w->root_len);
	e->path[w->root_len] = '/';
	memcpy(e->path + w->root_len + 1, rel, rel_len + 1);
	e->rel_offset = (uint32_t)(w->root_len + 1);
	e->root_index = w->root;
	entry_stat(e, st);
	if (S_ISREG(st->st_mode)) {
		e->type = NONO_SNAP_FILE;
		w->bytes += (uint64_t)st->st_size;
	} else if (S_ISLNK(st->st_mode)) {
		e->type = NONO_SNAP_SYMLINK;
		char buf[PATH_MAX];
		ssize_t n = readlinkat(dirfd, name, buf, sizeof buf - 1);
		if (n < 0)
			return nono_fail(w->err, -errno, "%s: readlink: %s", e->path, strerror(errno));
		buf[n] = '\0';
		if (!(e->target = strdup(buf)))
			return nono_fail(w->err, -ENOMEM, "out of memory");
		e->size = (uint64_t)n;
		if ((rc = snap_sha256(buf, (size_t)n, e->hash)) < 0)
			return nono_fail(w->err, rc, "hashing failed");
	} else {
		e->type = NONO_SNAP_DIR;
	}
	if ((rc = limit_check(w)) < 0)
		return rc;
	if (w->s->progress && (w->out->n & 1023) == 0)
		w->s->progress(w->s->progress_ctx, "scanning", w->out->n, 0);
	return 0;
}

/* Enter the directory `name` of dirfd, whose relative path is rel (its entry was added). */
static int descend(struct walk *w, int dirfd, const char *name, char *rel, size_t rel_len)
{
	int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return nono_fail(w->err, -errno, "%s/%s: %s", w->root_path, rel, strerror(errno));
	return walk_dir(w, sub, rel, rel_len);
}

/* The slot in w->dirs of the directory open at dirfd, for its files' deferred stats: a dup of
 * dirfd, taken on first use and again after a flush (which closes them all). */
static int dir_slot(struct walk *w, int dirfd, const char *rel, long *slot, unsigned *gen)
{
	if (*slot >= 0 && *gen == w->flushes)
		return 0;
	int rc = w->n_dirs == HELD_DIRS ? flush_deferred(w) : 0;
	if (rc < 0)
		return rc;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return nono_fail(w->err, -errno, "%s/%s: %s", w->root_path, rel, strerror(errno));
	*slot = (long)w->n_dirs;
	w->dirs[w->n_dirs++] = fd;
	*gen = w->flushes;
	return 0;
}

/* A directory's names, read whole before any is recorded. A subdirectory is two items: its entry,
 * ordered by its name, and its descent, ordered by its name and a '/'. In that order the walk
 * emits entries in snap_entry_cmp's order (strcmp of the relative paths) without sorting the whole
 * walk: "a", "a.txt", "a/x" ('.' < '/'), which a depth-first walk in name order would not give. */
struct item {
	uint32_t name;  /* offset in dir_list.names */
	uint32_t len;
	int32_t st;     /* index in dir_list.stats; -1: a regular file, its stat deferred */
	bool descent;
};

struct dir_list {
	char *names;
	size_t names_len, names_cap;
	struct item *items;
	size_t n, cap;
	struct stat *stats;
	size_t n_stats, cap_stats;
};

static void dir_list_free(struct dir_list *l)
{
	free(l->names);
	free(l->items);
	free(l->stats);
}

/* The new size of an array of *cap elements that must hold more than n: doubled (from `first`)
 * as needed; 0 when it holds them already. */
static size_t grown(size_t cap, size_t n, size_t first)
{
	if (n < cap)
		return 0;
	size_t nc = cap ? cap * 2 : first;
	while (nc <= n)
		nc *= 2;
	return nc;
}

static int list_push(struct dir_list *l, const char *name, size_t nl, const struct stat *st)
{
	size_t ni = grown(l->cap, l->n + 1, 64), nn = grown(l->names_cap, l->names_len + nl + 1, 4096),
	       ns = st ? grown(l->cap_stats, l->n_stats, 8) : 0;
	struct item *items = ni ? realloc(l->items, ni * sizeof *items) : l->items;
	if (items && ni) {
		l->items = items;
		l->cap = ni;
	}
	char *names = nn ? realloc(l->names, nn) : l->names;
	if (names && nn) {
		l->names = names;
		l->names_cap = nn;
	}
	struct stat *stats = ns ? realloc(l->stats, ns * sizeof *stats) : l->stats;
	if (stats && ns) {
		l->stats = stats;
		l->cap_stats = ns;
	}
	if (!items || !names || (ns && !stats))
		return -ENOMEM;
	struct item it = {.name = (uint32_t)l->names_len, .len = (uint32_t)nl, .st = -1};
	memcpy(l->names + l->names_len, name, nl + 1);
	l->names_len += nl + 1;
	if (st) {
		it.st = (int32_t)l->n_stats;
		l->stats[l->n_stats++] = *st;
	}
	l->items[l->n++] = it;
	if (st && S_ISDIR(st->st_mode)) {
		it.descent = true;
		l->items[l->n++] = it;
	}
	return 0;
}

/* strcmp of the items' keys: the name, and a '/' after a descent's. */
static int item_cmp(const void *pa, const void *pb, void *names)
{
	const struct item *a = pa, *b = pb;
	const unsigned char *x = (const unsigned char *)names + a->name,
			    *y = (const unsigned char *)names + b->name;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(x, y, n);
	if (c)
		return c;
	for (size_t i = n;; i++) { /* one key is a prefix of the other */
		int ca = i < a->len ? x[i] : i == a->len && a->descent ? '/' : -1;
		int cb = i < b->len ? y[i] : i == b->len && b->descent ? '/' : -1;
		if (ca != cb || ca < 0)
			return ca - cb;
	}
}

/* Read the directory's names into l, lstat'ing all but the regular files (deferred), sorted. */
static int read_dir(struct walk *w, DIR *d, int dirfd, const char *rel, struct dir_list *l)
{
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		const char *name = de->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		struct stat st;
		if (de->d_type != DT_REG && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue; /* gone since readdir */
			return nono_fail(w->err, -errno, "%s/%s/%s: %s", w->root_path, rel, name,
					 strerror(errno));
		}
		if (de->d_type != DT_REG && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) &&
		    !S_ISLNK(st.st_mode))
			continue;
		if (list_push(l, name, strlen(name), de->d_type == DT_REG ? NULL : &st) < 0)
			return nono_fail(w->err, -ENOMEM, "out of memory");
	}
	if (errno)
		return nono_fail(w->err, -errno, "%s/%s: readdir: %s", w->root_path, rel, strerror(errno));
	if (l->n > 1) /* an empty directory has no items array */
		qsort_r(l->items, l->n, sizeof *l->items, item_cmp, l->names);
	return 0;
}

/* Record item it of directory dirfd (rel: its path, already extended), or enter it. */
static int walk_item(struct walk *w, int dirfd, const struct dir_list *l, const struct item *it,
		     char *rel, size_t len, long *slot, unsigned *gen)
{
	const char *name = l->names + it->name;
	struct stat st;
	int rc;
	if (it->descent)
		return snap_excluded(w->s, &w->rules, name, rel, true) ? 0
								     : descend(w, dirfd, name, rel, len);
	if (it->st >= 0) {
		st = l->stats[it->st];
	} else {
		/* Regular files are stat'ed later relative to their directory, in two threads
		 * (flush_deferred). */
		if ((rc = dir_slot(w, dirfd, rel, slot, gen)) < 0)
			return rc;
		memset(&st, 0, sizeof st);
		st.st_mode = S_IFREG;
		st.st_ino = (ino_t)*slot;
		st.st_ctim.tv_nsec = DEFERRED;
	}
	if (snap_excluded(w->s, &w->rules, name, rel, S_ISDIR(st.st_mode)))
		return 0;
	return add_entry(w, dirfd, name, &st, rel, len);
}

/* Walk the directory open at dirfd (ownership taken), whose path relative to the root is rel
 * (a PATH_MAX buffer, extended in place and restored). */
static int walk_dir(struct walk *w, int dirfd, char *rel, size_t rel_len)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		int e = errno;
		close(dirfd);
		return nono_fail(w->err, -e, "%s/%s: %s", w->root_path, rel, strerror(e));
	}
	size_t rules_mark = w->rules.n;
	int rc = w->s->use_gitignore ? snap_rules_load(&w->rules, dirfd, rel) : 0;
	long slot = -1; /* dir_slot */
	unsigned slot_gen = 0;
	struct dir_list l = {0};
	if (rc == 0)
		rc = read_dir(w, d, dirfd, rel, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		const struct item *it = &l.items[i];
		size_t len = rel_len + (rel_len ? 1 : 0) + it->len;
		if (len >= PATH_MAX) {
			rc = nono_fail(w->err, -ENAMETOOLONG, "%s/%s/%s: path too long", w->root_path,
				       rel, l.names + it->name);
			break;
		}
		if (rel_len)
			rel[rel_len] = '/';
		memcpy(rel + rel_len + (rel_len ? 1 : 0), l.names + it->name, it->len + 1);
		rc = walk_item(w, dirfd, &l, it, rel, len, &slot, &slot_gen);
		rel[rel_len] = '\0';
	}
	dir_list_free(&l);
	snap_rules_truncate(&w->rules, rules_mark);
	closedir(d);
	return rc;
}

struct stat_job {
	nono_snap_entry *v;
	const int *dirs;
	size_t from, to;
	int err;
};

/* lstat each deferred entry relative to its directory's fd (opened by the walk with O_NOFOLLOW,
 * so no symlink is followed on the way). An entry gone, or no longer a regular file, is dropped
 * (ctime_nsec = -2). */
static void *stat_range(void *arg)
{
	struct stat_job *j = arg;
	for (size_t i = j->from; i < j->to; i++) {
		nono_snap_entry *e = &j->v[i];
		struct stat st;
		if (e->ctime_nsec != DEFERRED)
			continue;
		int r = fstatat(j->dirs[e->ino], strrchr(e->path, '/') + 1, &st, AT_SYMLINK_NOFOLLOW);
		if (r == 0 && S_ISREG(st.st_mode))
			entry_stat(e, &st);
		else if (r == 0 || errno == ENOENT || errno == ENOTDIR)
			e->ctime_nsec = -2;
		else if (!j->err)
			j->err = -errno;
	}
	return NULL;
}

/* Take the deferred stats of entries [w->flushed, n) in two streams (git's status does the same:
 * core.preloadIndex; on a warm cache a walk is mostly these calls), then close the held directory
 * fds. Entries are only appended meanwhile, so their indices hold. */
static int flush_deferred(struct walk *w)
{
	struct snap_vec *v = w->out;
	size_t from = w->flushed, mid = from + (v->n - from) / 2;
	struct stat_job jobs[2] = {{v->v, w->dirs, from, mid, 0}, {v->v, w->dirs, mid, v->n, 0}};
	pthread_t t;
	bool threaded = v->n - from >= 2048 && nono_thread_start(&t, NULL, stat_range, &jobs[1]) == 0;
	stat_range(&jobs[0]);
	if (threaded)
		pthread_join(t, NULL);
	else
		stat_range(&jobs[1]);
	for (size_t i = 0; i < w->n_dirs; i++)
		close(w->dirs[i]);
	w->n_dirs = 0;
	w->flushed = v->n;
	w->flushes++;
	int rc = jobs[0].err ? jobs[0].err : jobs[1].err;
	if (rc < 0)
		return nono_fail(w->err, rc, "stat in %s: %s", w->root_path, strerror(-rc));
	return 0;
}

/* Drop the entries found gone by flush_deferred and recount the bytes. */
static int stat_deferred(struct walk *w)
{
	struct snap_vec *v = w->out;
	int rc = flush_deferred(w);
	if (rc < 0)
		return rc;
	size_t k = 0;
	w->bytes = 0;
	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i].ctime_nsec == -2) {
			snap_vec_drop(v, &v->v[i]);
			continue;
		}
		if (v->v[i].type == NONO_SNAP_FILE)
			w->bytes += v->v[i].size;
		v->v[k++] = v->v[i];
	}
	v->n = k;
	return limit_check(w);
}

/* A tracked file: the one entry named by the root, from its parent directory (never followed: a
 * symlink there is recorded as a link; a directory there as a directory, not entered). */
static int walk_file_root(struct walk *w, const char *root)
{
	const char *slash = strrchr(root, '/');
	size_t dl = (size_t)(slash - root);
	char dir[PATH_MAX], rel[PATH_MAX];
	if (!slash || dl >= sizeof dir || strlen(slash + 1) >= sizeof rel || !slash[1])
		return nono_fail(w->err, -EINVAL, "%s: not a canonical file path", root);
	memcpy(dir, root, dl);
	dir[dl] = '\0';
	strcpy(rel, slash + 1);
	cleanup_fd int fd = open(dl ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return nono_fail(w->err, -errno, "%s: %s", dl ? dir : "/", strerror(errno));
	if (fstatat(fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : nono_fail(w->err, -errno, "%s: %s", root, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0;
	w->root_path = root;
	w->root_len = dl;
	return add_entry(w, fd, rel, &st, rel, strlen(rel)); /* never entered: add_entry only records */
}

int snap_walk(const nono_snap *s, char *const *roots, const bool *is_file, size_t n,
	      bool enforce_limits, struct snap_vec *out, nono_error *err)
{
	struct walk w = {.s = s, .out = out, .limits = enforce_limits, .err = err};
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		w.root = (uint32_t)i;
		if (is_file && is_file[i]) {
			rc = walk_file_root(&w, roots[i]);
			continue;
		}
		int fd = open(roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			rc = nono_fail(err, -errno, "%s: %s", roots[i], strerror(errno));
			break;
		}
		char rel[PATH_MAX] = "";
		w.root_path = roots[i];
		w.root_len = strlen(roots[i]);
		if (w.root_len == 1) /* "/": entries are "/x", not "//x" */
			w.root_len = 0;
		rc = walk_dir(&w, fd, rel, 0);
	}
	snap_rules_free(&w.rules);
	if (rc == 0)
		rc = stat_deferred(&w);
	for (size_t i = 0; i < w.n_dirs; i++) /* after an error */
		close(w.dirs[i]);
	/* The walk emits entries in order (walk_dir); the check costs a strcmp an entry, the sort it
	 * guards against a mistake there was a tenth of `nono run --rollback`'s CPU. */
	if (rc == 0 && !snap_vec_sorted(out))
		snap_vec_sort(out);
	return rc;
}

int snap_open_parent(int rootfd, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	*base = slash ? slash + 1 : rel;
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	const char *p = rel;
	while (slash && p < slash) {
		const char *q = strchr(p, '/');
		char comp[NAME_MAX + 1];
		size_t l = (size_t)(q - p);
		if (l == 0 || l > NAME_MAX) {
			close(fd);
			return -EINVAL;
		}
		memcpy(comp, p, l);
		comp[l] = '\0';
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (next < 0)
			return -e;
		fd = next;
		p = q + 1;
	}
	return fd;
}

/* The parent directory of entries, opened safely once per directory (entries are sorted, so a
 * directory's files are mostly consecutive). */
void snap_parent_close(struct snap_parent_cache *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->rootfd >= 0)
		close(c->rootfd);
	c->fd = c->rootfd = -1;
}

int snap_parent_get(struct snap_parent_cache *c, char *const *roots, const nono_snap_entry *e,
		      const char **base)
{
	(void)roots;
	const char *rel = e->path + e->rel_offset, *slash = strrchr(rel, '/');
	size_t dl = slash ? (size_t)(slash - rel) : 0;
	*base = slash ? slash + 1 : rel;
	if (c->fd >= 0 && c->root == e->root_index && strlen(c->rel) == dl && !strncmp(c->rel, rel, dl))
		return c->fd;
	if (c->rootfd < 0 || c->root != e->root_index) {
		snap_parent_close(c);
		char dir[PATH_MAX];
		size_t rl = e->rel_offset > 1 ? e->rel_offset - 1 : 0;
		if (rl >= sizeof dir)
			return -ENAMETOOLONG;
		memcpy(dir, e->path, rl);
		dir[rl] = '\0';
		c->rootfd = open(rl ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->rootfd < 0)
			return -errno;
		c->root = e->root_index;
	}
	if (c->fd >= 0)
		close(c->fd);
	const char *b;
	c->fd = snap_open_parent(c->rootfd, rel, &b);
	if (c->fd < 0)
		return c->fd;
	memcpy(c->rel, rel, dl);
	c->rel[dl] = '\0';
	return c->fd;
}
