/* caps_query.c — pure-policy questions over a capability set (nothing here touches the sandbox):
 * is a path covered, what does a path or the network allow, and a one-line summary. Rights add up
 * along the hierarchy, as Landlock does. */
#include "caps_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Lexically normalise an absolute path: collapse "//", ".", "..". Returns malloc'd or NULL. */
static char *lexical_normalise(const char *abs)
{
	size_t n = strlen(abs);
	char *out = malloc(n + 2);
	if (!out)
		return NULL;
	size_t o = 0;
	const char *p = abs;
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - s);
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--; /* drop the separator too; ".." at the root stays at the root */
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* The path the policy decisions are made on: realpath() when it resolves. Otherwise the path is made
 * absolute, its longest prefix that resolves is canonicalised (as the kernel would walk it: symlinks
 * and ".." through symlinks included), and the rest — which starts at a component that does not
 * exist — is appended and normalised lexically. So a not-yet-created file below a symlinked directory
 * is judged where it would really be created. malloc'd, or NULL with errno set. */
static char *decision_path(const char *path)
{
	if (!path || !*path) {
		errno = EINVAL;
		return NULL;
	}
	char *r = realpath(path, NULL);
	if (r)
		return r;
	cleanup_free char *abs = NULL;
	if (path[0] == '/') {
		abs = strdup(path);
	} else {
		cleanup_free char *cwd = getcwd(NULL, 0);
		if (!cwd)
			return NULL;
		if (asprintf(&abs, "%s/%s", cwd, path) < 0)
			abs = NULL;
	}
	if (!abs)
		return NULL;
	size_t cut = strlen(abs);
	while (cut > 0) {
		const char *slash = memrchr(abs, '/', cut);
		if (!slash)
			break;
		cut = (size_t)(slash - abs); /* prefix is abs[0, cut), "/" when cut == 0 */
		size_t end = cut ? cut : 1;
		char saved = abs[end];
		abs[end] = '\0';
		cleanup_free char *pre = realpath(abs, NULL);
		abs[end] = saved;
		if (pre) {
			cleanup_free char *joined = NULL;
			if (asprintf(&joined, "%s%s", pre, abs + cut) < 0)
				return NULL;
			return lexical_normalise(joined);
		}
	}
	return lexical_normalise(abs);
}

/* Does grant `g` cover the canonical path `p`? A directory covers itself and everything below it
 * ("/a/bc" is not below "/a/b"); a file grant covers only itself. */
bool nono_path_within(const char *path, const char *grant, bool grant_is_dir)
{
	size_t n = strlen(grant);
	if (strncmp(grant, path, n) != 0)
		return false;
	if (path[n] == '\0')
		return true;
	if (!grant_is_dir)
		return false;
	return path[n] == '/' || (n == 1 && grant[0] == '/');
}

static bool grant_covers(const struct grant *g, const char *p)
{
	return nono_path_within(p, g->resolved, !g->is_file);
}

bool nono_caps_path_covered(const nono_caps *caps, const char *path)
{
	if (!caps)
		return false;
	cleanup_free char *p = decision_path(path);
	if (!p)
		return false;
	for (size_t i = 0; i < caps->ngrants; i++)
		if (grant_covers(&caps->grants[i], p))
			return true;
	return false;
}

/* A growing string for the summary. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = (b->cap ? b->cap : 64);
		while (ncap <= b->len + (size_t)n)
			ncap *= 2;
		char *s = realloc(b->s, ncap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = ncap;
	}
}

char *nono_caps_summary(const nono_caps *caps)
{
	static const nono_caps empty = { .net = NONO_NET_ALLOWED };
	if (!caps)
		caps = &empty;
	struct sbuf b = { 0 };
	size_t count[4] = { 0 };
	for (size_t i = 0; i < caps->ngrants; i++)
		count[caps->grants[i].access & 3]++;
	sb_printf(&b, "%zu path%s", caps->ngrants, caps->ngrants == 1 ? "" : "s");
	if (caps->ngrants) {
		const char *sep = " (";
		static const nono_access order[] = { NONO_ACCESS_READ, NONO_ACCESS_WRITE,
						     NONO_ACCESS_READ_WRITE };
		for (size_t k = 0; k < 3; k++) {
			if (!count[order[k]])
				continue;
			sb_printf(&b, "%s%zu %s", sep, count[order[k]], nono_caps_access_label(order[k]));
			sep = ", ";
		}
		sb_printf(&b, ")");
	}
	switch (caps->net) {
	case NONO_NET_ALLOWED: sb_printf(&b, ", network: allowed"); break;
	case NONO_NET_BLOCKED: sb_printf(&b, ", network: blocked"); break;
	case NONO_NET_PROXY_ONLY:
		sb_printf(&b, ", network: proxy-only(%u)", (unsigned)caps->proxy_port);
		break;
	}
	if (caps->nsocks)
		sb_printf(&b, ", %zu unix socket%s", caps->nsocks, caps->nsocks == 1 ? "" : "s");
	for (size_t i = 0; i < caps->nports; i++)
		sb_printf(&b, "%s%u", i == 0 ? ", bind: " : ",", (unsigned)caps->ports[i]);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* Landlock unites the rights of every rule along a path's hierarchy (a read-write grant on /home/u
 * still allows writing in /home/u/proj even if /home/u/proj is also granted read only), so the query
 * does the same: the request is allowed when the union of covering grants includes it. The grant
 * named is the most specific covering one that holds all of the requested rights on its own, else
 * the most specific covering one. */
