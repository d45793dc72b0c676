/* profile.c — loading profiles (see profile.h): finding one by name or path, checking its fields
 * strictly (an unknown field fails, naming it), following "extends", merging the chain. */
#include "profile.h"
#include "profile_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const char nono_cli_profiles_text[]; /* profiles_embedded.c, generated from profiles.json */

const char *profile_builtin_json(void)
{
	return nono_cli_profiles_text;
}

void profile_user_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	if (x && x[0] == '/')
		snprintf(buf, len, "%s/nono/profiles", x);
	else if (h && h[0] == '/')
		snprintf(buf, len, "%s/.config/nono/profiles", h);
	else if (len)
		buf[0] = '\0';
}

void profile_free(struct profile *p)
{
	free(p->name);
	free(p->origin);
	nono_policy_free(p->policy);
	for (size_t i = 0; i < p->ndocs; i++)
		json_decref(p->docs[i]);
	strvec_free(&p->chain);
	strvec_free(&p->groups);
	free(p->paths);
	strvec_free(&p->domains);
	nono_strv_free(p->env);
	for (size_t i = 0; i < p->norigins; i++) {
		free(p->origins[i].path);
		free(p->origins[i].from);
	}
	free(p->origins);
	nono_policy_proxy_free(p->proxy);
	nono_policy_resolved_free(p->resolved);
	profile_net_free(p);
	memset(p, 0, sizeof *p);
}

/* ---- finding a document ---- */

static bool is_path_arg(const char *a)
{
	size_t n = strlen(a);
	return strchr(a, '/') || (n > 5 && !strcmp(a + n - 5, ".json"));
}

static bool name_ok(const char *n)
{
	if (!n[0] || n[0] == '.' || strlen(n) > 64)
		return false;
	for (const char *c = n; *c; c++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c))
			return false;
	return true;
}

static json_t *load_file(const char *path, char **origin)
{
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		cli_err("profile %s: %s (line %d)", path, je.text, je.line);
		return NULL;
	}
	*origin = strdup(path);
	return doc;
}

/* The document for `arg`: a file, the user's directory, or a built-in. NULL after printing why. */
static json_t *find_doc(const char *arg, char **origin)
{
	if (is_path_arg(arg))
		return load_file(arg, origin);
	if (!name_ok(arg)) {
		cli_err("profile '%s': a name is letters, digits, '.', '_' and '-' (or give a path)",
			arg);
		return NULL;
	}
	char dir[2048], path[2200];
	profile_user_dir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s.json", dir, arg);
	if (dir[0] && access(path, F_OK) == 0)
		return load_file(path, origin);
	json_t *all = json_loads(profile_builtin_json(), 0, NULL);
	json_t *doc = json_incref(json_object_get(all, arg));
	json_decref(all);
	if (!doc) {
		cli_err("no profile '%s' (built-in profiles: nono profile list; user profiles: %s)",
			arg, dir[0] ? dir : "no HOME");
		return NULL;
	}
	*origin = strdup("built-in");
	return doc;
}

/* ---- the schema ---- */

static bool known(json_t *obj, const char *const *keys, const char *prof, const char *where)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (size_t i = 0; keys[i] && !ok; i++)
			ok = !strcmp(key, keys[i]);
		if (!ok) {
			cli_err("profile %s: %s: unknown field \"%s\"", prof, where, key);
			return false;
		}
	}
	return true;
}

static bool is_strings(json_t *v)
{
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, e)
		if (!json_is_string(e) || !json_string_length(e))
			return false;
	return true;
}

static bool typed(bool ok, const char *prof, const char *where, const char *what)
{
	if (!ok)
		cli_err("profile %s: %s: expected %s", prof, where, what);
	return ok;
}

static bool check_section(json_t *doc, const char *key, const char *const *keys, const char *prof)
{
	json_t *v = json_object_get(doc, key);
	if (!v)
		return true;
	if (!typed(json_is_object(v), prof, key, "an object") || !known(v, keys, prof, key))
		return false;
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e) {
		char where[96];
		snprintf(where, sizeof where, "%s.%s", key, k);
		if (!strcmp(key, "network") && profile_net_owns(k)) {
			if (!profile_net_check(k, e, prof, where))
				return false;
			continue;
		}
		bool ok = !strcmp(k, "block") || !strcmp(k, "inherit")
				  ? typed(json_is_boolean(e), prof, where, "true or false")
			  : !strcmp(k, "access") || !strcmp(k, "description") || !strcmp(k, "name") ||
					  !strcmp(k, "author")
				  ? typed(json_is_string(e), prof, where, "a string")
			  : !strcmp(k, "version") ? typed(json_is_string(e) || json_is_number(e), prof,
							  where, "a string or a number")
			  : !strcmp(k, "set") ? typed(json_is_object(e), prof, where, "an object")
					      : typed(is_strings(e), prof, where,
						      "an array of non-empty strings");
		if (!ok)
			return false;
	}
	return true;
}

