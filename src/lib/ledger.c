/* ledger.c — the session ledger: an append-only file of JSON lines, each record hash-chained to
 * the one before it and the session closed by a Merkle root over all of them.
 *
 * A record is one line, keys sorted, no spaces:
 *   {"data":{...},"hash":"<hex>","kind":"<kind>","prev":"<hex>"|null,"seq":N,"ts_ms":T}
 * where hash = SHA-256 of the same object without "hash", dumped the same way (jansson,
 * JSON_COMPACT | JSON_SORT_KEYS), so every field, the sequence number and the link to the previous
 * record are covered. The last record is "session_end"; its data holds "count" (the records before
 * it) and "merkle_root" over their hashes (leaf SHA-256(0x00 || hash), node SHA-256(0x01 || l || r),
 * an odd node carried up). Verification: ledger_verify.c. */
#include "internal.h"
#include "ledger_int.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

struct nono_ledger {
	int fd;
	uint64_t seq;
	uint8_t prev[32];
	uint8_t (*hashes)[32];
	size_t cap;
};

int ledger_record_hash(json_t *rec, uint8_t out[32])
{
	char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	if (!text)
		return -ENOMEM;
	int rc = nono_sha256_buf(text, strlen(text), out);
	free(text);
	return rc;
}

int ledger_merkle(uint8_t (*h)[32], size_t n, uint8_t root[32])
{
	if (n == 0)
		return nono_sha256_buf("", 0, root);
	cleanup_free uint8_t(*level)[32] = malloc(n * 32);
	if (!level)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint8_t leaf[33] = {0};
		memcpy(leaf + 1, h[i], 32);
		rc = nono_sha256_buf(leaf, sizeof leaf, level[i]);
	}
	while (rc == 0 && n > 1) {
		size_t m = 0;
		for (size_t i = 0; i < n && rc == 0; i += 2, m++) {
			uint8_t node[65] = {1};
			if (i + 1 == n) {
				memmove(level[m], level[i], 32);
				continue;
			}
			memcpy(node + 1, level[i], 32);
			memcpy(node + 33, level[i + 1], 32);
			rc = nono_sha256_buf(node, sizeof node, level[m]);
		}
		n = m;
	}
	if (rc == 0)
		memcpy(root, level[0], 32);
	return rc;
}

int nono_ledger_create(const char *path, nono_ledger **out, nono_error *err)
{
	nono_error_clear(err);
	*out = NULL;
	nono_ledger *l = calloc(1, sizeof *l);
	if (!l)
		return nono_fail(err, -ENOMEM, "out of memory");
	l->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		int e = errno;
		free(l);
		return nono_fail(err, -e, "%s: %s", path, strerror(e));
	}
	*out = l;
	return 0;
}

void nono_ledger_free(nono_ledger *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l->hashes);
	free(l);
}

#define CANON (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

/* The record's text, with `hash_hex` ("hash" in its sorted place) or without it (NULL: the text
 * that is hashed). Byte for byte what json_dumps(rec, CANON) gives (ledger_record_hash, which
 * ledger_verify.c uses), but the data, a 17 KB object for a session_start, is dumped once by the
 * caller rather than once per form (issue 10's startup target). */
static char *record_text(const char *data, const char *kind, const char *prev, uint64_t seq,
			 json_int_t ts, const char *hash_hex)
{
	char *out = NULL;
	int n = asprintf(&out, "{\"data\":%s%s%s%s,\"kind\":%s,\"prev\":%s,\"seq\":%" PRIu64
			 ",\"ts_ms\":%" JSON_INTEGER_FORMAT "}\n", data,
			 hash_hex ? ",\"hash\":\"" : "", hash_hex ? hash_hex : "", hash_hex ? "\"" : "",
			 kind, prev, seq, ts);
	return n < 0 ? NULL : out;
}

