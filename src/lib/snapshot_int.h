/* snapshot_int.h — shared by the snapshot store's modules; never installed.
 *
 *   snapshot_util.c     hashing (OpenSSL libcrypto), hex, path unescaping, Merkle root, vectors
 *   snapshot_match.c    exclusions: names, globs, force-includes, .gitignore
 *   snapshot_walk.c     the walk of the tracked trees (never follows a symlink)
 *   snapshot_store.c    objects and manifests on disk
 *   snapshot_bin.c      the manifest's binary format (version 2, written and read)
 *   snapshot_parse.c    reading a manifest back (and the text format, version 1)
 *   snapshot_verify.c   checking a whole store
 *   snapshot_share.c    sessions sharing one objects directory: seeding, garbage collection
 *   snapshot.c          the store handle: open, baseline, incremental, load, verify
 *   snapshot_restore.c  restore and its dry run
 */
#ifndef NONO_SNAPSHOT_INT_H
#define NONO_SNAPSHOT_INT_H

#include "internal.h"

#include <sys/stat.h>

/* Prefix of the temporaries a restore writes beside their targets. */
#define SNAP_RESTORE_TMP ".nono-restore-"

/* A block allocator for the paths of the store's own manifests (the latest snapshot, the seeding
 * session's): one malloc per 64 KiB of paths instead of one per path, and one free for all of them
 * (a malloc and a free per path were a twentieth of `nono run --rollback`'s CPU). */
struct snap_arena_chunk;
struct snap_arena {
	struct snap_arena_chunk *head;
};
/* n bytes from a (NULL on ENOMEM), valid until snap_arena_free. */
NONO_HIDDEN char *snap_arena_alloc(struct snap_arena *a, size_t n);
NONO_HIDDEN void snap_arena_free(struct snap_arena *a);

/* A growable vector of entries. With arena_paths, the entries' paths come from `arena` (never
 * freed one by one); their symlink targets are always their own allocations. */
struct snap_vec {
	nono_snap_entry *v;
	size_t n, cap;
	struct snap_arena arena;
	bool arena_paths;
};

struct snap_rule; /* one .gitignore line (snapshot_match.c) */
/* A manifest's whole Merkle tree (snapshot_merkle.c): levels from the leaves (n_leaves of them) up
 * to the root. */
struct snap_mtree {
	uint8_t (*node)[32];
	size_t n_leaves;
};

struct nono_snap {
	char *dir;          /* session directory, canonical */
	int dirfd;          /* O_PATH|O_DIRECTORY of it */
	int objfd;          /* O_PATH|O_DIRECTORY of the objects directory */
	nono_snap_manifest *hint; /* nono_snap_seed: another session's latest, for the baseline */
	char *hint_dir;           /* nono_snap_seed: the session to seed from */
	uint32_t hint_number;     /* its latest snapshot, read by snap_hint_load when hint_pending */
	bool hint_pending;
	bool latest_checked;      /* latest's Merkle root verified (deferred: snapshot.c take) */
	struct snap_mtree latest_tree, hint_tree; /* their Merkle trees, once built (else empty) */
	struct snap_arena latest_paths, hint_paths; /* the paths of latest's and hint's entries */
	size_t n_roots;
	char **roots;       /* canonical tracked paths */
	bool *root_is_file; /* n_roots: a tracked file rather than a tree */
	char **excl_names, **excl_globs, **force; /* owned NULL-terminated copies */
	bool use_defaults, use_gitignore;
	uint64_t max_entries, max_bytes;
	void (*progress)(void *ctx, const char *phase, uint64_t done, uint64_t total);
	void *progress_ctx;
	uint32_t count;
	nono_snap_manifest *latest; /* owned; NULL before the baseline */
};

/* ---- snapshot_util.c ---- */
NONO_HIDDEN int snap_sha256(const void *data, size_t len, uint8_t out[32]);
/* SHA-256 of everything readable from fd (from its current offset). */
NONO_HIDDEN int snap_sha256_fd(int fd, uint8_t out[32]);
NONO_HIDDEN int snap_hex_parse(const char *hex, uint8_t out[32]);
/* Undo the text manifest's %XX escapes in place (-EINVAL if malformed). */
NONO_HIDDEN int snap_unescape(char *s);
NONO_HIDDEN void snap_timestamp(char buf[32]);
NONO_HIDDEN int snap_merkle(const nono_snap_entry *e, size_t n, uint8_t root[32]);
/* The pieces of snap_merkle, for snapshot_merkle.c: one leaf, and one hash of up to three parts. */
NONO_HIDDEN int snap_leaf_hash(const nono_snap_entry *e, uint8_t out[32]);
NONO_HIDDEN int snap_ctx_hash(const void *a, size_t al, const void *b, size_t bl, const void *c,
			      size_t cl, uint8_t out[32]);

