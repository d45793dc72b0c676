/* snapshot_bin.c — the manifest's binary format (version 2), written by every snapshot; version 1
 * (text, snapshot_parse.c) is still read, so a store written before stays loadable, verifiable and
 * restorable. Why binary: the text's formatting and parsing (hex, decimal, %XX escapes, a line
 * split per field) were a tenth of `nono run --rollback`'s CPU, which reads the seeding session's
 * manifest and writes two (git's index is binary for the same reason).
 *
 * All numbers little-endian; strings are counted, not terminated, and hold no NUL byte.
 *   "nono-snapshot 2\n"                      16 bytes: still says what it is to `head -1`
 *   u32 number, u32 n_roots, i64 parent (-1: the baseline), u64 n_entries,
 *   timestamp[32] (NUL-padded ISO 8601), merkle[32]
 *   n_roots times: u32 len, u8 kind (0 tree, 1 tracked file), 3 zero bytes, the path
 *   n_entries times, sorted as snap_entry_cmp:
 *     u8 type ('F', 'D', 'L'), 3 zero bytes, u32 root, u32 mode, u32 rel_len, u32 target_len,
 *     u32 mtime_nsec, u32 ctime_nsec, u32 zero, u64 size, i64 mtime, i64 ctime, u64 ino, u64 dev,
 *     hash[32] (zero for a directory), the relative path, the symlink target (links only)
 * Every field is checked on reading, as for the text: a manifest that does not parse is refused
 * with -EBADMSG naming the entry. */
#include "snapshot_int.h"

#include <endian.h>
#include <string.h>

#define MAGIC "nono-snapshot 2\n"
enum { MAGIC_LEN = 16, HEAD_LEN = MAGIC_LEN + 4 + 4 + 8 + 8 + 32 + 32, ROOT_LEN = 8, ENTRY_LEN = 104 };

bool snap_manifest_is_bin(const char *buf, size_t len)
{
	return len >= MAGIC_LEN && memcmp(buf, MAGIC, MAGIC_LEN) == 0;
}

/* ---- writing ---- */

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static int put_bytes(struct snap_out *o, const void *p, size_t n)
{
	while (n) {
		if (o->len == o->cap) {
			int rc = snap_out_flush(o);
			if (rc < 0)
				return rc;
		}
		size_t k = o->cap - o->len < n ? o->cap - o->len : n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p = (const char *)p + k;
		n -= k;
	}
	return 0;
}

static int put_entry(struct snap_out *o, const nono_snap_entry *e)
{
	const char *rel = e->path + e->rel_offset;
	size_t rl = strlen(rel), tl = e->target ? strlen(e->target) : 0;
	unsigned char r[ENTRY_LEN] = {0};
	if (rl > UINT32_MAX || tl > UINT32_MAX)
		return -ENAMETOOLONG;
	r[0] = (unsigned char)e->type;
	put32(r + 4, e->root_index);
	put32(r + 8, e->mode);
	put32(r + 12, (uint32_t)rl);
	put32(r + 16, (uint32_t)tl);
	put32(r + 20, (uint32_t)e->mtime_nsec);
	put32(r + 24, (uint32_t)e->ctime_nsec);
	put64(r + 32, e->size);
	put64(r + 40, (uint64_t)e->mtime_sec);
	put64(r + 48, (uint64_t)e->ctime_sec);
	put64(r + 56, e->ino);
	put64(r + 64, e->dev);
	if (e->type != NONO_SNAP_DIR)
		memcpy(r + 72, e->hash, 32);
	int rc = put_bytes(o, r, sizeof r);
	if (rc == 0)
		rc = put_bytes(o, rel, rl);
	if (rc == 0 && tl)
		rc = put_bytes(o, e->target, tl);
	return rc;
}

int snap_manifest_bin(struct snap_out *o, const nono_snap_manifest *m)
{
	unsigned char h[HEAD_LEN] = {0};
	memcpy(h, MAGIC, MAGIC_LEN);
	put32(h + 16, m->number);
	put32(h + 20, (uint32_t)m->n_roots);
	put64(h + 24, (uint64_t)m->parent);
	put64(h + 32, m->n_entries);
	memcpy(h + 40, m->timestamp, strnlen(m->timestamp, sizeof m->timestamp - 1));
	memcpy(h + 72, m->merkle_root, 32);
	int rc = put_bytes(o, h, sizeof h);
	for (size_t i = 0; rc == 0 && i < m->n_roots; i++) {
		unsigned char r[ROOT_LEN] = {0};
		size_t len = strlen(m->roots[i]);
		put32(r, (uint32_t)len);
		r[4] = snap_root_is_file(m, i);
		if ((rc = put_bytes(o, r, sizeof r)) == 0)
			rc = put_bytes(o, m->roots[i], len);
	}
	for (size_t i = 0; rc == 0 && i < m->n_entries; i++)
		rc = put_entry(o, &m->entries[i]);
	return rc;
}

