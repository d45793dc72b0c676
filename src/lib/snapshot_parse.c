/* snapshot_parse.c — reading a manifest back: version 2 (binary, snapshot_bin.c), or version 1,
 * the text every snapshot wrote before (stores written then still load, verify and restore):
 *   nono-snapshot 1
 *   number N / parent P|- / timestamp T / merkle HEX / roots K / root PATH [file] (K lines) /
 *   entries M          ("file": a tracked file, whose one entry is named by the root's last
 *                      component, relative to the root's parent; else a tracked tree)
 *   TYPE ROOT HASH|- MODE SIZE MTIME MTIME_NS CTIME CTIME_NS INO DEV REL [TARGET]
 * one entry a line, every path %XX-escaped (bytes <= 0x20, 0x7f and '%'), negative times as 0.
 * Every field is checked; a manifest that does not parse, or whose Merkle root does not match its
 * entries, is refused with -EBADMSG naming the line (the entry). */
#include "snapshot_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct parser {
	char *p;        /* the rest of the text */
	size_t len;     /* the whole text's length */
	unsigned line;
	const char *name;
	struct snap_arena *paths; /* where entries' paths go; NULL: malloc */
	nono_error *err;
};

static char *next_line(struct parser *ps)
{
	if (!ps->p || !*ps->p)
		return NULL;
	char *l = ps->p, *nl = strchr(l, '\n');
	if (nl) {
		*nl = '\0';
		ps->p = nl + 1;
	} else {
		ps->p = NULL;
	}
	ps->line++;
	return l;
}

static int bad(struct parser *ps, const char *what)
{
	return nono_fail(ps->err, -EBADMSG, "%s: line %u: %s", ps->name, ps->line, what);
}