static bool check_doc(json_t *doc, const char *prof)
{
	static const char *const root[] = {"meta", "extends", "groups", "security", "filesystem",
					   "network", "environment", "workdir", "interactive", NULL};
	static const char *const meta[] = {"name", "version", "description", "author", NULL};
	static const char *const security[] = {"groups", NULL};
	static const char *const fs[] = {"allow", "read", "write", "allow_file", "read_file",
					 "write_file", "deny", NULL};
	static const char *const net[] = {"block", "allow_domain", "allow_proxy",
					  "custom_credentials", "intercept", "intercept_ca_dir", NULL};
	static const char *const env[] = {"inherit", "set", NULL};
	static const char *const wd[] = {"access", NULL};
	if (!typed(json_is_object(doc), prof, "profile", "an object") ||
	    !known(doc, root, prof, "profile"))
		return false;
	json_t *ext = json_object_get(doc, "extends"), *g = json_object_get(doc, "groups");
	json_t *inter = json_object_get(doc, "interactive");
	return (!ext || typed(json_is_string(ext) || is_strings(ext), prof, "extends",
			      "a profile name or an array of them")) &&
	       (!g || typed(is_strings(g), prof, "groups", "an array of group names")) &&
	       (!inter || typed(json_is_boolean(inter), prof, "interactive", "true or false")) &&
	       check_section(doc, "meta", meta, prof) && check_section(doc, "security", security, prof) &&
	       check_section(doc, "filesystem", fs, prof) && check_section(doc, "network", net, prof) &&
	       check_section(doc, "environment", env, prof) && check_section(doc, "workdir", wd, prof);
}

/* ---- merging one document into the profile (its parents are merged first) ---- */

static bool group_known(const nono_policy *pol, const char *name)
{
	for (size_t i = 0; i < nono_policy_group_count(pol); i++)
		if (!strcmp(nono_policy_group_name(pol, i), name))
			return true;
	return false;
}

static int push_unique(struct strvec *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 0;
	return strvec_push(sv, s);
}

static int merge_groups(struct profile *p, json_t *arr, const char *prof)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *g = json_string_value(e);
		if (!group_known(p->policy, g)) {
			cli_err("profile %s: no policy group \"%s\" (nono profile groups lists them)",
				prof, g);
			return EXIT_USAGE;
		}
		if (push_unique(&p->groups, g) < 0)
			return EXIT_INTERNAL;
	}
	return -1;
}

static int merge_fs(struct profile *p, json_t *fs, const char *prof)
{
	static const struct {
		const char *key;
		nono_access access;
		bool file;
	} kinds[] = {
		{"allow", NONO_ACCESS_READ_WRITE, false}, {"read", NONO_ACCESS_READ, false},
		{"write", NONO_ACCESS_WRITE, false},      {"allow_file", NONO_ACCESS_READ_WRITE, true},
		{"read_file", NONO_ACCESS_READ, true},    {"write_file", NONO_ACCESS_WRITE, true},
		{"deny", 0, false},
	};
	for (size_t k = 0; k < N_ELEMENTS(kinds); k++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(fs, kinds[k].key), i, e) {
			struct prof_path *np = realloc(p->paths, (p->npaths + 1) * sizeof *np);
			if (!np)
				return EXIT_INTERNAL;
			p->paths = np;
			np[p->npaths++] = (struct prof_path){json_string_value(e), kinds[k].access,
							     kinds[k].file, prof};
		}
	}
	return -1;
}

static int merge_env(struct profile *p, json_t *env, const char *prof)
{
	json_t *inherit = json_object_get(env, "inherit");
	if (inherit)
		p->inherit_env = json_is_true(inherit);
	const char *name;
	json_t *v;
	json_object_foreach(json_object_get(env, "set"), name, v) {
		if (!json_is_string(v) || !name[0] || strchr(name, '=')) {
			cli_err("profile %s: environment.set.%s: expected NAME: \"VALUE\"", prof, name);
			return EXIT_USAGE;
		}
		if (nono_env_name_is_loader(name)) {
			cli_err("profile %s: environment.set.%s: loader-control variables are refused",
				prof, name);
			return EXIT_USAGE;
		}
		char **nv = realloc(p->env, (p->nenv + 2) * sizeof *nv);
		if (!nv)
			return EXIT_INTERNAL;
		p->env = nv;
		if (asprintf(&nv[p->nenv], "%s=%s", name, json_string_value(v)) < 0)
			return EXIT_INTERNAL;
		nv[++p->nenv] = NULL;
	}
	return -1;
}

