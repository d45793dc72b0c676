/* policy.c — policy documents: strict parsing (every field known, every type checked, fail closed
 * naming the field), the group names and descriptions, exclusions, and path expansion. Turning
 * groups into grants is policy_resolve.c. */
#include "policy_int.h"

#include <stdio.h>
#include <string.h>

/* ---- the schema ---- */

#define W_MAX 256 /* a field's dotted name in messages ("groups.g.network.block") */

/* `where`.`key` into w (W_MAX bytes), both cut to fit. */
static void sub(char *w, const char *where, const char *key)
{
	snprintf(w, W_MAX, "%.150s.%.80s", where, key);
}

/* Only keys listed in `allowed` (NULL-terminated) may appear in `obj`. */
static int known_keys(json_t *obj, const char *const *allowed, const char *where, nono_error *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok)
			return nono_fail(err, -EINVAL, "%s: unknown field \"%.64s\"", where, key);
	}
	return 0;
}

static int want_object(json_t *v, const char *where, nono_error *err)
{
	return json_is_object(v) ? 0 : nono_fail(err, -EINVAL, "%s: expected an object", where);
}

static int want_string(json_t *v, const char *where, nono_error *err)
{
	if (!json_is_string(v))
		return nono_fail(err, -EINVAL, "%s: expected a string", where);
	if (json_string_length(v) != strlen(json_string_value(v)))
		return nono_fail(err, -EINVAL, "%s: NUL byte inside the string", where);
	if (!json_string_length(v))
		return nono_fail(err, -EINVAL, "%s: empty string", where);
	return 0;
}

static int want_bool(json_t *v, const char *where, nono_error *err)
{
	return json_is_boolean(v) ? 0 : nono_fail(err, -EINVAL, "%s: expected true or false", where);
}

/* An array of non-empty strings; paths also in a form nono_policy_expand knows. */
static int want_strings(json_t *v, bool paths, const char *where, nono_error *err)
{
	if (!json_is_array(v))
		return nono_fail(err, -EINVAL, "%s: expected an array of strings", where);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		char w[W_MAX];
		snprintf(w, W_MAX, "%.180s[%zu]", where, i);
		int rc = want_string(e, w, err);
		if (rc)
			return rc;
		if (paths && !nono_policy_path_form_ok(json_string_value(e)))
			return nono_fail(err, -EINVAL,
					 "%s: \"%.200s\" is not absolute and starts with no known "
					 "variable (~, $HOME, $TMPDIR, $XDG_*_HOME)",
					 w, json_string_value(e));
	}
	return 0;
}

static int check_allow(json_t *allow, const char *where, nono_error *err)
{
	static const char *const keys[] = {"read", "write", "readwrite", "read_write", NULL};
	int rc = want_object(allow, where, err);
	rc = rc ? rc : known_keys(allow, keys, where, err);
	const char *key;
	json_t *v;
	json_object_foreach(allow, key, v) {
		char w[W_MAX];
		sub(w, where, key);
		rc = rc ? rc : want_strings(v, true, w, err);
	}
	return rc;
}

static int check_deny(json_t *deny, const char *where, nono_error *err)
{
	static const char *const keys[] = {"access", "unlink", "unlink_override_for_user_writable",
					   NULL};
	int rc = want_object(deny, where, err);
	rc = rc ? rc : known_keys(deny, keys, where, err);
	const char *key;
	json_t *v;
	json_object_foreach(deny, key, v) {
		char w[W_MAX];
		sub(w, where, key);
		if (rc)
			break;
		rc = strcmp(key, "access") ? want_bool(v, w, err) : want_strings(v, true, w, err);
	}
	return rc;
}

static int check_route(json_t *route, const char *where, nono_error *err)
{
	static const char *const keys[] = {"prefix", "upstream", "credential_key", "inject_header",
					   "credential_format", "env_var", NULL};
	int rc = want_object(route, where, err);
	rc = rc ? rc : known_keys(route, keys, where, err);
	const char *key;
	json_t *v;
	json_object_foreach(route, key, v) {
		char w[W_MAX];
		sub(w, where, key);
		rc = rc ? rc : want_string(v, w, err);
	}
	if (!rc && (!json_object_get(route, "prefix") || !json_object_get(route, "upstream")))
		rc = nono_fail(err, -EINVAL, "%s: needs \"prefix\" and \"upstream\"", where);
	return rc;
}

static int check_net_field(const char *key, json_t *v, const char *w, nono_error *err)
{
	if (!strcmp(key, "block"))
		return want_bool(v, w, err);
	if (!strcmp(key, "allow_domain") || !strcmp(key, "allow_proxy"))
		return want_strings(v, false, w, err);
	if (!strcmp(key, "external_proxy"))
		return want_string(v, w, err);
	if (!strcmp(key, "max_connections")) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000000)
			return nono_fail(err, -EINVAL, "%s: expected an integer 1..1000000", w);
		return 0;
	}
	int rc = want_object(v, w, err); /* custom_credentials */
	const char *name;
	json_t *route;
	json_object_foreach(v, name, route) {
		char rw[W_MAX];
		sub(rw, w, name);
		rc = rc ? rc : check_route(route, rw, err);
	}
	return rc;
}

