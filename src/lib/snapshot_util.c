/* snapshot_util.c — the snapshot store's small pieces: SHA-256 through OpenSSL's libcrypto, hex,
 * path escaping for the manifest's text format, the Merkle root, and entry vectors. */
/* The SHA256_* functions are deprecated in OpenSSL 3 (see snap_sha256 for why they are used). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "snapshot_int.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* SHA-256 through libcrypto's one-algorithm functions (SHA256_Init/Update/Final), not EVP: with
 * OpenSSL 3 the first EVP_MD_fetch of a process loads openssl.cnf and builds the default
 * provider's method tables, about 1.1 ms, and every `nono run` hashes its ledger records
 * (issue 10's startup target: the whole run may add 1 ms). These functions run the same assembly
 * (SHA-NI where the CPU has it) with no provider and no setup: 17 KB in ~11 us. They are
 * deprecated in OpenSSL 3 (in favour of EVP) but kept through 3.x; nono uses no FIPS provider
 * that EVP would route to. */
int snap_sha256(const void *data, size_t len, uint8_t out[32])
{
	SHA256_CTX c;
	if (!SHA256_Init(&c) || !SHA256_Update(&c, data, len) || !SHA256_Final(out, &c))
		return -EIO;
	return 0;
}

int nono_sha256_buf(const void *data, size_t len, uint8_t out[32])
{
	return snap_sha256(data, len, out);
}

int snap_sha256_fd(int fd, uint8_t out[32])
{
	SHA256_CTX ctx;
	/* Heap, not thread-local: a large TLS block would be charged to every thread of the process,
	 * including small-stack ones that pthread_create would then refuse (EINVAL). */
	size_t bufsz = 1 << 17;
	cleanup_free unsigned char *buf = malloc(bufsz);
	int rc = !buf ? -ENOMEM : SHA256_Init(&ctx) ? 0 : -EIO;
	while (rc == 0) {
		ssize_t r = read(fd, buf, bufsz);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = -errno;
		else if (r == 0)
			break;
		else if (!SHA256_Update(&ctx, buf, (size_t)r))
			rc = -EIO;
	}
	if (rc == 0 && !SHA256_Final(out, &ctx))
		rc = -EIO;
	return rc;
}

void nono_sha256_hex(const uint8_t hash[32], char buf[65])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < 32; i++) {
		buf[2 * i] = digits[hash[i] >> 4];
		buf[2 * i + 1] = digits[hash[i] & 15];
	}
	buf[64] = '\0';
}

int nono_sha256_file(const char *path, uint8_t out[32], nono_error *err)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return nono_fail(err, -errno, "%s: %s", path, strerror(errno));
	int rc = snap_sha256_fd(fd, out);
	if (rc < 0)
		return nono_fail(err, rc, "%s: cannot hash: %s", path, strerror(-rc));
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Nibble values by byte, 0xff for anything but 0-9a-f: a manifest holds one hash per entry, and
 * the branches of hexval were a tenth of reading one. */
static uint8_t hex_table[256];
static pthread_once_t hex_once = PTHREAD_ONCE_INIT;

static void hex_init(void)
{
	for (int c = 0; c < 256; c++) {
		int v = hexval((char)c);
		hex_table[c] = v < 0 ? 0xff : (uint8_t)v;
	}
}

int snap_hex_parse(const char *hex, uint8_t out[32])
{
	pthread_once(&hex_once, hex_init);
	const unsigned char *h = (const unsigned char *)hex;
	for (size_t i = 0; i < 32; i++) {
		uint8_t hi = hex_table[h[2 * i]], lo = hi > 15 ? 0xff : hex_table[h[2 * i + 1]];
		if (lo > 15) /* also at a NUL: nothing is read past the end */
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[64] == '\0' || hex[64] == ' ' || hex[64] == '\n' ? 0 : -EINVAL;
}

int snap_unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		*o++ = (char)(hi << 4 | lo);
		p += 2;
	}
	*o = '\0';
	return 0;
}

void snap_timestamp(char buf[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Leaf: SHA-256(0x00 || type || mode (4 bytes, big endian) || path || 0x00 || content hash). A node:
 * SHA-256(0x01 || left || right); an odd node is carried up unchanged. The empty tree: SHA-256 of
 * nothing. Mode and type are in the leaf so a chmod alone changes the root. The SHA256_CTX lives on
 * the stack: no allocation per hash (an EVP context per hash cost more than the hashing). */
int snap_ctx_hash(const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl,
		  uint8_t out[32])
{
	SHA256_CTX ctx;
	if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, a, al) || (bl && !SHA256_Update(&ctx, b, bl)) ||
	    (cl && !SHA256_Update(&ctx, c, cl)) || !SHA256_Final(out, &ctx))
		return -EIO;
	return 0;
}

