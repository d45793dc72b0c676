/* caps.c — capability sets: filesystem grants, network mode, unix sockets, bind ports, and the
 * names of access and network modes. The pure-policy queries over them are in caps_query.c.
 *
 * Paths are canonicalised with realpath(3) when granted, so a grant names the object the kernel will
 * see: Landlock attaches rules to inodes opened by path (landlock.c opens `resolved`), and a symlink
 * granted by name would otherwise silently mean a different place than the user read in the policy.
 */
#include "caps_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>


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
	nono_caps_meta_free(caps);
	for (size_t i = 0; i < caps->ngrants; i++) {
		free(caps->grants[i].original);
		free(caps->grants[i].resolved);
	}
	free(caps->grants);
	for (size_t i = 0; i < caps->nsocks; i++)
		free(caps->socks[i]);
	free(caps->socks);
	free(caps->ports);
	nono_caps_direct_free(caps);
	for (size_t i = 0; i < caps->ndenies; i++)
		free(caps->denies[i]);
	free(caps->denies);
	free(caps->pc_seen);
	free(caps->pc_orig);
	free(caps->pc_resolved);
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
	c->proxy_v6 = caps->proxy_v6;
	c->userns = caps->userns;
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
			d->dev = s->dev;
			d->ino = s->ino;
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
	if (nono_caps_direct_copy(c, caps) < 0 || nono_caps_meta_clone(c, caps) < 0)
		goto oom;
	if (caps->ndenies) {
		c->denies = calloc(caps->ndenies, sizeof *c->denies);
		if (!c->denies)
			goto oom;
		for (size_t i = 0; i < caps->ndenies; i++) {
			c->denies[i] = strdup(caps->denies[i]);
			c->ndenies++;
			if (!c->denies[i])
				goto oom;
		}
	}
	return c;
oom:
	nono_caps_free(c);
	return NULL;
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
const char *nono_caps_access_label(nono_access a)
{
	const char *n = nono_access_name(a);
	return n ? n : "?";
}