/* Append a record whose data is `dtext`, a JSON object in canonical form. */
static int append_text(nono_ledger *l, const char *kind, const char *dtext, nono_error *err)
{
	char prev[67] = "null", hex[65];
	if (l->seq) {
		prev[0] = '"';
		nono_sha256_hex(l->prev, prev + 1);
		memcpy(prev + 65, "\"", 2);
	}
	json_t *kj = json_string(kind);
	cleanup_free char *ktext = kj ? json_dumps(kj, CANON | JSON_ENCODE_ANY) : NULL;
	json_decref(kj);
	json_int_t ts = (json_int_t)nono_now_unix_ms();
	cleanup_free char *htext = ktext ? record_text(dtext, ktext, prev, l->seq, ts, NULL) : NULL;
	if (!htext)
		return nono_fail(err, -ENOMEM, "ledger: cannot build the record");
	uint8_t h[32];
	/* Hashed without the newline, as ledger_record_hash dumps it. */
	if (nono_sha256_buf(htext, strlen(htext) - 1, h) < 0)
		return nono_fail(err, -EIO, "ledger: hashing failed");
	nono_sha256_hex(h, hex);
	cleanup_free char *line = record_text(dtext, ktext, prev, l->seq, ts, hex);
	if (!line)
		return nono_fail(err, -ENOMEM, "ledger: out of memory");
	size_t len = strlen(line); /* one write per record (O_APPEND: whole lines) */
	ssize_t w = write(l->fd, line, len);
	if (w != (ssize_t)len)
		return nono_fail(err, w < 0 ? -errno : -EIO, "ledger: write: %s",
				 w < 0 ? strerror(errno) : "short");
	if (l->seq == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		uint8_t(*nv)[32] = realloc(l->hashes, nc * 32);
		if (!nv)
			return nono_fail(err, -ENOMEM, "out of memory");
		l->hashes = nv;
		l->cap = nc;
	}
	memcpy(l->hashes[l->seq++], h, 32);
	memcpy(l->prev, h, 32);
	return 0;
}

/* Append a record whose data is `data` (reference stolen). */
static int append(nono_ledger *l, const char *kind, json_t *data, nono_error *err)
{
	char *dtext = data ? json_dumps(data, CANON) : NULL;
	json_decref(data);
	int rc = dtext ? append_text(l, kind, dtext, err)
		       : nono_fail(err, -ENOMEM, "ledger: cannot build the record");
	free(dtext);
	return rc;
}

int nono_ledger_append(nono_ledger *l, const char *kind, const char *data_json, nono_error *err)
{
	nono_error_clear(err);
	if (!kind || !*kind || !strcmp(kind, "session_end"))
		return nono_fail(err, -EINVAL, "ledger: bad record kind (session_end is written by "
				 "nono_ledger_finish)");
	/* Already canonical (the CLI dumps its records so): used as it is, no parse and re-dump. */
	if (data_json && ledger_is_canonical_object(data_json))
		return append_text(l, kind, data_json, err);
	json_error_t je;
	json_t *data = json_loads(data_json ? data_json : "{}", JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(data)) {
		json_decref(data);
		return nono_fail(err, -EINVAL, "ledger: record data must be a JSON object (%s)", je.text);
	}
	return append(l, kind, data, err);
}

int nono_ledger_append_event(nono_ledger *l, const nono_audit_event *ev, nono_error *err)
{
	char line[NONO_AUDIT_LINE_MAX];
	int rc = nono_audit_event_format(ev, line, sizeof line);
	if (rc < 0)
		return nono_fail(err, rc, "ledger: cannot format an audit event");
	return nono_ledger_append(l, "audit_event", line, err);
}

int nono_ledger_finish(nono_ledger *l, const char *data_json, nono_ledger_summary *out,
		       nono_error *err)
{
	nono_error_clear(err);
	json_t *data = json_loads(data_json ? data_json : "{}", JSON_REJECT_DUPLICATES, NULL);
	uint8_t root[32];
	char hex[65];
	int rc = json_is_object(data) ? ledger_merkle(l->hashes, l->seq, root)
				       : nono_fail(err, -EINVAL, "ledger: end data must be a JSON object");
	if (rc == 0) {
		nono_sha256_hex(root, hex);
		json_object_set_new(data, "count", json_integer((json_int_t)l->seq));
		json_object_set_new(data, "merkle_root", json_string(hex));
		rc = append(l, "session_end", data, err);
		data = NULL;
	} else if (rc != -EINVAL) {
		nono_fail(err, rc, "ledger: hashing failed");
	}
	json_decref(data);
	if (rc == 0 && out) {
		memset(out, 0, sizeof *out);
		out->records = l->seq;
		out->finished = true;
		nono_sha256_hex(l->prev, out->chain_head);
		memcpy(out->merkle_root, hex, sizeof hex);
	}
	return rc;
}
