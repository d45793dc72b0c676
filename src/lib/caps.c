/* caps.c — capability sets: filesystem grants, network mode, unix sockets, bind ports; and the
 * pure-policy queries over them (nothing here touches the sandbox itself).
 *
 * Paths are canonicalised with realpath(3) when granted, so a grant names the object the kernel will
 * see: Landlock attaches rules to inodes opened by path (landlock.c opens `resolved`), and a symlink
 * granted by name would otherwise silently mean a different place than the user read in the policy.
 */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct grant {
	char *original;
	char *resolved;
	nono_access access;
	bool is_file;
};

struct nono_caps {
	struct grant *grants;
	size_t ngrants, grants_cap;
	nono_net_mode net;
	uint16_t proxy_port;
	char **socks; /* canonical unix socket paths (socket files or directories) */
	size_t nsocks;
	uint16_t *ports; /* loopback bind ports, unique, in insertion order */
	size_t nports;
};

nono_caps *nono_caps_new(void)
{
	nono_caps *c = calloc(1, sizeof *c);
	if (c)
		c->net = NONO_NET_ALLOWED;
	return c;
}

void nono_caps_free(nono_caps *caps)
{
	if (!caps)
		return;
	for (size_t i = 0; i < caps->ngrants; i++) {
		free(caps->grants[i].original);
		free(caps->grants[i].resolved);
	}
	free(caps->grants);
	for (size_t i = 0; i < caps->nsocks; i++)
		free(caps->socks[i]);
	free(caps->socks);
	free(caps->ports);
	free(caps);
}

nono_caps *nono_caps_clone(const nono_caps *caps)
{
	if (!caps)
		return NULL;
	nono_caps *c = nono_caps_new();
	if (!c)
		return NULL;
	c->net = caps->net;
	c->proxy_port = caps->proxy_port;
	if (caps->ngrants) {
		c->grants = calloc(caps->ngrants, sizeof *c->grants);
		if (!c->grants)
			goto oom;
		c->grants_cap = caps->ngrants;
		for (size_t i = 0; i < caps->ngrants; i++) {
			struct grant *d = &c->grants[i];
			const struct grant *s = &caps->grants[i];
			d->original = strdup(s->original);
			d->resolved = strdup(s->resolved);
			d->access = s->access;
			d->is_file = s->is_file;
			c->ngrants++;
			if (!d->original || !d->resolved)
				goto oom;
		}
	}
	if (caps->nsocks) {
		c->socks = calloc(caps->nsocks, sizeof *c->socks);
		if (!c->socks)
			goto oom;
		for (size_t i = 0; i < caps->nsocks; i++) {
			c->socks[i] = strdup(caps->socks[i]);
			c->nsocks++;
			if (!c->socks[i])
				goto oom;
		}
	}
	if (caps->nports) {
		c->ports = malloc(caps->nports * sizeof *c->ports);
		if (!c->ports)
			goto oom;
		memcpy(c->ports, caps->ports, caps->nports * sizeof *c->ports);
		c->nports = caps->nports;
	}
	return c;
oom:
	nono_caps_free(c);
	return NULL;
}

static bool access_valid(nono_access a)
{
	return a == NONO_ACCESS_READ || a == NONO_ACCESS_WRITE || a == NONO_ACCESS_READ_WRITE;
}

const char *nono_access_name(nono_access a)
{
	switch (a) {
	case NONO_ACCESS_READ: return "read";
	case NONO_ACCESS_WRITE: return "write";
	case NONO_ACCESS_READ_WRITE: return "read-write";
	}
	return NULL;
}

const char *nono_net_mode_name(nono_net_mode m)
{
	switch (m) {
	case NONO_NET_ALLOWED: return "allowed";
	case NONO_NET_BLOCKED: return "blocked";
	case NONO_NET_PROXY_ONLY: return "proxy-only";
	}
	return NULL;
}

/* For messages about values already validated. */
static const char *access_name(nono_access a)
{
	const char *n = nono_access_name(a);
	return n ? n : "?";
}