/* realpath() with errors turned into -errno + a message naming `path`. *out is malloc'd. */
static int canonicalise_full(const char *path, char **out, struct stat *st, nono_error *err)
{
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

/* A resolved parent directory is reused. realpath(3) re-walks every component of every grant
 * with a readlink each: for the ~160 entries of /etc granted one by one (sysetc.c) that was ~480
 * syscalls a `nono run` (issue 10's startup target). A run of grants in one directory resolves the
 * directory once; each later grant there checks that the directory's name still leads to the same
 * directory (stat: device and inode) and that the entry itself is no symlink (lstat). No clock is
 * involved: the answer is as fresh as realpath's own (landlock.c re-checks each grant with
 * O_NOFOLLOW when it applies).
 * A directory whose name was already canonical when cached (/etc: no symlink, "." or ".." on the
 * way) skips the stat: the result is its name + "/" + the entry, the very string realpath gives,
 * and the entry's lstat walks that name now, so it checks the directory the name leads to now.
 * A directory replaced by a symlink between two grants is then recorded by its old name, as a
 * replacement just after the grant would be; landlock.c refuses either when it opens the grant
 * (the object is not the one recorded, device and inode, nor named by the grant's path). That
 * stat was ~155 of a default run's syscalls (issue 10's startup target). */

/* `path` split at its last '/' into a parent (returned, malloc'd) and *name, when that is a plain
 * absolute path of a named entry: no "//", no "." or ".." as the entry, no trailing slash. */
static char *plain_parent(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	if (path[0] != '/' || !slash || !slash[1] || !strcmp(slash + 1, ".") ||
	    !strcmp(slash + 1, "..") || (slash > path && slash[-1] == '/'))
		return NULL;
	*name = slash + 1;
	return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

/* The cached resolution of `path`: 0 with *out set, 1 when the cache does not answer (then the
 * parent is remembered so that a second grant in it fills the cache), or -errno. */
static int canonicalise_cached(nono_caps *caps, const char *path, char **out, struct stat *st,
			       nono_error *err)
{
	const char *name;
	cleanup_free char *parent = plain_parent(path, &name);
	if (!parent)
		return 1;
	struct stat pst;
	bool same = caps->pc_orig && !strcmp(caps->pc_orig, parent);
	bool fresh = same && (caps->pc_canonical || (stat(parent, &pst) == 0 &&
						     pst.st_dev == caps->pc_dev &&
						     pst.st_ino == caps->pc_ino));
	if (!fresh && caps->pc_seen && !strcmp(caps->pc_seen, parent)) {
		/* The second grant in this directory: resolve the directory itself once. */
		free(caps->pc_orig);
		free(caps->pc_resolved);
		caps->pc_orig = NULL;
		caps->pc_resolved = realpath(parent, NULL);
		if (caps->pc_resolved && stat(caps->pc_resolved, &pst) == 0 && S_ISDIR(pst.st_mode)) {
			caps->pc_canonical = !strcmp(caps->pc_resolved, parent);
			caps->pc_orig = steal_pointer(&parent);
			caps->pc_dev = pst.st_dev;
			caps->pc_ino = pst.st_ino;
			fresh = true;
		}
	}
	if (!fresh) {
		free(caps->pc_seen);
		caps->pc_seen = steal_pointer(&parent);
		return 1;
	}
	if (lstat(path, st) != 0) {
		if (errno == ENOENT)
			return nono_fail(err, -ENOENT, "path does not exist: %s", path);
		return 1; /* the full walk says what is wrong */
	}
	if (S_ISLNK(st->st_mode))
		return 1;
	const char *dir = caps->pc_resolved;
	if (asprintf(out, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name) < 0)
		return nono_fail(err, -ENOMEM, "out of memory resolving %s", path);
	return 0;
}

/* The canonical path of `path` (*out, malloc'd) and its stat; -errno with a message naming it. */
static int canonicalise(nono_caps *caps, const char *path, char **out, struct stat *st,
			nono_error *err)
{
	if (strlen(path) >= PATH_MAX)
		return nono_fail(err, -ENAMETOOLONG, "path too long: %.200s...", path);
	int rc = canonicalise_cached(caps, path, out, st, err);
	return rc <= 0 ? rc : canonicalise_full(path, out, st, err);
}

static int add_grant(nono_caps *caps, const char *path, nono_access access, bool want_file,
		     nono_error *err)
{
	if (!caps)
		return nono_fail(err, -EINVAL, "capability set is NULL");
	if (!path || !*path)
		return nono_fail(err, -EINVAL, "empty path");
	if (!nono_access_name(access))
		return nono_fail(err, -EINVAL, "invalid access mode %d for %s (expected read, write "
				 "or read-write)", (int)access, path);
	struct stat st;
	cleanup_free char *resolved = NULL;
	int rc = canonicalise(caps, path, &resolved, &st, err);
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
		.dev = st.st_dev,
		.ino = st.st_ino,
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
			     .is_file = g->is_file, .source = g->source, .group = g->group };
	return 0;
}

int nono_caps_grant_id(const nono_caps *caps, size_t i, dev_t *dev, ino_t *ino)
{
	if (!caps || i >= caps->ngrants)
		return -ERANGE;
	*dev = caps->grants[i].dev;
	*ino = caps->grants[i].ino;
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
			free(g->group);
		} else {
			caps->grants[kept++] = *g;
		}
	}
	caps->ngrants = kept;
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

int nono_caps_set_proxy_address(nono_caps *caps, const char *addr, nono_error *err)
{
	if (!caps || !addr)
		return nono_fail(err, -EINVAL, "capability set and address are required");
	if (strcmp(addr, "127.0.0.1") != 0 && strcmp(addr, "::1") != 0)
		return nono_fail(err, -EINVAL,
				 "proxy address '%s': the proxy must listen on 127.0.0.1 or ::1", addr);
	caps->proxy_v6 = addr[0] == ':';
	nono_error_clear(err);
	return 0;
}

void nono_caps_set_user_namespaces(nono_caps *caps, bool allow)
{
	if (caps)
		caps->userns = allow;
}

bool nono_caps_user_namespaces(const nono_caps *caps)
{
	return caps && caps->userns;
}

const char *nono_caps_proxy_address(const nono_caps *caps)
{
	return caps && caps->proxy_v6 ? "::1" : "127.0.0.1";
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
	int rc = canonicalise(caps, path, &resolved, &st, err);
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