int snap_leaf_hash(const nono_snap_entry *e, uint8_t out[32])
{
	unsigned char head[6];
	head[0] = 0;
	head[1] = (unsigned char)e->type;
	for (int i = 0; i < 4; i++)
		head[2 + i] = (unsigned char)(e->mode >> (24 - 8 * i));
	return snap_ctx_hash(head, sizeof head, e->path, strlen(e->path) + 1, e->hash, 32, out);
}

int snap_merkle(const nono_snap_entry *e, size_t n, uint8_t root[32])
{
	if (n == 0)
		return snap_sha256("", 0, root);
	cleanup_free uint8_t(*level)[32] = malloc(n * 32);
	if (!level)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = snap_leaf_hash(&e[i], level[i]);
	while (rc == 0 && n > 1) {
		size_t m = 0;
		static const unsigned char one = 1;
		for (size_t i = 0; i < n && rc == 0; i += 2, m++) {
			if (i + 1 == n)
				memmove(level[m], level[i], 32);
			else
				rc = snap_ctx_hash(&one, 1, level[i], 32, level[i + 1], 32, level[m]);
		}
		n = m;
	}
	if (rc == 0)
		memcpy(root, level[0], 32);
	return rc;
}

int snap_vec_push(struct snap_vec *v, nono_snap_entry **out)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		nono_snap_entry *nv = realloc(v->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	*out = &v->v[v->n++];
	memset(*out, 0, sizeof **out);
	return 0;
}