static int check_network(json_t *net, const char *where, nono_error *err)
{
	static const char *const keys[] = {"block", "allow_domain", "allow_proxy", "max_connections",
					   "external_proxy", "custom_credentials", NULL};
	int rc = want_object(net, where, err);
	rc = rc ? rc : known_keys(net, keys, where, err);
	const char *key;
	json_t *v;
	json_object_foreach(net, key, v) {
		char w[W_MAX];
		sub(w, where, key);
		rc = rc ? rc : check_net_field(key, v, w, err);
	}
	if (!rc && json_is_true(json_object_get(net, "block")) &&
	    (json_object_get(net, "allow_domain") || json_object_get(net, "allow_proxy")))
		rc = nono_fail(err, -EINVAL, "%s: \"block\": true contradicts allowed domains", where);
	return rc;
}

static int check_platform(json_t *v, const char *where, nono_error *err)
{
	int rc = want_string(v, where, err);
	if (!rc && strcmp(json_string_value(v), "linux") && strcmp(json_string_value(v), "macos"))
		rc = nono_fail(err, -EINVAL, "%s: expected \"linux\" or \"macos\"", where);
	return rc;
}

static int check_group(const char *name, json_t *g, nono_error *err)
{
	static const char *const keys[] = {"description", "required", "platform", "allow", "deny",
					   "network", NULL};
	char where[W_MAX];
	sub(where, "groups", name);
	int rc = want_object(g, where, err);
	rc = rc ? rc : known_keys(g, keys, where, err);
	const char *key;
	json_t *v;
	json_object_foreach(g, key, v) {
		char w[W_MAX];
		sub(w, where, key);
		if (rc)
			break;
		if (!strcmp(key, "description"))
			rc = want_string(v, w, err);
		else if (!strcmp(key, "required"))
			rc = want_bool(v, w, err);
		else if (!strcmp(key, "platform"))
			rc = check_platform(v, w, err);
		else if (!strcmp(key, "allow"))
			rc = check_allow(v, w, err);
		else if (!strcmp(key, "deny"))
			rc = check_deny(v, w, err);
		else
			rc = check_network(v, w, err);
	}
	return rc;
}

static int check_meta(json_t *meta, nono_error *err)
{
	static const char *const keys[] = {"version", "schema_version", "name", "description", NULL};
	int rc = want_object(meta, "meta", err);
	return rc ? rc : known_keys(meta, keys, "meta", err);
}

static int check_root(json_t *root, nono_error *err)
{
	static const char *const keys[] = {"meta", "groups", "never_grant", "base_groups", NULL};
	int rc = want_object(root, "policy", err);
	rc = rc ? rc : known_keys(root, keys, "policy", err);
	json_t *groups = json_object_get(root, "groups");
	if (!rc && !groups)
		return nono_fail(err, -EINVAL, "policy: \"groups\" is missing");
	rc = rc ? rc : want_object(groups, "groups", err);
	const char *name;
	json_t *g;
	json_object_foreach(groups, name, g) rc = rc ? rc : check_group(name, g, err);
	json_t *v = json_object_get(root, "meta");
	rc = rc || !v ? rc : check_meta(v, err);
	v = json_object_get(root, "never_grant");
	rc = rc || !v ? rc : want_strings(v, true, "never_grant", err);
	v = json_object_get(root, "base_groups");
	rc = rc || !v ? rc : want_strings(v, false, "base_groups", err);
	size_t i;
	json_t *e;
	json_array_foreach(rc ? NULL : v, i, e)
		if (!json_object_get(groups, json_string_value(e)))
			return nono_fail(err, -EINVAL, "base_groups[%zu]: no group \"%.80s\"", i,
					 json_string_value(e));
	return rc;
}

