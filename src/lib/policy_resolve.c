/* policy_resolve.c — turning a policy's groups into grants (with the group each came from), deny
 * paths and proxy settings, and the checks made after resolution (see nono.h "Policy groups").
 * The document was validated by policy.c: fields are read here without checking types again. */
#include "caps_int.h"
#include "policy_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct rgrant {
	char *path, *group;
	nono_access access;
	bool is_file, skipped;
};

struct rdeny {
	char *path, *group;
};

struct nono_policy_resolved {
	char **groups; /* NULL-terminated */
	size_t ngroups;
	struct rgrant *grants;
	size_t ngrants;
	struct rdeny *denies;
	size_t ndenies;
	char **domains; /* NULL-terminated */
	size_t ndomains;
	bool unlink_overrides, block;
};

/* Append a copy of `s` to a NULL-terminated vector, unless `dedup` and it is already there.
 * Returns 0 or -ENOMEM. */
static int sv_push(char ***v, size_t *n, const char *s, bool dedup)
{
	for (size_t i = 0; dedup && i < *n; i++)
		if (!strcmp((*v)[i], s))
			return 0;
	char **nv = realloc(*v, (*n + 2) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	nv[++*n] = NULL;
	return 0;
}

void nono_policy_resolved_free(nono_policy_resolved *r)
{
	if (!r)
		return;
	nono_strv_free(r->groups);
	nono_strv_free(r->domains);
	for (size_t i = 0; i < r->ngrants; i++) {
		free(r->grants[i].path);
		free(r->grants[i].group);
	}
	free(r->grants);
	for (size_t i = 0; i < r->ndenies; i++) {
		free(r->denies[i].path);
		free(r->denies[i].group);
	}
	free(r->denies);
	free(r);
}

/* Every name must be a group of the policy: an unknown name is an error, never skipped. */
static int check_names(const nono_policy *p, const char *const *names, size_t n, nono_error *err)
{
	if (!p || (n && !names))
		return nono_fail(err, -EINVAL, "policy: NULL argument");
	for (size_t i = 0; i < n; i++)
		if (!names[i] || !nono_policy_group(p, names[i]))
			return nono_fail(err, -EINVAL, "unknown policy group \"%.80s\"",
					 names[i] ? names[i] : "(null)");
	return 0;
}

/* A path equal to or below a "never_grant" entry is refused wherever it comes from. */
static int check_never_grant(const nono_policy *p, const char *path, const char *group,
			     nono_error *err)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(p->root, "never_grant"), i, e) {
		cleanup_free char *ng = NULL;
		int rc = nono_policy_expand(json_string_value(e), &ng, err);
		if (rc)
			return rc;
		if (nono_path_within(path, ng, true))
			return nono_fail(err, -EINVAL,
					 "group \"%.80s\": %.300s lies inside never_grant entry %.300s",
					 group, path, ng);
	}
	return 0;
}

static int add_grant(nono_policy_resolved *r, const char *path, const char *group, nono_access a,
		     bool is_file, bool skipped)
{
	struct rgrant *ng = realloc(r->grants, (r->ngrants + 1) * sizeof *ng);
	if (!ng)
		return -ENOMEM;
	r->grants = ng;
	struct rgrant *g = &ng[r->ngrants];
	*g = (struct rgrant){strdup(path), strdup(group), a, is_file, skipped};
	if (!g->path || !g->group) {
		free(g->path);
		free(g->group);
		return -ENOMEM;
	}
	r->ngrants++;
	return 0;
}

/* One allow path: a directory or a file grant; a missing path is recorded as skipped (system
 * groups list places that exist on some distributions only). */
static int allow_one(const nono_policy *p, nono_caps *caps, nono_policy_resolved *r,
		     const char *raw, const char *group, nono_access a, nono_error *err)
{
	cleanup_free char *path = NULL;
	int rc = nono_policy_expand(raw, &path, err);
	rc = rc ? rc : check_never_grant(p, path, group, err);
	if (rc)
		return rc;
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return nono_fail(err, -errno, "group \"%.80s\": %.300s: %s", group, path,
					 strerror(errno));
		return add_grant(r, path, group, a, false, true) ? nono_fail(err, -ENOMEM, "out of memory")
								  : 0;
	}
	bool is_file = !S_ISDIR(st.st_mode);
	size_t before = nono_caps_grant_count(caps);
	rc = is_file ? nono_caps_allow_file(caps, path, a, err)
		     : nono_caps_allow_path(caps, path, a, err);
	/* A new grant records its group (FsCapability.source "group:NAME"). */
	if (!rc && nono_caps_grant_count(caps) > before)
		rc = nono_caps_set_grant_source(caps, before, NONO_SOURCE_GROUP, group, err);
	if (rc)
		return rc;
	return add_grant(r, path, group, a, is_file, false) ? nono_fail(err, -ENOMEM, "out of memory")
							   : 0;
}