int snap_vec_reserve(struct snap_vec *v, size_t cap)
{
	if (cap <= v->cap)
		return 0;
	nono_snap_entry *nv = realloc(v->v, cap * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	v->v = nv;
	v->cap = cap;
	return 0;
}

void snap_entry_clear(nono_snap_entry *e)
{
	free(e->path);
	free(e->target);
	e->path = e->target = NULL;
}

void snap_vec_drop(struct snap_vec *v, nono_snap_entry *e)
{
	if (v->arena_paths)
		e->path = NULL;
	snap_entry_clear(e);
}

void snap_vec_clear(struct snap_vec *v)
{
	/* Entries are only read here: `nono run` forks after the baseline, and every page of them
	 * written after that is a copy-on-write fault (600 for 20,000 entries). */
	for (size_t i = 0; i < v->n; i++) {
		if (!v->arena_paths)
			free(v->v[i].path);
		free(v->v[i].target);
	}
	free(v->v);
	snap_arena_free(&v->arena);
	memset(v, 0, sizeof *v);
}

enum { ARENA_CHUNK = (64 << 10) - 64 }; /* below glibc's mmap threshold: reused, not re-faulted */

struct snap_arena_chunk {
	struct snap_arena_chunk *next;
	size_t used, cap;
	char data[];
};

char *snap_arena_alloc(struct snap_arena *a, size_t n)
{
	struct snap_arena_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		if (!(c = malloc(sizeof *c + cap)))
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

void snap_arena_free(struct snap_arena *a)
{
	for (struct snap_arena_chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

int snap_entry_cmp(const nono_snap_entry *a, const nono_snap_entry *b)
{
	if (a->root_index != b->root_index)
		return a->root_index < b->root_index ? -1 : 1;
	return strcmp(a->path + a->rel_offset, b->path + b->rel_offset);
}

static int entry_qcmp(const void *a, const void *b)
{
	return snap_entry_cmp(a, b);
}

static int entry_pcmp(const void *a, const void *b)
{
	return snap_entry_cmp(*(const nono_snap_entry *const *)a, *(const nono_snap_entry *const *)b);
}

bool snap_vec_sorted(const struct snap_vec *v)
{
	for (size_t i = 1; i < v->n; i++)
		if (snap_entry_cmp(&v->v[i - 1], &v->v[i]) >= 0)
			return false;
	return true;
}

/* Pointers are sorted, then the entries moved once: glibc's qsort is a merge sort that copies
 * whole elements at every pass, and an entry is ~130 bytes (a fifth of the sort's time). */
void snap_vec_sort(struct snap_vec *v)
{
	if (v->n < 2)
		return;
	cleanup_free const nono_snap_entry **p = malloc(v->n * sizeof *p);
	nono_snap_entry *out = malloc(v->cap * sizeof *out);
	if (!p || !out) { /* in place, slower */
		free(out);
		qsort(v->v, v->n, sizeof *v->v, entry_qcmp);
		return;
	}
	for (size_t i = 0; i < v->n; i++)
		p[i] = &v->v[i];
	qsort(p, v->n, sizeof *p, entry_pcmp);
	for (size_t i = 0; i < v->n; i++)
		out[i] = *p[i];
	free(v->v);
	v->v = out;
}

int snap_change_add(nono_snap_change **c, size_t *n, size_t *cap, const char *path,
		    nono_snap_change_type t, nono_snap_type et, bool has_delta, int64_t delta)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		nono_snap_change *nv = realloc(*c, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		*c = nv;
		*cap = nc;
	}
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	(*c)[(*n)++] = (nono_snap_change){
		.path = p, .type = t, .entry_type = et, .has_size_delta = has_delta,
		.size_delta = delta,
	};
	return 0;
}

char **snap_strv_dup(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **out = calloc(n + 1, sizeof *out);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(out[i] = strdup(v[i]))) {
			nono_strv_free(out);
			return NULL;
		}
	}
	return out;
}

nono_snap_manifest *snap_manifest_from_vec(struct snap_vec *v, char **roots, const bool *is_file,
					   size_t n_roots)
{
	nono_snap_manifest *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	if (is_file && !(m->root_is_file = malloc(n_roots * sizeof *is_file + 1))) {
		free(m);
		return NULL;
	}
	if (is_file)
		memcpy(m->root_is_file, is_file, n_roots * sizeof *is_file);
	m->roots = calloc(n_roots + 1, sizeof *m->roots);
	for (size_t i = 0; m->roots && i < n_roots; i++) {
		if (!(m->roots[i] = strdup(roots[i]))) {
			nono_strv_free(m->roots);
			m->roots = NULL;
		}
	}
	if (!m->roots) {
		free(m->root_is_file);
		free(m);
		return NULL;
	}
	m->n_roots = n_roots;
	m->entries = v->v;
	m->n_entries = v->n;
	v->v = NULL;
	v->n = v->cap = 0;
	return m;
}

nono_snap_manifest *snap_manifest_clone(const nono_snap_manifest *m)
{
	struct snap_vec v = {0};
	for (size_t i = 0; i < m->n_entries; i++) {
		nono_snap_entry *e;
		if (snap_vec_push(&v, &e) < 0)
			goto fail;
		*e = m->entries[i];
		e->path = strdup(m->entries[i].path);
		e->target = m->entries[i].target ? strdup(m->entries[i].target) : NULL;
		if (!e->path || (m->entries[i].target && !e->target))
			goto fail;
	}
	nono_snap_manifest *c = snap_manifest_from_vec(&v, m->roots, m->root_is_file, m->n_roots);
	if (!c)
		goto fail;
	c->number = m->number;
	c->parent = m->parent;
	memcpy(c->timestamp, m->timestamp, sizeof c->timestamp);
	memcpy(c->merkle_root, m->merkle_root, 32);
	return c;
fail:
	snap_vec_clear(&v);
	return NULL;
}

bool snap_path_under(const char *path, const char *dir)
{
	return nono_path_within(path, dir, true);
}

void snap_manifest_free_arena(nono_snap_manifest *m, struct snap_arena *paths)
{
	struct snap_vec v = {m ? m->entries : NULL, m ? m->n_entries : 0, m ? m->n_entries : 0,
			     {NULL}, paths != NULL};
	if (paths) { /* the arena goes with the vector */
		v.arena = *paths;
		paths->head = NULL;
	}
	snap_vec_clear(&v);
	if (!m)
		return;
	nono_strv_free(m->roots);
	free(m->root_is_file);
	free(m);
}

void nono_snap_manifest_free(nono_snap_manifest *m)
{
	snap_manifest_free_arena(m, NULL);
}

void nono_snap_changes_free(nono_snap_change *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i].path);
	free(c);
}

const char *nono_snap_change_name(nono_snap_change_type t)
{
	switch (t) {
	case NONO_SNAP_CREATED:
		return "created";
	case NONO_SNAP_MODIFIED:
		return "modified";
	case NONO_SNAP_DELETED:
		return "deleted";
	case NONO_SNAP_PERMISSIONS:
		return "permissions_changed";
	}
	return "unknown";
}
