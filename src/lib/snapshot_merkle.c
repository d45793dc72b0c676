/* snapshot_merkle.c — the Merkle tree of a manifest, kept whole (every level) beside the manifest it
 * belongs to, so that the next snapshot recomputes only what changed: a leaf whose entry is the
 * same as before (path, type, mode, hash) is copied, and when the entries line up one for one
 * (nothing created or deleted) only the ancestors of changed leaves are hashed again. The root is
 * the one snap_merkle computes (snapshot_util.c describes leaves and nodes); on a tree of 20,000
 * files a full build is 40,000 SHA-256, an incremental one after ten changes about 150. */
#include "snapshot_int.h"

#include <string.h>

/* Nodes in levels 0..k for n leaves: level sizes n, ceil(n/2), ..., 1. */
static size_t tree_size(size_t n)
{
	size_t total = 0;
	for (; n > 1; n = (n + 1) / 2)
		total += n;
	return total + 1;
}

void snap_mtree_free(struct snap_mtree *t)
{
	free(t->node);
	t->node = NULL;
	t->n_leaves = 0;
}

static bool same_leaf(const nono_snap_entry *a, const nono_snap_entry *b)
{
	return a->type == b->type && a->mode == b->mode && !memcmp(a->hash, b->hash, 32) &&
	       !strcmp(a->path, b->path);
}

/* Leaves of e[0..n): copied from prev where the entry is the same leaf (both lists are sorted the
 * same way), else hashed; dirty[i] set for a hashed one. */
static int leaves(uint8_t (*out)[32], bool *dirty, const nono_snap_entry *e,
		  size_t n, const struct snap_mtree *prev, const nono_snap_entry *pe, size_t pn)
{
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		while (prev && j < pn && snap_entry_cmp(&pe[j], &e[i]) < 0)
			j++;
		if (prev && j < pn && same_leaf(&pe[j], &e[i])) {
			memcpy(out[i], prev->node[j], 32);
			dirty[i] = false;
			continue;
		}
		dirty[i] = true;
		int rc = snap_leaf_hash(&e[i], out[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The levels above the leaves. With `dirty` (the same positions as prev, whose nodes were copied
 * in), only nodes with a dirty child are hashed again; dirty marks propagate up. */
static int levels(uint8_t (*node)[32], size_t n, bool *dirty)
{
	static const unsigned char one = 1;
	uint8_t(*lv)[32] = node;
	while (n > 1) {
		size_t m = (n + 1) / 2;
		uint8_t(*up)[32] = lv + n;
		for (size_t i = 0, k = 0; i < n; i += 2, k++) {
			bool d = !dirty || dirty[i] || (i + 1 < n && dirty[i + 1]);
			if (dirty)
				dirty[k] = d; /* k <= i: read before written */
			if (!d)
				continue;
			if (i + 1 == n)
				memcpy(up[k], lv[i], 32);
			else if (snap_ctx_hash(&one, 1, lv[i], 32, lv[i + 1], 32, up[k]) < 0)
				return -EIO;
		}
		lv = up;
		n = m;
	}
	return 0;
}

/* Whether e[0..n) and pe[0..n) name the same paths in the same order (a leaf's position in the
 * tree is its index, so only then can prev's inner nodes be reused). */
static bool aligned(const nono_snap_entry *e, const nono_snap_entry *pe, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].type != pe[i].type || strcmp(e[i].path, pe[i].path) != 0)
			return false;
	return true;
}

int snap_mtree_build(struct snap_mtree *t, const nono_snap_entry *e, size_t n,
		     const struct snap_mtree *prev, const nono_snap_entry *pe, size_t pn,
		     uint8_t root[32])
{
	t->node = NULL;
	t->n_leaves = 0;
	if (prev && (!prev->node || prev->n_leaves != pn))
		prev = NULL;
	if (n == 0)
		return snap_sha256("", 0, root);
	size_t total = tree_size(n);
	bool reuse = prev && pn == n && aligned(e, pe, n);
	cleanup_free bool *dirty = malloc(n * sizeof *dirty);
	t->node = malloc(total * 32);
	int rc = !dirty || !t->node ? -ENOMEM : 0;
	if (rc == 0 && reuse)
		memcpy(t->node, prev->node, total * 32);
	if (rc == 0)
		rc = leaves(t->node, dirty, e, n, prev, pe, pn);
	if (rc == 0)
		rc = levels(t->node, n, reuse ? dirty : NULL);
	if (rc < 0) {
		snap_mtree_free(t);
		return rc;
	}
	t->n_leaves = n;
	memcpy(root, t->node[total - 1], 32);
	return 0;
}