/* ---- snapshot_merkle.c ---- */
/* Build the tree of e[0..n) into *t (the root into root: snap_merkle's), reusing what prev, the
 * tree of pe[0..pn), already holds (prev may be NULL). *t is freed with snap_mtree_free; on error
 * it is empty. -ENOMEM, -EIO. */
NONO_HIDDEN int snap_mtree_build(struct snap_mtree *t, const nono_snap_entry *e, size_t n,
				 const struct snap_mtree *prev, const nono_snap_entry *pe,
				 size_t pn, uint8_t root[32]);
NONO_HIDDEN void snap_mtree_free(struct snap_mtree *t);
NONO_HIDDEN int snap_vec_push(struct snap_vec *v, nono_snap_entry **out);
/* Room for cap entries in v without growing it again (a vector that grows by doubling is copied
 * and faulted in again at every step: 20,000 entries are 2.5 MiB). */
NONO_HIDDEN int snap_vec_reserve(struct snap_vec *v, size_t cap);
NONO_HIDDEN void snap_entry_clear(nono_snap_entry *e);
/* Free what entry e of v owns (its path, unless v's arena holds it). */
NONO_HIDDEN void snap_vec_drop(struct snap_vec *v, nono_snap_entry *e);
/* A manifest whose paths live in *paths (snap_manifest_parse with an arena, or a snapshot's
 * walk): freed with the arena. NULL paths: nono_snap_manifest_free. */
NONO_HIDDEN void snap_manifest_free_arena(nono_snap_manifest *m, struct snap_arena *paths);
NONO_HIDDEN void snap_vec_clear(struct snap_vec *v);
/* Order of entries everywhere: by root index, then relative path (strcmp: a parent precedes its
 * children). */
NONO_HIDDEN int snap_entry_cmp(const nono_snap_entry *a, const nono_snap_entry *b);
NONO_HIDDEN void snap_vec_sort(struct snap_vec *v);
/* Whether v is strictly in snap_entry_cmp's order. */
NONO_HIDDEN bool snap_vec_sorted(const struct snap_vec *v);
NONO_HIDDEN int snap_change_add(nono_snap_change **c, size_t *n, size_t *cap, const char *path,
				nono_snap_change_type t, nono_snap_type et, bool has_delta, int64_t delta);
/* Copy a NULL-terminated vector (NULL stays an empty vector). NULL on ENOMEM. */
NONO_HIDDEN char **snap_strv_dup(const char *const *v);
/* Take v's entries into a new manifest with copies of roots[0..n_roots) and is_file (NULL: every
 * root a tree). NULL on ENOMEM (v untouched). v's arena stays in v: the caller moves it along. */
NONO_HIDDEN nono_snap_manifest *snap_manifest_from_vec(struct snap_vec *v, char **roots,
						       const bool *is_file, size_t n_roots);
/* Whether root i of m is a tracked file. */
static inline bool snap_root_is_file(const nono_snap_manifest *m, size_t i)
{
	return m->root_is_file && m->root_is_file[i];
}
NONO_HIDDEN bool snap_path_under(const char *path, const char *dir);
NONO_HIDDEN nono_snap_manifest *snap_manifest_clone(const nono_snap_manifest *m);

/* ---- snapshot.c ---- */
/* What changed from entries a to entries b (both sorted): created = in b only, deleted = in a only,
 * modified = type or content differs, permissions_changed = mode only. */
NONO_HIDDEN int snap_diff_entries(const nono_snap_entry *a, size_t na, const nono_snap_entry *b,
				  size_t nb, nono_snap_change **out, size_t *n_out);

/* ---- snapshot_match.c ---- */
struct snap_rules {
	struct snap_rule *v;
	size_t n, cap;
};
/* Glob match: `*` and `?` stop at '/', `**` does not, [..] classes, backslash escapes. */
NONO_HIDDEN bool snap_glob(const char *pat, const char *s);
/* Read dirfd's .gitignore (if any) and append its rules, based at `rel` ("" for the root). */
NONO_HIDDEN int snap_rules_load(struct snap_rules *r, int dirfd, const char *rel);
NONO_HIDDEN void snap_rules_truncate(struct snap_rules *r, size_t n);
NONO_HIDDEN void snap_rules_free(struct snap_rules *r);
/* Whether the entry `name` at `rel` (relative to its root) is left out. */
NONO_HIDDEN bool snap_excluded(const nono_snap *s, const struct snap_rules *r, const char *name,
			       const char *rel, bool is_dir);

/* ---- snapshot_walk.c ---- */
/* Walk roots[0..n) (lstat only, no hashing): every directory, regular file and symlink that is not
 * excluded, sorted. Other file types (sockets, fifos, devices) are not tracked. A root with
 * is_file[i] (is_file may be NULL) is one entry at most: the root itself, never entered nor
 * followed, none if it does not exist. -EFBIG past the store's limits (enforce_limits), with the
 * message. */