/* ---- reading ---- */

struct reader {
	const unsigned char *p, *end;
	const char *name;
	size_t entry; /* 1-based while reading entries, 0 in the header */
	struct snap_arena *paths;
	nono_error *err;
};

static int bad(struct reader *r, const char *what)
{
	if (r->entry)
		return nono_fail(r->err, -EBADMSG, "%s: entry %zu: %s", r->name, r->entry, what);
	return nono_fail(r->err, -EBADMSG, "%s: %s", r->name, what);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/* The next n bytes, or NULL when the manifest ends before them. */
static const unsigned char *grab(struct reader *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return NULL;
	const unsigned char *p = r->p;
	r->p += n;
	return p;
}

static int read_roots(struct reader *r, nono_snap_manifest *m, uint32_t n)
{
	if (n > 4096)
		return bad(r, "bad roots");
	if (!(m->roots = calloc(n + 1, sizeof *m->roots)) ||
	    !(m->root_is_file = calloc(n + 1, sizeof *m->root_is_file)))
		return nono_fail(r->err, -ENOMEM, "out of memory");
	for (m->n_roots = 0; m->n_roots < n; m->n_roots++) {
		const unsigned char *h = grab(r, ROOT_LEN), *s;
		uint32_t len = h ? get32(h) : 0;
		if (!h || h[4] > 1 || h[5] || h[6] || h[7] || !(s = grab(r, len)) || len == 0 ||
		    s[0] != '/' || memchr(s, '\0', len))
			return bad(r, "bad root");
		if (h[4] && (s[len - 1] == '/' || len == 1))
			return bad(r, "bad root");
		if (!(m->roots[m->n_roots] = strndup((const char *)s, len)))
			return nono_fail(r->err, -ENOMEM, "out of memory");
		m->root_is_file[m->n_roots] = h[4];
	}
	return 0;
}

/* A relative path that names nothing outside its root: not empty, no NUL, no leading or doubled
 * '/', no "." or ".." component. */
static bool rel_ok(const unsigned char *s, size_t len)
{
	if (len == 0 || s[0] == '/' || s[len - 1] == '/' || memchr(s, '\0', len))
		return false;
	for (size_t i = 0; i < len;) {
		const unsigned char *slash = memchr(s + i, '/', len - i);
		size_t cl = slash ? (size_t)(slash - (s + i)) : len - i;
		if (cl == 0 || (cl == 1 && s[i] == '.') || (cl == 2 && s[i] == '.' && s[i + 1] == '.'))
			return false;
		i += cl + 1;
	}
	return true;
}

static void entry_fields(nono_snap_entry *e, const unsigned char *h)
{
	e->type = (nono_snap_type)h[0];
	e->root_index = get32(h + 4);
	e->mode = get32(h + 8);
	e->mtime_nsec = (long)get32(h + 20);
	e->ctime_nsec = (long)get32(h + 24);
	e->size = get64(h + 32);
	e->mtime_sec = (int64_t)get64(h + 40);
	e->ctime_sec = (int64_t)get64(h + 48);
	e->ino = get64(h + 56);
	e->dev = get64(h + 64);
	memcpy(e->hash, h + 72, 32);
}

/* e->path: the root (or, for a tracked file, its parent) and rel. */
static int entry_path(struct reader *r, const nono_snap_manifest *m, nono_snap_entry *e,
		      const unsigned char *rel, size_t len)
{
	const char *root = m->roots[e->root_index];
	size_t rl = strlen(root) == 1 ? 0 : strlen(root);
	if (snap_root_is_file(m, e->root_index)) {
		rl = (size_t)(strrchr(root, '/') - root);
		if (strlen(root + rl + 1) != len || memcmp(root + rl + 1, rel, len) != 0)
			return bad(r, "entry outside its tracked file");
	}
	if (!(e->path = r->paths ? snap_arena_alloc(r->paths, rl + 2 + len) : malloc(rl + 2 + len)))
		return nono_fail(r->err, -ENOMEM, "out of memory");
	memcpy(e->path, root, rl);
	e->path[rl] = '/';
	memcpy(e->path + rl + 1, rel, len);
	e->path[rl + 1 + len] = '\0';
	e->rel_offset = (uint32_t)(rl + 1);
	return 0;
}

static int read_entry(struct reader *r, const nono_snap_manifest *m, nono_snap_entry *e)
{
	static const uint8_t zero[32];
	const unsigned char *h = grab(r, ENTRY_LEN), *rel, *tgt = NULL;
	if (!h)
		return bad(r, "truncated");
	entry_fields(e, h);
	uint32_t rl = get32(h + 12), tl = get32(h + 16);
	bool link = e->type == NONO_SNAP_SYMLINK, dir = e->type == NONO_SNAP_DIR;
	if ((e->type != NONO_SNAP_FILE && !dir && !link) || h[1] || h[2] || h[3] || get32(h + 28))
		return bad(r, "bad entry type");
	if (e->root_index >= m->n_roots || e->mode > 07777)
		return bad(r, "bad mode or root");
	if (e->mtime_nsec >= 1000000000 || e->ctime_nsec >= 1000000000)
		return bad(r, "bad time");
	if (dir && memcmp(e->hash, zero, 32) != 0)
		return bad(r, "bad hash");
	if (!(rel = grab(r, rl)) || (tl && !(tgt = grab(r, tl))))
		return bad(r, "truncated");
	if (!rel_ok(rel, rl))
		return bad(r, "bad path, or a path with a . or .. component");
	if (link != (tl > 0) || (tgt && memchr(tgt, '\0', tl)))
		return bad(r, "bad symlink target");
	int rc = entry_path(r, m, e, rel, rl);
	if (rc == 0 && link && !(e->target = strndup((const char *)tgt, tl)))
		rc = nono_fail(r->err, -ENOMEM, "out of memory");
	return rc;
}

static int read_entries(struct reader *r, nono_snap_manifest *m, uint64_t n)
{
	struct snap_vec vec = {0};
	/* The count is only trusted as far as the bytes back it. */
	size_t room = (size_t)(r->end - r->p) / ENTRY_LEN;
	int rc = snap_vec_reserve(&vec, n < room ? (size_t)n : room) < 0
		 ? nono_fail(r->err, -ENOMEM, "out of memory") : 0;
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		nono_snap_entry *e;
		r->entry = (size_t)i + 1;
		if ((rc = snap_vec_push(&vec, &e)) < 0)
			rc = nono_fail(r->err, rc, "out of memory");
		else
			rc = read_entry(r, m, e);
		if (rc == 0 && i > 0 && snap_entry_cmp(&vec.v[i - 1], &vec.v[i]) >= 0)
			rc = bad(r, "entries out of order");
	}
	r->entry = 0;
	if (rc == 0 && r->p != r->end)
		rc = bad(r, "trailing data");
	m->entries = vec.v;
	m->n_entries = vec.n;
	return rc;
}

int snap_manifest_unbin(const char *buf, size_t len, const char *name, struct snap_arena *paths,
			nono_snap_manifest *m, nono_error *err)
{
	struct reader r = {(const unsigned char *)buf, (const unsigned char *)buf + len, name, 0, paths,
			   err};
	const unsigned char *h = grab(&r, HEAD_LEN);
	if (!h || !snap_manifest_is_bin(buf, len))
		return bad(&r, "not a nono snapshot manifest (version 2)");
	m->number = get32(h + 16);
	m->parent = (int64_t)get64(h + 24);
	if (m->number == UINT32_MAX || m->parent < -1 || m->parent >= (int64_t)m->number)
		return bad(&r, "bad number or parent");
	if (!memchr(h + 40, '\0', 32))
		return bad(&r, "bad timestamp");
	memcpy(m->timestamp, h + 40, 32);
	memcpy(m->merkle_root, h + 72, 32);
	int rc = read_roots(&r, m, get32(h + 20));
	uint64_t n = get64(h + 32);
	if (rc == 0 && n > (1ull << 32))
		rc = bad(&r, "bad entries count");
	return rc == 0 ? read_entries(&r, m, n) : rc;
}