static int resolve_allow(const nono_policy *p, json_t *allow, const char *group, nono_caps *caps,
			 nono_policy_resolved *r, nono_error *err)
{
	static const struct {
		const char *key;
		nono_access access;
	} kinds[] = {
		{"read", NONO_ACCESS_READ},
		{"write", NONO_ACCESS_WRITE},
		{"readwrite", NONO_ACCESS_READ_WRITE},
		{"read_write", NONO_ACCESS_READ_WRITE}, /* nono-py's spelling */
	};
	for (size_t k = 0; k < N_ELEMENTS(kinds); k++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(allow, kinds[k].key), i, e) {
			int rc = allow_one(p, caps, r, json_string_value(e), group, kinds[k].access,
					   err);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int add_deny(nono_policy_resolved *r, const char *raw, const char *group, nono_error *err)
{
	cleanup_free char *path = NULL;
	int rc = nono_policy_expand(raw, &path, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < r->ndenies; i++)
		if (!strcmp(r->denies[i].path, path))
			return 0;
	struct rdeny *nd = realloc(r->denies, (r->ndenies + 1) * sizeof *nd);
	if (!nd)
		return nono_fail(err, -ENOMEM, "out of memory");
	r->denies = nd;
	nd[r->ndenies] = (struct rdeny){steal_pointer(&path), strdup(group)};
	if (!nd[r->ndenies].group) {
		free(nd[r->ndenies].path);
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	r->ndenies++;
	return 0;
}

/* Network: "block": true blocks; allowed domains block direct network until the caller sets
 * proxy-only for its proxy (fail closed). */
static int resolve_network(json_t *net, nono_caps *caps, nono_policy_resolved *r, nono_error *err)
{
	static const char *const host_keys[] = {"allow_domain", "allow_proxy"};
	bool block = json_is_true(json_object_get(net, "block"));
	r->block = r->block || block;
	for (size_t k = 0; k < N_ELEMENTS(host_keys); k++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(net, host_keys[k]), i, e) {
			block = true;
			if (sv_push(&r->domains, &r->ndomains, json_string_value(e), true))
				return nono_fail(err, -ENOMEM, "out of memory");
		}
	}
	if (block && nono_caps_network(caps, NULL) == NONO_NET_ALLOWED)
		return nono_caps_set_network(caps, NONO_NET_BLOCKED, 0, err);
	return 0;
}

static int resolve_group(const nono_policy *p, const char *name, nono_caps *caps,
			 nono_policy_resolved *r, nono_error *err)
{
	json_t *g = nono_policy_group(p, name);
	if (!nono_policy_group_on_linux(g))
		return 0;
	for (size_t i = 0; i < r->ngroups; i++)
		if (!strcmp(r->groups[i], name))
			return 0; /* named twice: once is enough */
	if (sv_push(&r->groups, &r->ngroups, name, false))
		return nono_fail(err, -ENOMEM, "out of memory");
	int rc = resolve_allow(p, json_object_get(g, "allow"), name, caps, r, err);
	json_t *deny = json_object_get(g, "deny");
	size_t i;
	json_t *e;
	json_array_foreach(rc ? NULL : json_object_get(deny, "access"), i, e)
		if ((rc = add_deny(r, json_string_value(e), name, err)))
			return rc;
	r->unlink_overrides = r->unlink_overrides ||
			      (json_is_true(json_object_get(deny, "unlink")) &&
			       json_is_true(json_object_get(deny, "unlink_override_for_user_writable")));
	json_t *net = json_object_get(g, "network");
	return rc || !net ? rc : resolve_network(net, caps, r, err);
}

/* Give `caps` the contents of `from` and free what it had (all-or-nothing resolution). */
static void caps_take(nono_caps *caps, nono_caps *from)
{
	struct nono_caps old = *caps;
	*caps = *from;
	*from = old;
	nono_caps_free(from);
}

int nono_policy_resolve(const nono_policy *p, const char *const *names, size_t n, nono_caps *caps,
			nono_policy_resolved **out, nono_error *err)
{
	nono_error_clear(err);
	if (out)
		*out = NULL;
	int rc = caps ? check_names(p, names, n, err) : nono_fail(err, -EINVAL, "caps is NULL");
	if (rc)
		return rc;
	nono_caps *tmp = nono_caps_clone(caps);
	nono_policy_resolved *r = calloc(1, sizeof *r);
	if (!tmp || !r) {
		nono_caps_free(tmp);
		free(r);
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = resolve_group(p, names[i], tmp, r, err);
	if (rc) {
		nono_caps_free(tmp);
		nono_policy_resolved_free(r);
		return rc;
	}
	caps_take(caps, tmp);
	if (out)
		*out = r;
	else
		nono_policy_resolved_free(r);
	return 0;
}

/* ---- the result ---- */

size_t nono_policy_resolved_group_count(const nono_policy_resolved *r)
{
	return r ? r->ngroups : 0;
}

const char *nono_policy_resolved_group(const nono_policy_resolved *r, size_t i)
{
	return r && i < r->ngroups ? r->groups[i] : NULL;
}

bool nono_policy_resolved_needs_unlink_overrides(const nono_policy_resolved *r)
{
	return r && r->unlink_overrides;
}

bool nono_policy_resolved_network_block(const nono_policy_resolved *r)
{
	return r && r->block;
}

size_t nono_policy_resolved_grant_count(const nono_policy_resolved *r)
{
	return r ? r->ngrants : 0;
}

int nono_policy_resolved_grant(const nono_policy_resolved *r, size_t i, nono_policy_grant *out)
{
	if (!r || !out || i >= r->ngrants)
		return -ERANGE;
	const struct rgrant *g = &r->grants[i];
	*out = (nono_policy_grant){g->path, g->group, g->access, g->is_file, g->skipped};
	return 0;
}

size_t nono_policy_resolved_deny_count(const nono_policy_resolved *r)
{
	return r ? r->ndenies : 0;
}

int nono_policy_resolved_deny(const nono_policy_resolved *r, size_t i, nono_policy_deny *out)
{
	if (!r || !out || i >= r->ndenies)
		return -ERANGE;
	*out = (nono_policy_deny){r->denies[i].path, r->denies[i].group};
	return 0;
}

size_t nono_policy_resolved_domain_count(const nono_policy_resolved *r)
{
	return r ? r->ndomains : 0;
}

const char *nono_policy_resolved_domain(const nono_policy_resolved *r, size_t i)
{
	return r && i < r->ndomains ? r->domains[i] : NULL;
}

/* ---- deny paths and the checks after resolution ---- */

int nono_policy_deny_paths(const nono_policy *p, const char *const *names, size_t n, char ***out,
			   nono_error *err)
{
	nono_error_clear(err);
	*out = NULL;
	int rc = check_names(p, names, n, err);
	nono_policy_resolved r = {0};
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *g = nono_policy_group(p, names[i]);
		size_t j;
		json_t *e;
		if (!nono_policy_group_on_linux(g))
			continue;
		json_array_foreach(json_object_get(json_object_get(g, "deny"), "access"), j, e)
			if ((rc = add_deny(&r, json_string_value(e), names[i], err)))
				break;
	}
	char **v = calloc(1, sizeof *v);
	size_t nv = 0;
	rc = rc ? rc : v ? 0 : nono_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < r.ndenies && !rc; i++)
		if (sv_push(&v, &nv, r.denies[i].path, false))
			rc = nono_fail(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < r.ndenies; i++) {
		free(r.denies[i].path);
		free(r.denies[i].group);
	}
	free(r.denies);
	if (rc)
		nono_strv_free(v);
	else
		*out = v;
	return rc;
}

int nono_policy_validate_deny_overlaps(const char *const *deny_paths, size_t n,
				       const nono_caps *caps, nono_error *err)
{
	nono_error_clear(err);
	if (!caps || (n && !deny_paths))
		return nono_fail(err, -EINVAL, "deny overlaps: NULL argument");
	for (size_t i = 0; i < n; i++) {
		const char *d = deny_paths[i];
		if (!d || d[0] != '/')
			return nono_fail(err, -EINVAL, "deny path \"%.200s\": not absolute",
					 d ? d : "(null)");
		if (!nono_caps_path_covered(caps, d))
			continue;
		nono_decision dec = {0};
		nono_caps_query_path(caps, d, NONO_ACCESS_READ, &dec, NULL);
		return nono_fail(err, -EOPNOTSUPP,
				 "deny path %.300s lies inside the grant %.300s: Landlock cannot take "
				 "a path back out of a granted tree; grant narrower paths",
				 d, dec.grant[0] ? dec.grant : "(a grant)");
	}
	return 0;
}

int nono_policy_apply_unlink_overrides(nono_caps *caps, nono_error *err)
{
	nono_error_clear(err);
	return caps ? 0 : nono_fail(err, -EINVAL, "caps is NULL");
}