int nono_caps_query_path(const nono_caps *caps, const char *path, nono_access access,
			 nono_decision *out, nono_error *err)
{
	if (!out)
		return nono_fail(err, -EINVAL, "decision output is NULL");
	memset(out, 0, sizeof *out);
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	if (!path || !*path)
		return nono_fail(err, -EINVAL, "empty path");
	if (!nono_access_name(access))
		return nono_fail(err, -EINVAL, "invalid access mode %d (expected read, write or "
				 "read-write)", (int)access);
	cleanup_free char *p = decision_path(path);
	if (!p) {
		int e = errno ? errno : ENOMEM;
		return nono_fail(err, -e, "cannot make %s absolute: %s", path, strerror(e));
	}
	out->requested = access;
	const char *denied = nono_caps_denied_by(caps, p);
	if (denied) {
		out->allowed = false;
		out->code = "path_denied";
		snprintf(out->reason, sizeof out->reason, "%.200s is denied (deny path)", denied);
		return 0;
	}
	if ((access & NONO_ACCESS_WRITE) && nono_mounts_write_blocked(caps, p)) {
		out->allowed = false;
		out->code = "insufficient_access";
		out->granted = NONO_ACCESS_READ;
		snprintf(out->reason, sizeof out->reason,
			 "inside a read-only grant within a writable one (bound read-only)");
		return 0;
	}
	unsigned have = 0;
	const struct grant *best = NULL, *best_full = NULL;
	for (size_t i = 0; i < caps->ngrants; i++) {
		const struct grant *g = &caps->grants[i];
		if (!grant_covers(g, p))
			continue;
		have |= g->access;
		/* Longer resolved path = more specific; a file grant equal to p is the most specific. */
		if (!best || strlen(g->resolved) > strlen(best->resolved) ||
		    (strlen(g->resolved) == strlen(best->resolved) && g->is_file && !best->is_file))
			best = g;
		if ((g->access & access) == access &&
		    (!best_full || strlen(g->resolved) > strlen(best_full->resolved) ||
		     (strlen(g->resolved) == strlen(best_full->resolved) && g->is_file &&
		      !best_full->is_file)))
			best_full = g;
	}
	out->requested = access;
	out->granted = (nono_access)have;
	if (!best) {
		out->allowed = false;
		out->code = "path_not_granted";
		snprintf(out->reason, sizeof out->reason, "no grant covers %s", p);
	} else if ((have & access) == (unsigned)access) {
		out->allowed = true;
		out->code = "granted_path";
		const struct grant *g = best_full ? best_full : best;
		snprintf(out->grant, sizeof out->grant, "%s", g->resolved);
		if (best_full)
			snprintf(out->reason, sizeof out->reason, "granted %s by %s",
				 nono_caps_access_label(g->access), g->resolved);
		else
			snprintf(out->reason, sizeof out->reason, "granted %s by nested grants "
				 "(most specific: %s)", nono_caps_access_label(access), g->resolved);
	} else {
		out->allowed = false;
		out->code = "insufficient_access";
		snprintf(out->grant, sizeof out->grant, "%s", best->resolved);
		snprintf(out->reason, sizeof out->reason, "%s is granted %s only", p,
			 nono_caps_access_label((nono_access)have));
	}
	nono_error_clear(err);
	return 0;
}

void nono_caps_query_network(const nono_caps *caps, nono_decision *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof *out);
	uint16_t port = 0;
	switch (nono_caps_network(caps, &port)) {
	case NONO_NET_ALLOWED:
		out->allowed = true;
		out->code = "network_allowed";
		snprintf(out->reason, sizeof out->reason, "network allowed");
		break;
	case NONO_NET_BLOCKED:
		out->code = "network_blocked";
		snprintf(out->reason, sizeof out->reason, "network blocked");
		break;
	case NONO_NET_PROXY_ONLY: {
		out->code = "network_proxy_only";
		/* Never a port that will not be used: 0 means chosen when the proxy starts. */
		const char *a = nono_caps_proxy_address(caps);
		bool v6 = strchr(a, ':') != NULL;
		size_t ni = nono_caps_internal_count(caps);
		char extra[64] = "";
		if (ni)
			snprintf(extra, sizeof extra, ", and %zu internal address%s directly", ni,
				 ni == 1 ? "" : "es");
		if (port)
			snprintf(out->reason, sizeof out->reason, "only the proxy on %s%s%s:%u%s",
				 v6 ? "[" : "", a, v6 ? "]" : "", (unsigned)port, extra);
		else
			snprintf(out->reason, sizeof out->reason,
				 "only the proxy on %s (its port is chosen when it starts)%s", a, extra);
		break;
	}
	}
}