/* realpath() with errors turned into -errno + a message naming `path`. *out is malloc'd. */
static int canonicalise(const char *path, char **out, struct stat *st, nono_error *err)
{
	if (strlen(path) >= PATH_MAX)
		return nono_fail(err, -ENAMETOOLONG, "path too long: %.200s...", path);
	char *r = realpath(path, NULL);
	if (!r) {
		int e = errno;
		switch (e) {
		case ENOENT:
			return nono_fail(err, -ENOENT, "path does not exist: %s", path);
		case ENOMEM:
			return nono_fail(err, -ENOMEM, "out of memory resolving %s", path);
		default:
			return nono_fail(err, -e, "cannot resolve %s: %s", path, strerror(e));
		}
	}
	if (stat(r, st) != 0) {
		int e = errno;
		int rc = nono_fail(err, -e, "cannot stat %s (resolved from %s): %s", r, path,
				   strerror(e));
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int add_grant(nono_caps *caps, const char *path, nono_access access, bool want_file,
		     nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	if (!path || !*path)
		return nono_fail(err, -EINVAL, "empty path");
	if (!access_valid(access))
		return nono_fail(err, -EINVAL, "invalid access mode %d for %s (expected read, write "
				 "or read-write)", (int)access, path);
	struct stat st;
	cleanup_free char *resolved = NULL;
	int rc = canonicalise(path, &resolved, &st, err);
	if (rc)
		return rc;
	bool is_dir = S_ISDIR(st.st_mode);
	if (want_file && is_dir)
		return nono_fail(err, -EISDIR, "%s is a directory (use a directory grant)", path);
	if (!want_file && !is_dir)
		return nono_fail(err, -ENOTDIR, "%s is not a directory (use a file grant)", path);
	if (caps->ngrants == caps->grants_cap) {
		size_t ncap = caps->grants_cap ? caps->grants_cap * 2 : 8;
		struct grant *g = realloc(caps->grants, ncap * sizeof *g);
		if (!g)
			return nono_fail(err, -ENOMEM, "out of memory");
		caps->grants = g;
		caps->grants_cap = ncap;
	}
	char *orig = strdup(path);
	if (!orig)
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->grants[caps->ngrants++] = (struct grant){
		.original = orig,
		.resolved = steal_pointer(&resolved),
		.access = access,
		.is_file = want_file,
	};
	nono_error_clear(err);
	return 0;
}

int nono_caps_allow_path(nono_caps *caps, const char *path, nono_access access, nono_error *err)
{
	return add_grant(caps, path, access, false, err);
}

int nono_caps_allow_file(nono_caps *caps, const char *path, nono_access access, nono_error *err)
{
	return add_grant(caps, path, access, true, err);
}

size_t nono_caps_grant_count(const nono_caps *caps)
{
	return caps ? caps->ngrants : 0;
}

int nono_caps_grant(const nono_caps *caps, size_t i, nono_grant *out)
{
	if (!caps || !out)
		return -EINVAL;
	if (i >= caps->ngrants)
		return -ERANGE;
	const struct grant *g = &caps->grants[i];
	*out = (nono_grant){ .original = g->original, .resolved = g->resolved, .access = g->access,
			     .is_file = g->is_file };
	return 0;
}

void nono_caps_deduplicate(nono_caps *caps)
{
	if (!caps)
		return;
	size_t kept = 0;
	for (size_t i = 0; i < caps->ngrants; i++) {
		struct grant *g = &caps->grants[i];
		size_t j;
		for (j = 0; j < kept; j++) {
			struct grant *k = &caps->grants[j];
			if (k->is_file == g->is_file && strcmp(k->resolved, g->resolved) == 0)
				break;
		}
		if (j < kept) {
			caps->grants[j].access |= g->access;
			free(g->original);
			free(g->resolved);
		} else {
			caps->grants[kept++] = *g;
		}
	}
	caps->ngrants = kept;
}

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

int nono_caps_set_network(nono_caps *caps, nono_net_mode mode, uint16_t proxy_port,
			  nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	switch (mode) {
	case NONO_NET_PROXY_ONLY:
		break; /* 0: chosen when the proxy starts (plans only; apply and exec refuse it) */
	case NONO_NET_ALLOWED:
	case NONO_NET_BLOCKED:
		if (proxy_port != 0)
			return nono_fail(err, -EINVAL, "a proxy port (%u) is only valid with "
					 "proxy-only", (unsigned)proxy_port);
		break;
	default:
		return nono_fail(err, -EINVAL, "invalid network mode %d", (int)mode);
	}
	caps->net = mode;
	caps->proxy_port = proxy_port;
	nono_error_clear(err);
	return 0;
}

nono_net_mode nono_caps_network(const nono_caps *caps, uint16_t *proxy_port)
{
	if (proxy_port)
		*proxy_port = caps ? caps->proxy_port : 0;
	return caps ? caps->net : NONO_NET_ALLOWED;
}

int nono_caps_allow_unix_socket(nono_caps *caps, const char *path, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	if (!path || !*path)
		return nono_fail(err, -EINVAL, "empty unix socket path");
	struct stat st;
	cleanup_free char *resolved = NULL;
	int rc = canonicalise(path, &resolved, &st, err);
	if (rc)
		return rc;
	if (!S_ISSOCK(st.st_mode) && !S_ISDIR(st.st_mode))
		return nono_fail(err, -EINVAL, "%s is neither a unix socket nor a directory", path);
	for (size_t i = 0; i < caps->nsocks; i++)
		if (strcmp(caps->socks[i], resolved) == 0) {
			nono_error_clear(err);
			return 0;
		}
	char **v = realloc(caps->socks, (caps->nsocks + 1) * sizeof *v);
	if (!v)
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->socks = v;
	caps->socks[caps->nsocks++] = steal_pointer(&resolved);
	nono_error_clear(err);
	return 0;
}

int nono_caps_allow_bind(nono_caps *caps, uint16_t port, nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	if (port == 0)
		return nono_fail(err, -EINVAL, "bind port must be 1..65535 (0 would allow ephemeral "
				 "ports)");
	for (size_t i = 0; i < caps->nports; i++)
		if (caps->ports[i] == port) {
			nono_error_clear(err);
			return 0;
		}
	uint16_t *v = realloc(caps->ports, (caps->nports + 1) * sizeof *v);
	if (!v)
		return nono_fail(err, -ENOMEM, "out of memory");
	caps->ports = v;
	caps->ports[caps->nports++] = port;
	nono_error_clear(err);
	return 0;
}

size_t nono_caps_unix_socket_count(const nono_caps *caps)
{
	return caps ? caps->nsocks : 0;
}

const char *nono_caps_unix_socket(const nono_caps *caps, size_t i)
{
	return caps && i < caps->nsocks ? caps->socks[i] : NULL;
}

size_t nono_caps_bind_port_count(const nono_caps *caps)
{
	return caps ? caps->nports : 0;
}

uint16_t nono_caps_bind_port(const nono_caps *caps, size_t i)
{
	return caps && i < caps->nports ? caps->ports[i] : 0;
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
			sb_printf(&b, "%s%zu %s", sep, count[order[k]], access_name(order[k]));
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
	if (!access_valid(access))
		return nono_fail(err, -EINVAL, "invalid access mode %d (expected read, write or "
				 "read-write)", (int)access);
	cleanup_free char *p = decision_path(path);
	if (!p) {
		int e = errno ? errno : ENOMEM;
		return nono_fail(err, -e, "cannot make %s absolute: %s", path, strerror(e));
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
	if (!best) {
		out->allowed = false;
		snprintf(out->reason, sizeof out->reason, "no grant covers %s", p);
	} else if ((have & access) == (unsigned)access) {
		out->allowed = true;
		const struct grant *g = best_full ? best_full : best;
		snprintf(out->grant, sizeof out->grant, "%s", g->resolved);
		if (best_full)
			snprintf(out->reason, sizeof out->reason, "granted %s by %s",
				 access_name(g->access), g->resolved);
		else
			snprintf(out->reason, sizeof out->reason, "granted %s by nested grants "
				 "(most specific: %s)", access_name(access), g->resolved);
	} else {
		out->allowed = false;
		snprintf(out->grant, sizeof out->grant, "%s", best->resolved);
		snprintf(out->reason, sizeof out->reason, "%s is granted %s only", p,
			 access_name((nono_access)have));
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
		snprintf(out->reason, sizeof out->reason, "network allowed");
		break;
	case NONO_NET_BLOCKED:
		snprintf(out->reason, sizeof out->reason, "network blocked");
		break;
	case NONO_NET_PROXY_ONLY:
		snprintf(out->reason, sizeof out->reason, "only the proxy on 127.0.0.1:%u",
			 (unsigned)port);
		break;
	}
}
