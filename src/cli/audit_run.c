/* audit_run.c — the session ledger of `nono run` (library: nono_ledger_*). Every run records, in
 * $XDG_STATE_HOME/nono/audit/ID/ledger.jsonl: a session_start (command, working directory, the
 * resolved grants and where each came from, network mode and proxy settings, the executable's
 * path and SHA-256, the rollback session and its roots), every supervisor and proxy decision
 * (audit_event), and a session_end (exit status, events lost, Merkle root); session.json next to
 * it summarises the session in nono-py's SessionMetadata shape. */
#include "audit_run.h"
#include "jsonstr.h"
#include "policy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


static json_t *strv(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, cli_json_str(v[i]));
	return a;
}

static json_t *grants_json(const nono_caps *caps)
{
	json_t *a = json_array();
	for (size_t i = 0; i < nono_caps_grant_count(caps); i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) < 0)
			continue;
		json_array_append_new(a, json_pack("{s:o, s:o, s:s, s:s, s:s}", "path",
						   cli_json_str(g.original), "resolved",
						   cli_json_str(g.resolved), "access",
						   nono_access_name(g.access), "kind",
						   g.is_file ? "file" : "directory", "source",
						   policy_is_system_path(g.original) ? "system" : "user"));
	}
	return a;
}

/* ---- the grants as canonical text, written directly ----
 * json_pack of ~170 grant objects (/etc entry by entry) and their sorted, escaped dump were ~0.7 ms
 * of every `nono run` (issue 10's startup target). The same text is written here without jansson
 * for what needs no \u escape (printable ASCII: every path on a usual system); anything else makes
 * grants_text return NULL and start_record takes the jansson path as before. ledger_canon.c checks
 * the whole record again before the ledger takes it as it is. */
struct tbuf {
	char *p;
	size_t n, cap;
	bool bad; /* out of memory, or a string jansson would write with a \u escape */
};

