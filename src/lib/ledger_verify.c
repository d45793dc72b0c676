/* ledger_verify.c — checking a ledger (format: ledger.c). Every record's hash is recomputed, its
 * sequence number and its link to the previous record checked, and the session_end's count and
 * Merkle root compared with the records before it; the first problem is reported with its record
 * number: an edited field (the hash no longer matches), a dropped, inserted or reordered record
 * (sequence or chain broken), a record appended after session_end, a cut-short file. */
#include "internal.h"
#include "ledger_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

struct vstate {
	uint8_t (*h)[32];
	size_t n, cap;
	bool ended;
	nono_error *err;
};

static int bad(struct vstate *v, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct vstate *v, size_t i, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return nono_fail(v->err, -EBADMSG, "record %zu: %s", i, msg);
}

static int check_end(struct vstate *v, size_t i, json_t *data)
{
	uint8_t root[32];
	char hex[65];
	if (json_integer_value(json_object_get(data, "count")) != (json_int_t)i)
		return bad(v, i, "session_end counts records that are not there");
	if (ledger_merkle(v->h, i, root) < 0)
		return nono_fail(v->err, -ENOMEM, "out of memory");
	nono_sha256_hex(root, hex);
	const char *m = json_string_value(json_object_get(data, "merkle_root"));
	if (!m || strcmp(m, hex) != 0)
		return bad(v, i, "session_end's Merkle root does not match the records before it");
	return 0;
}

static int check_record(struct vstate *v, size_t i, json_t *rec)
{
	json_t *seq = json_object_get(rec, "seq"), *kind = json_object_get(rec, "kind"),
	       *prev = json_object_get(rec, "prev"), *data = json_object_get(rec, "data");
	const char *hash = json_string_value(json_object_get(rec, "hash"));
	if (!json_is_object(rec) || json_object_size(rec) != 6 || !json_is_integer(seq) ||
	    !json_is_string(kind) || !json_is_integer(json_object_get(rec, "ts_ms")) ||
	    !json_is_object(data) || !hash || strlen(hash) != 64)
		return bad(v, i, "not a ledger record (fields missing, extra or of the wrong type)");
	if (v->ended)
		return bad(v, i, "appended after session_end");
	char stored[65], got_hex[65];
	snprintf(stored, sizeof stored, "%s", hash);
	json_object_del(rec, "hash");
	uint8_t got[32];
	if (ledger_record_hash(rec, got) < 0)
		return nono_fail(v->err, -ENOMEM, "out of memory");
	nono_sha256_hex(got, got_hex);
	if (strcmp(got_hex, stored) != 0)
		return bad(v, i, "its contents do not match its hash (the %s record was edited)",
			   json_string_value(kind));
	if (json_integer_value(seq) != (json_int_t)i)
		return bad(v, i, "out of sequence (a record before it was dropped, inserted or "
			   "reordered)");
	char want[65] = "";
	if (i > 0)
		nono_sha256_hex(v->h[i - 1], want);
	if (i == 0 ? !json_is_null(prev) : (!json_is_string(prev) || strcmp(json_string_value(prev), want)))
		return bad(v, i, "does not chain to the record before it (dropped, inserted or "
			   "reordered)");
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 64;
		uint8_t(*nv)[32] = realloc(v->h, nc * 32);
		if (!nv)
			return nono_fail(v->err, -ENOMEM, "out of memory");
		v->h = nv;
		v->cap = nc;
	}
	memcpy(v->h[v->n++], got, 32);
	if (!strcmp(json_string_value(kind), "session_end")) {
		v->ended = true;
		return check_end(v, i, data);
	}
	return 0;
}

static int read_all(const char *path, char **out, size_t *len, nono_error *err)
{
	cleanup_fd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return nono_fail(err, -errno, "%s: %s", path, strerror(errno));
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (!buf)
		return nono_fail(err, -ENOMEM, "out of memory");
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int nono_ledger_verify(const char *path, nono_ledger_summary *out, nono_error *err)
{
	nono_error_clear(err);
	cleanup_free char *buf = NULL;
	size_t len = 0;
	int rc = read_all(path, &buf, &len, err);
	struct vstate v = {.err = err};
	size_t i = 0;
	for (char *p = buf; rc == 0 && p && *p; i++) {
		char *nl = strchr(p, '\n');
		if (!nl) {
			rc = bad(&v, i, "cut short (no end of line)");
			break;
		}
		*nl = '\0';
		json_t *rec = json_loads(p, JSON_REJECT_DUPLICATES, NULL);
		rc = rec ? check_record(&v, i, rec) : bad(&v, i, "not JSON");
		json_decref(rec);
		p = nl + 1;
	}
	if (rc == 0 && !v.ended)
		rc = nono_fail(err, -EBADMSG, "no session_end record: the ledger was cut after record "
			       "%zu (or its session is still running)", i ? i - 1 : 0);
	if (out) {
		memset(out, 0, sizeof *out);
		out->records = v.n;
		out->finished = v.ended;
		if (v.n)
			nono_sha256_hex(v.h[v.n - 1], out->chain_head);
		if (v.n && ledger_merkle(v.h, v.n - (v.ended ? 1 : 0), v.h[0]) == 0)
			nono_sha256_hex(v.h[0], out->merkle_root);
	}
	free(v.h);
	return rc;
}