NONO_HIDDEN int snap_walk(const nono_snap *s, char *const *roots, const bool *is_file, size_t n,
			  bool enforce_limits, struct snap_vec *out, nono_error *err);
/* Whether a stat result still matches what the entry recorded (type, size, mtime, ctime, inode). */
NONO_HIDDEN bool snap_stat_same(const nono_snap_entry *a, const nono_snap_entry *b);
/* Open the directory holding `rel` below the root directory fd, one component at a time with
 * O_NOFOLLOW (a symlink anywhere on the way is -ELOOP/-ENOTDIR). *base: the last component. */
NONO_HIDDEN int snap_open_parent(int rootfd, const char *rel, const char **base);
/* The parent directory of entries, opened with snap_open_parent once per directory (entries are
 * sorted, so a directory's files are mostly consecutive). Start with {.rootfd = -1, .fd = -1}. */
struct snap_parent_cache {
	int rootfd;
	uint32_t root;
	int fd;
	char rel[4096];
};
/* The directory holding e (borrowed fd, valid until the next call), or -errno. The root's
 * directory is e->path up to e->rel_offset (a tracked tree, or a tracked file's parent). */
NONO_HIDDEN int snap_parent_get(struct snap_parent_cache *c, char *const *roots,
				const nono_snap_entry *e, const char **base);
NONO_HIDDEN void snap_parent_close(struct snap_parent_cache *c);

/* ---- snapshot_store.c (objects, manifest writing), snapshot_parse.c (manifest reading) ---- */
/* Store the contents of regular file `name` in dirfd as an object; e->hash gets its SHA-256. The
 * object is a private copy, hashed after copying, so it always matches its name. */
NONO_HIDDEN int snap_store_file(const nono_snap *s, int dirfd, const char *name, nono_snap_entry *e,
				nono_error *err);
/* Open object `hash` read-only. */
NONO_HIDDEN int snap_object_open(const nono_snap *s, const uint8_t hash[32]);
/* Copy object `hash` into fd `dst` (FICLONE, else copy_file_range, else read/write). */
NONO_HIDDEN int snap_object_copy(const nono_snap *s, const uint8_t hash[32], int dst);
NONO_HIDDEN int snap_manifest_write(const nono_snap *s, const nono_snap_manifest *m,
				    nono_error *err);
NONO_HIDDEN int snap_manifest_read(const nono_snap *s, uint32_t number, nono_snap_manifest **out,
				   nono_error *err);
/* As snap_manifest_read, the Merkle root checked only when `verify`: a manifest read unverified
 * must pass snap_manifest_verify before anything it says is trusted (snapshot.c overlaps that
 * check with the walk). With `paths` (an empty arena), the entries' paths are allocated there
 * (free *out with snap_manifest_free_arena(*out, paths); on error the arena is empty). */
NONO_HIDDEN int snap_manifest_parse(const nono_snap *s, uint32_t number, bool verify,
				    struct snap_arena *paths, nono_snap_manifest **out,
				    nono_error *err);
/* snapshot_share.c: read and check the seeding session's manifest (nono_snap_seed) into s->hint
 * and s->hint_tree; none when it is gone or has other roots. -EBADMSG when damaged. */
NONO_HIDDEN int snap_hint_load(nono_snap *s, nono_error *err);
/* Whether m's Merkle root matches its entries (-EBADMSG naming the manifest if not). With `tree`,
 * the tree built on the way is kept there (snap_mtree_free), on success only. */
NONO_HIDDEN int snap_manifest_verify(const nono_snap_manifest *m, const char *dir,
				     struct snap_mtree *tree, nono_error *err);
/* snapshot_bin.c: the manifest's binary format (version 2). Written through a snap_out, a buffer
 * flushed to fd by snap_out_flush; read from a whole file's bytes into m (paths in *paths, or
 * malloc'd when NULL). */
struct snap_out {
	int fd;
	char *buf;
	size_t len, cap;
};
NONO_HIDDEN int snap_out_flush(struct snap_out *o);
NONO_HIDDEN bool snap_manifest_is_bin(const char *buf, size_t len);
NONO_HIDDEN int snap_manifest_bin(struct snap_out *o, const nono_snap_manifest *m);
NONO_HIDDEN int snap_manifest_unbin(const char *buf, size_t len, const char *name,
				    struct snap_arena *paths, nono_snap_manifest *m, nono_error *err);
/* The highest manifest number on disk, -1 if none. */
NONO_HIDDEN long snap_manifest_latest(const nono_snap *s);

#endif /* NONO_SNAPSHOT_INT_H */