static void t_put(struct tbuf *b, const char *s, size_t n)
{
	if (b->bad)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t nc = (b->cap ? b->cap * 2 : 16384) + n;
		char *np = realloc(b->p, nc);
		if (!np) {
			b->bad = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* A JSON string as json_dumps(JSON_ENSURE_ASCII) writes it, or bad. */
static void t_str(struct tbuf *b, const char *s)
{
	static const char esc[] = "\"\\\b\f\n\r\t", rep[] = "\"\\bfnrt";
	t_put(b, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			continue;
		t_put(b, run, (size_t)(s - run));
		if (!c)
			break;
		const char *e = strchr(esc, c);
		if (c >= 0x7f || !e) { /* non-ASCII or DEL, or a control character without a short form */
			b->bad = true;
			return;
		}
		char two[2] = {'\\', rep[e - esc]};
		t_put(b, two, 2);
		run = s + 1;
	}
	t_put(b, "\"", 1);
}

/* The text json_dumps(grants_json(caps), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) would
 * print (keys in byte order: access, kind, path, resolved, source), or NULL. malloc'd. */
static char *grants_text(const nono_caps *caps)
{
	struct tbuf b = {0};
	t_put(&b, "[", 1);
	size_t n = nono_caps_grant_count(caps);
	for (size_t i = 0; i < n && !b.bad; i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) < 0 || !nono_access_name(g.access)) {
			b.bad = true; /* grants_json would leave it out: let it */
			break;
		}
		t_put(&b, i ? ",{\"access\":" : "{\"access\":", i ? 11 : 10);
		t_str(&b, nono_access_name(g.access));
		t_put(&b, ",\"kind\":", 8);
		t_str(&b, g.is_file ? "file" : "directory");
		t_put(&b, ",\"path\":", 8);
		t_str(&b, g.original);
		t_put(&b, ",\"resolved\":", 12);
		t_str(&b, g.resolved);
		t_put(&b, ",\"source\":", 10);
		t_str(&b, policy_is_system_path(g.original) ? "system" : "user");
		t_put(&b, "}", 1);
	}
	t_put(&b, "]", 1);
	if (b.bad) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* `text` (a canonical dump with "grants":null) with the grants' text in the placeholder's place;
 * NULL when the placeholder is not found exactly once (then the jansson path). malloc'd. */
static char *splice_grants(const char *text, const char *grants)
{
	static const char mark[] = ",\"grants\":null,";
	const char *at = strstr(text, mark);
	if (!at || strstr(at + 1, mark))
		return NULL;
	char *out = NULL;
	if (asprintf(&out, "%.*s,\"grants\":%s,%s", (int)(at - text), text, grants,
		     at + sizeof mark - 1) < 0)
		return NULL;
	return out;
}

static json_t *network_json(const struct run_opts *o, const nono_caps *caps)
{
	uint16_t port = 0;
	nono_net_mode m = nono_caps_network(caps, &port);
	json_t *binds = json_array();
	for (size_t i = 0; i < o->nbinds; i++)
		json_array_append_new(binds, json_integer(o->binds[i]));
	return json_pack("{s:s, s:i, s:b, s:o, s:o, s:o, s:o}", "mode", nono_net_mode_name(m),
			 "proxy_port", port, "in_process_proxy", o->domains.n > 0, "allowed_domains",
			 strv(o->domains.v, o->domains.n), "allow_internal",
			 strv(o->internal.v, o->internal.n), "unix_sockets",
			 strv(o->unix_socks.v, o->unix_socks.n), "bind_ports", binds);
}

static json_t *identity_json(const struct run_opts *o, const char *const *env, const char *base)
{
	char *path = NULL, cache[PATH_MAX + 16];
	uint8_t h[32];
	char hex[65];
	nono_error err = {0};
	/* Programs' hashes are remembered beside the sessions (.exe-cache, keyed by device and
	 * inode, checked against size, mtime and ctime): hashing python3 cost more than the run. */
	snprintf(cache, sizeof cache, "%s/.exe-cache", base);
	if (mkdir(cache, 0700) < 0 && errno != EEXIST)
		cache[0] = '\0';
	if (nono_exec_identity_cached(o->cmd[0], env, o->inherit_env, o->workdir,
				      cache[0] ? cache : NULL, &path, h, &err) < 0)
		return json_pack("{s:n, s:n, s:o}", "resolved_path", "sha256", "error",
				 cli_json_str(err.message));
	nono_sha256_hex(h, hex);
	json_t *j = json_pack("{s:o, s:s}", "resolved_path", cli_json_str(path), "sha256", hex);
	free(path);
	return j;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return n == 1 || (!strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0'));
}

/* The ledger must be out of the command's reach: a writable grant covering it means no ledger. */
static bool reachable(const nono_caps *caps, const char *dir)
{
	for (size_t i = 0; i < nono_caps_grant_count(caps); i++) {
		nono_grant g;
		if (nono_caps_grant(caps, i, &g) == 0 && (g.access & NONO_ACCESS_WRITE) &&
		    (g.is_file ? under(g.resolved, dir) : under(dir, g.resolved)))
			return true;
	}
	return false;
}

static void iso_now(char buf[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int make_session(struct audit_run *a, const char *base, const char *id)
{
	char gen[64];
	if (!id) {
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		size_t k = strftime(gen, sizeof gen, "%Y%m%d-%H%M%S", &tm);
		snprintf(gen + k, sizeof gen - k, "-%d", (int)getpid());
		id = gen;
	}
	if (asprintf(&a->dir, "%s/%s", base, id) < 0 || !(a->id = strdup(id)))
		return -ENOMEM;
	return mkdir(a->dir, 0700) < 0 ? -errno : 0;
}

static int start_record(struct audit_run *a, const struct run_opts *o, const nono_caps *caps,
			const char *const *env, const struct rb_run *rb, const char *base)
{
	char cwd[PATH_MAX] = "", now[32];
	iso_now(now);
	if (!o->workdir && !getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	json_t *rbj = json_null();
	if (rb && rb->id)
		rbj = json_pack("{s:s, s:O}", "session", rb->id, "roots",
				json_object_get(rb->meta, "tracked_paths"));
	char *gtext = grants_text(caps);
	json_t *d = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:f}", "started", now, "command",
			      strv((const char *const *)o->cmd, (size_t)o->ncmd), "cwd",
			      cli_json_str(o->workdir ? o->workdir : cwd), "grants",
			      gtext ? json_null() : grants_json(caps), "network", network_json(o, caps),
			      "executable", identity_json(o, env, base), "rollback", rbj, "timeout",
			      o->timeout);
	/* Canonical (sorted, ASCII): the ledger then takes the text as it is (ledger_canon.c). */
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
	if (text && gtext) {
		char *whole = splice_grants(text, gtext);
		free(text);
		if (!whole) /* not where it was expected: the grants through jansson after all */
			json_object_set_new(d, "grants", grants_json(caps));
		text = whole ? whole
			     : json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	}
	free(gtext);
	nono_error err = {0};
	int rc = text ? nono_ledger_append(a->ledger, "session_start", text, &err) : -ENOMEM;
	json_t *tracked = rb && rb->meta ? json_incref(json_object_get(rb->meta, "tracked_paths"))
					 : json_array();
	a->meta = json_pack("{s:s, s:s, s:n, s:O, s:O, s:o, s:i, s:n, s:[], s:[], s:i, s:n, s:n}",
			    "session_id", a->id, "started", now, "ended", "command",
			    json_object_get(d, "command"), "executable_identity",
			    json_object_get(d, "executable"), "tracked_paths", tracked,
			    "snapshot_count", 0, "exit_code", "merkle_roots", "network_events",
			    "audit_event_count", 0, "audit_integrity", "audit_attestation");
	free(text);
	json_decref(d);
	return rc < 0 || !a->meta ? -1 : 0;
}

int audit_run_begin(const struct run_opts *o, const nono_caps *caps, const char *const *env,
		    const struct rb_run *rb, struct audit_run *a)
{
	char base[PATH_MAX];
	if (o->no_ledger || rb_state_dir("audit", base, sizeof base) < 0)
		return 0;
	if (reachable(caps, base)) {
		cli_err("ledger: not recorded: a writable grant reaches %s (set XDG_STATE_HOME outside "
			"every writable grant)", base);
		return 0;
	}
	char path[PATH_MAX + 400];
	nono_error err = {0};
	int rc = make_session(a, base, rb && rb->id ? rb->id : NULL);
	snprintf(path, sizeof path, "%s/ledger.jsonl", a->dir ? a->dir : "");
	if (rc == 0)
		rc = nono_ledger_create(path, &a->ledger, &err);
	if (rc == 0)
		rc = start_record(a, o, caps, env, rb, base);
	if (rc == 0 && !(a->ring = nono_audit_new(AUDIT_RUN_RING_CAPACITY)))
		rc = -ENOMEM;
	if (rc < 0) {
		cli_err("ledger: not recorded: %s", err.message[0] ? err.message : strerror(-rc));
		audit_run_free(a);
	}
	return 0;
}

static int ev_cmp(const void *x, const void *y)
{
	const nono_audit_event *a = x, *b = y;
	return (a->timestamp_unix_ms > b->timestamp_unix_ms) - (a->timestamp_unix_ms < b->timestamp_unix_ms);
}

/* Drain `ring` into *v (grown). */
static void drain(nono_audit *ring, nono_audit_event **v, size_t *n, size_t *cap)
{
	for (;;) {
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			nono_audit_event *nv = realloc(*v, nc * sizeof *nv);
			if (!nv)
				return;
			*v = nv;
			*cap = nc;
		}
		size_t got = nono_audit_drain(ring, *v + *n, *cap - *n);
		*n += got;
		if (got == 0)
			return;
	}
}

/* Append the decisions, in time order; proxy decisions also go to session.json's
 * network_events. Returns the events lost. */
static uint64_t record_events(struct audit_run *a, nono_proxy *proxy, size_t *count)
{
	nono_audit_event *v = NULL;
	size_t n = 0, cap = 0;
	drain(a->ring, &v, &n, &cap);
	uint64_t lost = nono_audit_dropped(a->ring) + a->lost_before;
	if (proxy) {
		drain(nono_proxy_audit(proxy), &v, &n, &cap);
		lost += nono_audit_dropped(nono_proxy_audit(proxy));
	}
	if (n > 1)
		qsort(v, n, sizeof *v, ev_cmp);
	json_t *net = json_object_get(a->meta, "network_events");
	for (size_t i = 0; i < n; i++) {
		nono_error err = {0};
		char line[NONO_AUDIT_LINE_MAX];
		if (nono_ledger_append_event(a->ledger, &v[i], &err) < 0) {
			cli_err("ledger: %s", err.message);
			lost++;
			continue;
		}
		++*count;
		if (!strcmp(v[i].source, "proxy") && nono_audit_event_format(&v[i], line, sizeof line) >= 0)
			json_array_append_new(net, json_loads(line, 0, NULL));
	}
	free(v);
	return lost;
}

void audit_run_end(struct audit_run *a, nono_proxy *proxy, int status)
{
	if (!a->ledger)
		return;
	size_t count = 0;
	uint64_t lost = record_events(a, proxy, &count);
	char now[32], *end = NULL;
	iso_now(now);
	json_t *d = json_pack("{s:s, s:i, s:I, s:I}", "ended", now, "exit_code", status, "events",
			      (json_int_t)count, "events_lost", (json_int_t)lost);
	end = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	nono_ledger_summary sum;
	nono_error err = {0};
	if (!end || nono_ledger_finish(a->ledger, end, &sum, &err) < 0) {
		cli_err("ledger: cannot close %s: %s", a->dir, err.message);
		free(end);
		return;
	}
	free(end);
	if (lost)
		cli_err("ledger: %llu decision(s) were lost (the event ring overflowed)",
			(unsigned long long)lost);
	json_object_set_new(a->meta, "ended", json_string(now));
	json_object_set_new(a->meta, "exit_code", json_integer(status));
	json_object_set_new(a->meta, "audit_event_count", json_integer((json_int_t)count));
	json_object_set_new(a->meta, "audit_integrity",
			    json_pack("{s:s, s:I, s:s, s:s}", "hash_algorithm", "sha256", "event_count",
				      (json_int_t)sum.records, "chain_head", sum.chain_head,
				      "merkle_root", sum.merkle_root));
	if (rb_meta_save(a->dir, a->meta) < 0)
		cli_err("ledger: cannot write %s/session.json", a->dir);
}

void audit_run_free(struct audit_run *a)
{
	nono_ledger_free(a->ledger);
	nono_audit_free(a->ring);
	json_decref(a->meta);
	free(a->dir);
	free(a->id);
	memset(a, 0, sizeof *a);
}
