/* snapshot_bin.c — the manifest's binary format (version 2), written by every snapshot; version 1
 * (text, snapshot_parse.c) is still read, so a store written before stays loadable, verifiable and
 * restorable. Why binary: the text's formatting and parsing (hex, decimal, %XX escapes, a line
 * split per field) were a tenth of `nono run --rollback`'s CPU, which reads the seeding session's
 * manifest and writes two (git's index is binary for the same reason).
 *
 * Fixed-size numbers are little-endian; "varint" is LEB128 (7 bits a byte, low first), "svarint"
 * a zigzag-coded signed varint; strings are counted, not terminated, and hold no NUL byte.
 *   "nono-snapshot 2\n"                      16 bytes: still says what it is to `head -1`
 *   u32 number, u32 n_roots, i64 parent (-1: the baseline), u64 n_entries,
 *   timestamp[32] (NUL-padded ISO 8601), merkle[32]
 *   n_roots times: u32 len, u8 kind (0 tree, 1 tracked file), 3 zero bytes, the path
 *   n_entries times, sorted as snap_entry_cmp, each relative to the one before (the first to
 *   zeros), as git's index version 4 does, which halves the size (write(2) of the manifest was
 *   most of writing it):
 *     u8 type ('F', 'D', 'L'), varint shared (bytes of the previous relative path this one
 *     starts with), varint suffix_len, varint target_len (links only, else 0), varint root,
 *     varint mode, varint size, svarint mtime - previous mtime, u32 mtime_nsec,
 *     svarint ctime - mtime, u32 ctime_nsec, svarint ino - previous ino, svarint dev - previous
 *     dev, hash[32] (not for a directory), the path's suffix, the symlink target
 * Every field is checked on reading, as for the text: a manifest that does not parse is refused
 * with -EBADMSG naming the entry. */
#include "snapshot_int.h"

#include <endian.h>
#include <string.h>

#define MAGIC "nono-snapshot 2\n"
enum {
	MAGIC_LEN = 16,
	HEAD_LEN = MAGIC_LEN + 4 + 4 + 8 + 8 + 32 + 32,
	ROOT_LEN = 8,
	ENTRY_MIN = 1 + 6 + 4 + 1 + 4 + 2, /* the smallest entry: a directory */
	ENTRY_MAX = 1 + 12 * 10 + 32,      /* an entry before its strings */
	STR_MAX = 65535,                   /* a relative path or a target (PATH_MAX in practice) */
};

/* What each entry is coded against: the one before it. */
struct prev {
	const char *rel;
	size_t rel_len;
	int64_t mtime;
	uint64_t ino, dev;
};

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