/* ---- the object ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

nono_policy *nono_policy_load(const char *json, size_t len, nono_error *err)
{
	nono_error_clear(err);
	if (!json) {
		nono_fail(err, -EINVAL, "policy: no document");
		return NULL;
	}
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!root) {
		nono_fail(err, -EINVAL, "policy: invalid JSON at line %d: %s", je.line, je.text);
		return NULL;
	}
	if (check_root(root, err) < 0) {
		json_decref(root);
		return NULL;
	}
	nono_policy *p = calloc(1, sizeof *p);
	json_t *groups = json_object_get(root, "groups");
	const char **names = calloc(json_object_size(groups) + 1, sizeof *names);
	if (!p || !names) {
		free(p);
		free(names);
		json_decref(root);
		nono_fail(err, -ENOMEM, "out of memory");
		return NULL;
	}
	const char *name;
	json_t *g;
	json_object_foreach(groups, name, g) names[p->nnames++] = name;
	qsort(names, p->nnames, sizeof *names, cmp_names);
	p->root = root;
	p->groups = groups;
	p->names = names;
	return p;
}

nono_policy *nono_policy_load_embedded(nono_error *err)
{
	const char *s = nono_policy_embedded_json();
	return nono_policy_load(s, strlen(s), err);
}

void nono_policy_free(nono_policy *p)
{
	if (!p)
		return;
	free(p->names);
	json_decref(p->root);
	free(p);
}

size_t nono_policy_group_count(const nono_policy *p)
{
	return p ? p->nnames : 0;
}

const char *nono_policy_group_name(const nono_policy *p, size_t i)
{
	return p && i < p->nnames ? p->names[i] : NULL;
}

json_t *nono_policy_group(const nono_policy *p, const char *name)
{
	return p && name ? json_object_get(p->groups, name) : NULL;
}

bool nono_policy_group_on_linux(json_t *group)
{
	json_t *pl = json_object_get(group, "platform");
	return !pl || !strcmp(json_string_value(pl), "linux");
}

const char *nono_policy_group_description(const nono_policy *p, const char *name)
{
	return json_string_value(json_object_get(nono_policy_group(p, name), "description"));
}

bool nono_policy_group_required(const nono_policy *p, const char *name)
{
	return json_is_true(json_object_get(nono_policy_group(p, name), "required"));
}

size_t nono_policy_base_group_count(const nono_policy *p)
{
	return p ? json_array_size(json_object_get(p->root, "base_groups")) : 0;
}

const char *nono_policy_base_group(const nono_policy *p, size_t i)
{
	return p ? json_string_value(json_array_get(json_object_get(p->root, "base_groups"), i))
		 : NULL;
}

int nono_policy_validate_exclusions(const nono_policy *p, const char *const *names, size_t n,
				    nono_error *err)
{
	nono_error_clear(err);
	if (!p || (n && !names))
		return nono_fail(err, -EINVAL, "policy: NULL argument");
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !nono_policy_group(p, names[i]))
			return nono_fail(err, -EINVAL, "cannot exclude group \"%.80s\": no such group",
					 names[i] ? names[i] : "(null)");
		if (nono_policy_group_required(p, names[i]))
			return nono_fail(err, -EINVAL,
					 "cannot exclude group \"%.80s\": it is required", names[i]);
	}
	return 0;
}

/* ---- path expansion ---- */

static const struct {
	const char *var;
	const char *home_default; /* relative to $HOME when the variable is unset or relative */
} expand_vars[] = {
	{"$HOME", ""},
	{"$XDG_CONFIG_HOME", "/.config"},
	{"$XDG_CACHE_HOME", "/.cache"},
	{"$XDG_DATA_HOME", "/.local/share"},
	{"$XDG_STATE_HOME", "/.local/state"},
	{"$TMPDIR", NULL},
};

/* The variable `path` starts with (followed by '/' or the end), or -1. */
static int var_index(const char *path)
{
	for (size_t i = 0; i < N_ELEMENTS(expand_vars); i++) {
		size_t l = strlen(expand_vars[i].var);
		if (!strncmp(path, expand_vars[i].var, l) && (path[l] == '/' || !path[l]))
			return (int)i;
	}
	return -1;
}

bool nono_policy_path_form_ok(const char *path)
{
	return path[0] == '/' || (path[0] == '~' && (path[1] == '/' || !path[1])) ||
	       var_index(path) >= 0;
}

static int join(const char *a, const char *b, const char *rest, char **out, nono_error *err)
{
	if (asprintf(out, "%s%s%s", a, b, rest) < 0) {
		*out = NULL;
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	return 0;
}

int nono_policy_expand(const char *path, char **out, nono_error *err)
{
	*out = NULL;
	if (path[0] == '/')
		return join(path, "", "", out, err);
	const char *home = getenv("HOME");
	bool home_ok = home && home[0] == '/';
	if (path[0] == '~') {
		if (!home_ok)
			return nono_fail(err, -EINVAL, "%.200s: HOME is not set to an absolute path",
					 path);
		return join(home, "", path + 1, out, err);
	}
	int i = var_index(path);
	if (i < 0)
		return nono_fail(err, -EINVAL, "%.200s: not an absolute path", path);
	const char *rest = path + strlen(expand_vars[i].var);
	const char *val = getenv(expand_vars[i].var + 1);
	if (val && val[0] == '/')
		return join(val, "", rest, out, err);
	if (!expand_vars[i].home_default) /* $TMPDIR unset: the system default */
		return join("/tmp", "", rest, out, err);
	if (!home_ok)
		return nono_fail(err, -EINVAL, "%.200s: HOME is not set to an absolute path", path);
	return join(home, expand_vars[i].home_default, rest, out, err);
}

/* policy_embedded.c, generated from policy.json at build time (embed_text.py). */
NONO_HIDDEN extern const char nono_policy_embedded_text[];

const char *nono_policy_embedded_json(void)
{
	return nono_policy_embedded_text;
}

int nono_policy_expand_path(const char *path, char **out, nono_error *err)
{
	nono_error_clear(err);
	if (!out)
		return nono_fail(err, -EINVAL, "out is NULL");
	*out = NULL;
	if (!path || !nono_policy_path_form_ok(path))
		return nono_fail(err, -EINVAL, "%.200s: not absolute, and starts with no known variable "
				 "(~, $HOME, $TMPDIR, $XDG_*_HOME)", path ? path : "(null)");
	return nono_policy_expand(path, out, err);
}