static int merge_workdir(struct profile *p, json_t *wd, const char *prof)
{
	static const struct {
		const char *name;
		nono_access access;
	} modes[] = {{"none", 0}, {"read", NONO_ACCESS_READ}, {"write", NONO_ACCESS_WRITE},
		     {"readwrite", NONO_ACCESS_READ_WRITE}};
	const char *a = json_string_value(json_object_get(wd, "access"));
	if (!a)
		return -1;
	for (size_t i = 0; i < N_ELEMENTS(modes); i++)
		if (!strcmp(a, modes[i].name)) {
			p->workdir_access = modes[i].access;
			return -1;
		}
	cli_err("profile %s: workdir.access: \"%s\" (expected none, read, write or readwrite)", prof,
		a);
	return EXIT_USAGE;
}

static int merge_doc(struct profile *p, json_t *doc, const char *prof)
{
	const char *desc = json_string_value(json_object_get(json_object_get(doc, "meta"),
							     "description"));
	if (desc)
		p->description = desc;
	int rc = merge_groups(p, json_object_get(doc, "groups"), prof);
	if (rc < 0)
		rc = merge_groups(p, json_object_get(json_object_get(doc, "security"), "groups"), prof);
	if (rc < 0)
		rc = merge_fs(p, json_object_get(doc, "filesystem"), prof);
	json_t *net = json_object_get(doc, "network");
	if (rc < 0 && json_object_get(net, "block"))
		p->net_block = json_is_true(json_object_get(net, "block"));
	static const char *const host_keys[] = {"allow_domain", "allow_proxy"};
	for (size_t k = 0; rc < 0 && k < N_ELEMENTS(host_keys); k++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(net, host_keys[k]), i, e)
			if (push_unique(&p->domains, json_string_value(e)) < 0)
				return EXIT_INTERNAL;
	}
	if (rc < 0)
		rc = profile_net_merge(p, net, prof);
	if (rc < 0)
		rc = merge_env(p, json_object_get(doc, "environment"), prof);
	if (rc < 0)
		rc = merge_workdir(p, json_object_get(doc, "workdir"), prof);
	return rc;
}

/* Load `arg` and, first, everything it extends. `stack` holds the `depth` profiles being loaded
 * above it (a cycle is an error). A diamond's shared base is merged once, where it is first
 * reached: merged again after a profile that overrides it, it undid the override (review R3: a
 * route's upstream or interception set back to the base's). */
static int load_chain(struct profile *p, const char *arg, const char **stack, size_t depth)
{
	for (size_t i = 0; i < depth; i++)
		if (!strcmp(stack[i], arg)) {
			cli_err("profile %s: \"extends\" leads back to itself", arg);
			return EXIT_USAGE;
		}
	for (size_t i = 0; i < p->chain.n; i++)
		if (!strcmp(p->chain.v[i], arg))
			return -1;
	if (depth >= PROFILE_DEPTH_MAX || p->ndocs >= PROFILE_DEPTH_MAX) {
		cli_err("profile %s: \"extends\" is nested more than %d deep", arg, PROFILE_DEPTH_MAX);
		return EXIT_USAGE;
	}
	char *origin = NULL;
	json_t *doc = find_doc(arg, &origin);
	if (!doc)
		return EXIT_USAGE;
	p->docs[p->ndocs++] = doc;
	if (!p->origin)
		p->origin = origin;
	else
		free(origin);
	if (!check_doc(doc, arg))
		return EXIT_USAGE;
	stack[depth] = arg;
	json_t *ext = json_object_get(doc, "extends");
	size_t i;
	json_t *e;
	if (json_is_string(ext))
		ext = json_pack("[O]", ext);
	else
		json_incref(ext);
	int rc = -1;
	json_array_foreach(ext, i, e) {
		if ((rc = load_chain(p, json_string_value(e), stack, depth + 1)) >= 0)
			break;
	}
	json_decref(ext);
	if (rc >= 0)
		return rc;
	/* The chain holds names borrowed from documents we keep (or from argv for the first). */
	if (strvec_push(&p->chain, arg) < 0)
		return EXIT_INTERNAL;
	return merge_doc(p, doc, arg);
}

int profile_load(const char *arg, struct profile *p)
{
	nono_error err = {0};
	p->net_block = -1;
	p->inherit_env = -1;
	p->name = strdup(arg);
	p->policy = nono_policy_load_embedded(&err);
	if (!p->name || !p->policy) {
		cli_err("embedded policy: %s", err.message[0] ? err.message : "out of memory");
		return EXIT_INTERNAL;
	}
	const char *stack[PROFILE_DEPTH_MAX];
	return load_chain(p, arg, stack, 0);
}