int snap_out_flush(struct snap_out *o)
{
	for (size_t w = 0; w < o->len;) {
		ssize_t k = write(o->fd, o->buf + w, o->len - w);
		if (k < 0 && errno != EINTR)
			return -errno;
		if (k > 0)
			w += (size_t)k;
	}
	o->len = 0;
	return 0;
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

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

static unsigned char *put_svarint(unsigned char *p, uint64_t delta)
{
	int64_t d = (int64_t)delta;
	return put_varint(p, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
}

static int put_entry(struct snap_out *o, const nono_snap_entry *e, struct prev *pv)
{
	const char *rel = e->path + e->rel_offset;
	size_t rl = strlen(rel), tl = e->target ? strlen(e->target) : 0, shared = 0;
	if (rl > STR_MAX || tl > STR_MAX)
		return -ENAMETOOLONG;
	while (shared < rl && shared < pv->rel_len && rel[shared] == pv->rel[shared])
		shared++;
	unsigned char r[ENTRY_MAX], *p = r;
	*p++ = (unsigned char)e->type;
	p = put_varint(p, shared);
	p = put_varint(p, rl - shared);
	p = put_varint(p, tl);
	p = put_varint(p, e->root_index);
	p = put_varint(p, e->mode);
	p = put_varint(p, e->size);
	p = put_svarint(p, (uint64_t)e->mtime_sec - (uint64_t)pv->mtime);
	put32(p, (uint32_t)e->mtime_nsec);
	p = put_svarint(p + 4, (uint64_t)e->ctime_sec - (uint64_t)e->mtime_sec);
	put32(p, (uint32_t)e->ctime_nsec);
	p = put_svarint(p + 4, e->ino - pv->ino);
	p = put_svarint(p, e->dev - pv->dev);
	if (e->type != NONO_SNAP_DIR) {
		memcpy(p, e->hash, 32);
		p += 32;
	}
	*pv = (struct prev){rel, rl, e->mtime_sec, e->ino, e->dev};
	int rc = put_bytes(o, r, (size_t)(p - r));
	if (rc == 0)
		rc = put_bytes(o, rel + shared, rl - shared);
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
	struct prev pv = {"", 0, 0, 0, 0};
	for (size_t i = 0; rc == 0 && i < m->n_entries; i++)
		rc = put_entry(o, &m->entries[i], &pv);
	return rc;
}

/* ---- reading ---- */

struct reader {
	const unsigned char *p, *end;
	const char *name;
	size_t entry; /* 1-based while reading entries, 0 in the header */
	struct snap_arena *paths;
	nono_error *err;
	struct prev prev;
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

static bool get_varint(struct reader *r, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64 && r->p < r->end; shift += 7) {
		unsigned char b = *r->p++;
		if (shift == 63 && b > 1)
			return false; /* past 64 bits */
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

/* The next svarint, added to base (wrapping, as it was subtracted). */
static bool get_delta(struct reader *r, uint64_t base, uint64_t *v)
{
	uint64_t z;
	if (!get_varint(r, &z))
		return false;
	*v = base + ((z >> 1) ^ (0 - (z & 1)));
	return true;
}

static bool get_u32(struct reader *r, uint32_t *v)
{
	const unsigned char *p = grab(r, 4);
	if (p)
		*v = get32(p);
	return p != NULL;
}

/* The fixed fields of an entry, up to its hash; lens: shared, suffix and target lengths. */
static int entry_fields(struct reader *r, const nono_snap_manifest *m, nono_snap_entry *e,
			uint64_t lens[3])
{
	uint64_t root, mode, mtime, ctime;
	uint32_t mns, cns;
	const unsigned char *t = grab(r, 1);
	if (!t || !get_varint(r, &lens[0]) || !get_varint(r, &lens[1]) || !get_varint(r, &lens[2]) ||
	    !get_varint(r, &root) || !get_varint(r, &mode) || !get_varint(r, &e->size) ||
	    !get_delta(r, (uint64_t)r->prev.mtime, &mtime) || !get_u32(r, &mns) ||
	    !get_delta(r, mtime, &ctime) || !get_u32(r, &cns) ||
	    !get_delta(r, r->prev.ino, &e->ino) || !get_delta(r, r->prev.dev, &e->dev))
		return bad(r, "truncated");
	e->type = (nono_snap_type)t[0];
	if (e->type != NONO_SNAP_FILE && e->type != NONO_SNAP_DIR && e->type != NONO_SNAP_SYMLINK)
		return bad(r, "bad entry type");
	if (root >= m->n_roots || mode > 07777)
		return bad(r, "bad mode or root");
	if (mns >= 1000000000 || cns >= 1000000000)
		return bad(r, "bad time");
	if (lens[0] > r->prev.rel_len || lens[0] + lens[1] > STR_MAX || lens[0] + lens[1] == 0 ||
	    lens[2] > STR_MAX || (e->type == NONO_SNAP_SYMLINK) != (lens[2] > 0))
		return bad(r, "bad path or symlink target length");
	e->root_index = (uint32_t)root;
	e->mode = (uint32_t)mode;
	e->mtime_sec = (int64_t)mtime;
	e->mtime_nsec = (long)mns;
	e->ctime_sec = (int64_t)ctime;
	e->ctime_nsec = (long)cns;
	const unsigned char *h = e->type == NONO_SNAP_DIR ? NULL : grab(r, 32);
	if (e->type != NONO_SNAP_DIR && !h)
		return bad(r, "truncated");
	if (h)
		memcpy(e->hash, h, 32);
	return 0;
}

/* e->path: the root (or, for a tracked file, its parent), then the relative path: `shared`
 * bytes of the previous entry's and the suffix. */
static int entry_path(struct reader *r, const nono_snap_manifest *m, nono_snap_entry *e,
		      size_t shared, const unsigned char *suffix, size_t sl)
{
	const char *root = m->roots[e->root_index];
	size_t rl = strlen(root) == 1 ? 0 : strlen(root), len = shared + sl;
	bool file = snap_root_is_file(m, e->root_index);
	if (file)
		rl = (size_t)(strrchr(root, '/') - root);
	if (!(e->path = r->paths ? snap_arena_alloc(r->paths, rl + 2 + len) : malloc(rl + 2 + len)))
		return nono_fail(r->err, -ENOMEM, "out of memory");
	char *rel = e->path + rl + 1;
	memcpy(e->path, root, rl);
	e->path[rl] = '/';
	memcpy(rel, r->prev.rel, shared);
	memcpy(rel + shared, suffix, sl);
	rel[len] = '\0';
	e->rel_offset = (uint32_t)(rl + 1);
	if (!rel_ok((const unsigned char *)rel, len))
		return bad(r, "bad path, or a path with a . or .. component");
	if (file && strcmp(rel, root + rl + 1) != 0)
		return bad(r, "entry outside its tracked file");
	return 0;
}

static int read_entry(struct reader *r, const nono_snap_manifest *m, nono_snap_entry *e)
{
	uint64_t lens[3];
	int rc = entry_fields(r, m, e, lens);
	const unsigned char *suffix = rc == 0 ? grab(r, lens[1]) : NULL, *tgt = NULL;
	if (rc == 0 && (!suffix || (lens[2] && !(tgt = grab(r, lens[2])))))
		rc = bad(r, "truncated");
	if (rc == 0 && tgt && memchr(tgt, '\0', lens[2]))
		rc = bad(r, "bad symlink target");
	if (rc == 0)
		rc = entry_path(r, m, e, lens[0], suffix, lens[1]);
	if (rc == 0 && tgt && !(e->target = strndup((const char *)tgt, lens[2])))
		rc = nono_fail(r->err, -ENOMEM, "out of memory");
	if (rc == 0)
		r->prev = (struct prev){e->path + e->rel_offset, lens[0] + lens[1], e->mtime_sec, e->ino,
					e->dev};
	return rc;
}

static int read_entries(struct reader *r, nono_snap_manifest *m, uint64_t n)
{
	struct snap_vec vec = {0};
	/* The count is only trusted as far as the bytes back it. */
	size_t room = (size_t)(r->end - r->p) / ENTRY_MIN;
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
			   err, {"", 0, 0, 0, 0}};
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
