/* snapshot_verify.c — checking a whole store: every manifest parses and matches its Merkle root
 * (snap_manifest_read checks that), the parent chain holds, and every object named hashes to its
 * name (each distinct object read once). */
#include "snapshot_int.h"

#include <inttypes.h>
#include <string.h>

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static int check_objects(nono_snap *s, uint8_t (*h)[32], size_t n, nono_error *err)
{
	if (n > 1) /* h is NULL for a store with no file */
		qsort(h, n, 32, hash_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !memcmp(h[i - 1], h[i], 32))
			continue;
		char hex[65];
		nono_sha256_hex(h[i], hex);
		cleanup_fd int fd = snap_object_open(s, h[i]);
		uint8_t got[32];
		if (fd < 0)
			return nono_fail(err, -EBADMSG, "object %s is missing: %s", hex, strerror(-fd));
		int rc = snap_sha256_fd(fd, got);
		if (rc < 0)
			return nono_fail(err, rc, "object %s: %s", hex, strerror(-rc));
		if (memcmp(got, h[i], 32))
			return nono_fail(err, -EBADMSG, "object %s does not hash to its name (changed)",
					 hex);
		if (s->progress && (i & 255) == 0)
			s->progress(s->progress_ctx, "verifying", i, n);
	}
	return 0;
}

static int check_manifest(const nono_snap_manifest *m, uint32_t i, uint8_t (**h)[32], size_t *n,
			  size_t *cap, nono_error *err)
{
	if ((i == 0 && m->parent != -1) || (i > 0 && m->parent != (int64_t)i - 1))
		return nono_fail(err, -EBADMSG, "snapshot %" PRIu32 ": parent %" PRId64 " breaks the chain",
				 i, m->parent);
	for (size_t k = 0; k < m->n_entries; k++) {
		const nono_snap_entry *e = &m->entries[k];
		if (e->type == NONO_SNAP_SYMLINK) {
			uint8_t got[32];
			if (snap_sha256(e->target, strlen(e->target), got) < 0 || memcmp(got, e->hash, 32))
				return nono_fail(err, -EBADMSG, "snapshot %" PRIu32 ": %s: link hash "
						 "does not match its target", i, e->path);
			continue;
		}
		if (e->type != NONO_SNAP_FILE)
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			uint8_t(*nv)[32] = realloc(*h, nc * 32);
			if (!nv)
				return nono_fail(err, -ENOMEM, "out of memory");
			*h = nv;
			*cap = nc;
		}
		memcpy((*h)[(*n)++], e->hash, 32);
	}
	return 0;
}

int nono_snap_verify(nono_snap *s, nono_error *err)
{
	nono_error_clear(err);
	long latest = snap_manifest_latest(s);
	cleanup_free uint8_t(*h)[32] = NULL;
	size_t n = 0, cap = 0;
	for (long i = 0; i <= latest; i++) {
		nono_snap_manifest *m = NULL;
		int rc = snap_manifest_read(s, (uint32_t)i, &m, err);
		if (rc == -ENOENT)
			rc = nono_fail(err, -EBADMSG, "snapshot %ld is missing (the latest is %ld)", i,
				       latest);
		else if (rc == 0)
			rc = check_manifest(m, (uint32_t)i, &h, &n, &cap, err);
		else if (rc != -ENOMEM)
			rc = -EBADMSG;
		nono_snap_manifest_free(m);
		if (rc < 0)
			return rc;
	}
	return check_objects(s, h, n, err);
}
