/* snapshot_share.c — sessions that share one objects directory: seeding a baseline from another
 * session's latest snapshot (so an unchanged tree is neither read nor copied again), and deleting
 * the objects no session names any more. */
#include "snapshot_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* A read-only view of another session directory, enough for snap_manifest_read/latest. */
static int peer_open(const char *dir, nono_snap *o, nono_error *err)
{
	memset(o, 0, sizeof *o);
	o->dirfd = o->objfd = -1;
	if (!(o->dir = realpath(dir, NULL)) ||
	    (o->dirfd = open(o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return nono_fail(err, -errno, "%s: %s", dir, strerror(errno));
	return 0;
}

static void peer_close(nono_snap *o)
{
	if (o->dirfd >= 0)
		close(o->dirfd);
	free(o->dir);
}

static bool same_roots(const nono_snap_manifest *m, const nono_snap *s)
{
	if (m->n_roots != s->n_roots)
		return false;
	for (size_t i = 0; i < m->n_roots; i++)
		if (strcmp(m->roots[i], s->roots[i]) != 0 || snap_root_is_file(m, i) != s->root_is_file[i])
			return false;
	return true;
}

int nono_snap_seed(nono_snap *s, const char *other_session_dir, nono_error *err)
{
	nono_error_clear(err);
	nono_snap o;
	int rc = peer_open(other_session_dir, &o, err);
	long latest = rc == 0 ? snap_manifest_latest(&o) : -1;
	/* Only noted here: the baseline reads and checks it alongside its walk (snap_hint_load). */
	char *dir = latest >= 0 ? strdup(o.dir) : NULL;
	if (latest >= 0 && !dir) {
		rc = nono_fail(err, -ENOMEM, "out of memory");
	} else if (dir) {
		snap_manifest_free_arena(s->hint, &s->hint_paths);
		snap_mtree_free(&s->hint_tree);
		free(s->hint_dir);
		s->hint = NULL;
		s->hint_dir = dir;
		s->hint_number = (uint32_t)latest;
		s->hint_pending = true;
	}
	peer_close(&o);
	return rc;
}

int snap_hint_load(nono_snap *s, nono_error *err)
{
	nono_snap o;
	nono_snap_manifest *m = NULL;
	struct snap_arena paths = {NULL};
	s->hint_pending = false;
	int rc = peer_open(s->hint_dir, &o, err);
	if (rc == 0)
		rc = snap_manifest_parse(&o, s->hint_number, false, &paths, &m, err);
	if (rc == -ENOENT)
		rc = 0; /* cleaned up since nono_snap_seed: nothing to seed from */
	if (rc == 0 && m && same_roots(m, s) &&
	    (rc = snap_manifest_verify(m, o.dir, &s->hint_tree, err)) == 0) {
		s->hint = m;
		s->hint_paths = paths;
		paths.head = NULL;
		m = NULL;
	}
	snap_manifest_free_arena(m, &paths);
	peer_close(&o);
	return rc;
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

struct hashes {
	uint8_t (*v)[32];
	size_t n, cap;
};

static int collect(const char *dir, struct hashes *h, nono_error *err)
{
	nono_snap o;
	int rc = peer_open(dir, &o, err);
	long latest = rc == 0 ? snap_manifest_latest(&o) : -1;
	for (long i = 0; rc == 0 && i <= latest; i++) {
		nono_snap_manifest *m = NULL;
		if ((rc = snap_manifest_read(&o, (uint32_t)i, &m, err)) < 0)
			break;
		for (size_t k = 0; k < m->n_entries && rc == 0; k++) {
			if (m->entries[k].type != NONO_SNAP_FILE)
				continue;
			if (h->n == h->cap) {
				size_t nc = h->cap ? h->cap * 2 : 4096;
				uint8_t(*nv)[32] = realloc(h->v, nc * 32);
				if (!nv) {
					rc = nono_fail(err, -ENOMEM, "out of memory");
					break;
				}
				h->v = nv;
				h->cap = nc;
			}
			memcpy(h->v[h->n++], m->entries[k].hash, 32);
		}
		nono_snap_manifest_free(m);
	}
	peer_close(&o);
	return rc;
}

/* Delete the unreferenced objects of one fan-out directory ("ab"), and everything in "tmp". */
static uint64_t sweep(int objfd, const char *sub, const struct hashes *h)
{
	int fd = openat(objfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint64_t removed = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char hex[65];
		uint8_t hash[32];
		bool keep = false;
		if (strcmp(sub, "tmp") != 0 && strlen(de->d_name) == 62) {
			memcpy(hex, sub, 2);
			memcpy(hex + 2, de->d_name, 63);
			keep = snap_hex_parse(hex, hash) < 0 ||
			       (h->n && bsearch(hash, h->v, h->n, 32, hash_cmp));
		}
		if (!keep && unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int nono_snap_gc(const char *objects_dir, const char *const *session_dirs, size_t n,
		 uint64_t *removed, nono_error *err)
{
	nono_error_clear(err);
	struct hashes h = {0};
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = collect(session_dirs[i], &h, err);
	cleanup_fd int objfd = rc == 0 ? open(objects_dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (rc == 0 && objfd < 0)
		rc = nono_fail(err, -errno, "%s: %s", objects_dir, strerror(errno));
	uint64_t count = 0;
	if (rc == 0) {
		if (h.n)
			qsort(h.v, h.n, 32, hash_cmp);
		for (int i = -1; i < 256; i++) {
			char sub[8];
			snprintf(sub, sizeof sub, i < 0 ? "tmp" : "%02x", i);
			count += sweep(objfd, sub, &h);
		}
	}
	free(h.v);
	if (removed)
		*removed = count;
	return rc;
}