/* "key value": the value, or NULL when the line is not that key. */
static char *keyed(struct parser *ps, const char *key)
{
	char *l = next_line(ps);
	size_t kl = strlen(key);
	if (!l || strncmp(l, key, kl) != 0 || l[kl] != ' ')
		return NULL;
	return l + kl + 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s || strlen(s) > 19)
		return -EINVAL; /* 19 digits always fit */
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static int parse_header(struct parser *ps, nono_snap_manifest *m)
{
	char *v;
	uint64_t n;
	if (!(v = next_line(ps)) || strcmp(v, "nono-snapshot 1") != 0)
		return bad(ps, "not a nono snapshot manifest (version 1)");
	if (!(v = keyed(ps, "number")) || parse_u64(v, &n) < 0 || n >= UINT32_MAX)
		return bad(ps, "bad number");
	m->number = (uint32_t)n;
	if (!(v = keyed(ps, "parent")))
		return bad(ps, "bad parent");
	if (!strcmp(v, "-"))
		m->parent = -1;
	else if (parse_u64(v, &n) < 0 || n >= m->number)
		return bad(ps, "bad parent");
	else
		m->parent = (int64_t)n;
	if (!(v = keyed(ps, "timestamp")) || strlen(v) >= sizeof m->timestamp)
		return bad(ps, "bad timestamp");
	strcpy(m->timestamp, v);
	if (!(v = keyed(ps, "merkle")) || snap_hex_parse(v, m->merkle_root) < 0)
		return bad(ps, "bad merkle root");
	if (!(v = keyed(ps, "roots")) || parse_u64(v, &n) < 0 || n > 4096)
		return bad(ps, "bad roots");
	if (!(m->roots = calloc(n + 1, sizeof *m->roots)) ||
	    !(m->root_is_file = calloc(n + 1, sizeof *m->root_is_file)))
		return nono_fail(ps->err, -ENOMEM, "out of memory");
	for (m->n_roots = 0; m->n_roots < n; m->n_roots++) {
		char *kind = (v = keyed(ps, "root")) ? strchr(v, ' ') : NULL;
		if (kind) { /* "root PATH file": a tracked file (paths are escaped: no space) */
			*kind++ = '\0';
			if (strcmp(kind, "file") != 0)
				return bad(ps, "bad root kind");
			m->root_is_file[m->n_roots] = true;
		}
		if (!v || snap_unescape(v) < 0 || v[0] != '/' || (kind && !strrchr(v, '/')[1]))
			return bad(ps, "bad root");
		if (!(m->roots[m->n_roots] = strdup(v)))
			return nono_fail(ps->err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_entry(struct parser *ps, const nono_snap_manifest *m, char *l, nono_snap_entry *e)
{
	char *f[13];
	size_t nf = 0;
	/* Fields are separated by single spaces (paths are escaped): split in place. */
	for (char *p = l; nf < N_ELEMENTS(f);) {
		f[nf++] = p;
		char *sp = strchr(p, ' ');
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	if (nf < 12 || strlen(f[0]) != 1)
		return bad(ps, "bad entry");
	e->type = (nono_snap_type)f[0][0];
	bool link = e->type == NONO_SNAP_SYMLINK;
	if ((e->type != NONO_SNAP_FILE && e->type != NONO_SNAP_DIR && !link) || nf != (link ? 13u : 12u))
		return bad(ps, "bad entry type or field count");
	uint64_t u[9];
	char *mend;
	unsigned long mode = strtoul(f[3], &mend, 8);
	if (*mend || mode > 07777 || parse_u64(f[1], &u[0]) < 0 || u[0] >= m->n_roots)
		return bad(ps, "bad mode or root");
	for (int i = 4; i < 11; i++)
		if (parse_u64(f[i], &u[i - 3]) < 0)
			return bad(ps, "bad number in entry");
	if (e->type == NONO_SNAP_DIR ? strcmp(f[2], "-") != 0 : snap_hex_parse(f[2], e->hash) < 0)
		return bad(ps, "bad hash");
	if (snap_unescape(f[11]) < 0 || !*f[11] || f[11][0] == '/' || strstr(f[11], "//") ||
	    (link && snap_unescape(f[12]) < 0))
		return bad(ps, "bad path");
	/* No "." or ".." component: a manifest never names anything outside its root. */
	for (char *c = f[11]; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL)
		if ((!strncmp(c, "..", 2) && (c[2] == '/' || !c[2])) || (c[0] == '.' && (c[1] == '/' || !c[1])))
			return bad(ps, "path with a . or .. component");
	e->root_index = (uint32_t)u[0];
	e->mode = (uint32_t)mode;
	e->size = u[1];
	e->mtime_sec = (int64_t)u[2];
	e->mtime_nsec = (long)u[3];
	e->ctime_sec = (int64_t)u[4];
	e->ctime_nsec = (long)u[5];
	e->ino = u[6];
	e->dev = u[7];
	const char *root = m->roots[e->root_index];
	size_t rl = strlen(root) == 1 ? 0 : strlen(root);
	if (snap_root_is_file(m, e->root_index)) {
		/* A tracked file's one entry: the root itself, relative to its parent. */
		rl = (size_t)(strrchr(root, '/') - root);
		if (strcmp(f[11], root + rl + 1) != 0)
			return bad(ps, "entry outside its tracked file");
	}
	size_t fl = strlen(f[11]);
	if (!(e->path = ps->paths ? snap_arena_alloc(ps->paths, rl + 2 + fl) : malloc(rl + 2 + fl)))
		return nono_fail(ps->err, -ENOMEM, "out of memory");
	memcpy(e->path, root, rl);
	e->path[rl] = '/';
	memcpy(e->path + rl + 1, f[11], fl + 1);
	e->rel_offset = (uint32_t)(rl + 1);
	if (link && !(e->target = strdup(f[12])))
		return nono_fail(ps->err, -ENOMEM, "out of memory");
	return 0;
}

static int parse_entries(struct parser *ps, nono_snap_manifest *m)
{
	char *v;
	uint64_t n;
	if (!(v = keyed(ps, "entries")) || parse_u64(v, &n) < 0 || n > (1ull << 32))
		return bad(ps, "bad entries count");
	struct snap_vec vec = {0};
	/* The count is only trusted as far as the text backs it: a line is at least 24 bytes. */
	int rc = snap_vec_reserve(&vec, n < ps->len / 24 ? n : ps->len / 24) < 0
		 ? nono_fail(ps->err, -ENOMEM, "out of memory") : 0;
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		nono_snap_entry *e;
		char *l = next_line(ps);
		if (!l)
			rc = bad(ps, "truncated");
		else if ((rc = snap_vec_push(&vec, &e)) == 0)
			rc = parse_entry(ps, m, l, e);
		if (rc == 0 && i > 0 && snap_entry_cmp(&vec.v[i - 1], &vec.v[i]) >= 0)
			rc = bad(ps, "entries out of order");
	}
	if (rc == 0 && next_line(ps))
		rc = bad(ps, "trailing data");
	m->entries = vec.v;
	m->n_entries = vec.n;
	return rc;
}

int snap_manifest_read(const nono_snap *s, uint32_t number, nono_snap_manifest **out,
		       nono_error *err)
{
	return snap_manifest_parse(s, number, true, NULL, out, err);
}

int snap_manifest_verify(const nono_snap_manifest *m, const char *dir, struct snap_mtree *tree,
			 nono_error *err)
{
	uint8_t root[32];
	struct snap_mtree t;
	int rc = snap_mtree_build(&t, m->entries, m->n_entries, NULL, NULL, 0, root);
	if (rc < 0)
		return nono_fail(err, rc, rc == -ENOMEM ? "out of memory" : "hashing failed");
	bool ok = memcmp(root, m->merkle_root, 32) == 0;
	if (ok && tree)
		*tree = t;
	else
		snap_mtree_free(&t);
	if (!ok)
		return nono_fail(err, -EBADMSG, "%s/snapshots/%" PRIu32 ".manifest: the Merkle root "
				 "does not match the entries (the manifest was changed)", dir, m->number);
	return 0;
}

int snap_manifest_parse(const nono_snap *s, uint32_t number, bool verify,
			struct snap_arena *paths, nono_snap_manifest **out, nono_error *err)
{
	char name[64];
	snprintf(name, sizeof name, "snapshots/%" PRIu32 ".manifest", number);
	cleanup_fd int fd = openat(s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return nono_fail(err, errno == ENOENT ? -ENOENT : -errno, "snapshot %" PRIu32 " of %s: %s",
				 number, s->dir, errno == ENOENT ? "no such snapshot" : strerror(errno));
	cleanup_free char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return nono_fail(err, -ENOMEM, "out of memory");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return nono_fail(err, r < 0 ? -errno : -EBADMSG, "%s/%s: short read", s->dir, name);
		got += (size_t)r;
	}
	buf[got] = '\0';
	bool bin = snap_manifest_is_bin(buf, got);
	if (!bin && !strncmp(buf, "nono-snapshot ", 14) && strncmp(buf + 14, "1\n", 2) != 0)
		return nono_fail(err, -EBADMSG, "%s/%s: a manifest of a version this nono does not read "
				 "(it reads 1 and 2)", s->dir, name);
	if (!bin && memchr(buf, '\0', got))
		return nono_fail(err, -EBADMSG, "%s/%s: NUL byte in manifest", s->dir, name);
	char path[80];
	snprintf(path, sizeof path, "%s", name);
	struct parser ps = {.p = buf, .len = got, .name = path, .paths = paths, .err = err};
	nono_snap_manifest *m = calloc(1, sizeof *m);
	if (!m)
		return nono_fail(err, -ENOMEM, "out of memory");
	int rc = bin ? snap_manifest_unbin(buf, got, path, paths, m, err) : parse_header(&ps, m);
	if (rc == 0 && !bin)
		rc = parse_entries(&ps, m);
	if (rc == 0 && m->number != number)
		rc = nono_fail(err, -EBADMSG, "%s: says it is snapshot %" PRIu32, name, m->number);
	if (rc == 0 && verify)
		rc = snap_manifest_verify(m, s->dir, NULL, err);
	if (rc < 0) {
		snap_manifest_free_arena(m, paths);
		return rc;
	}
	*out = m;
	return 0;
}
