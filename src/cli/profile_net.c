/* profile_net.c — see profile_net.h. */
#include "profile_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool profile_net_owns(const char *key)
{
	return !strcmp(key, "custom_credentials") || !strcmp(key, "intercept") ||
	       !strcmp(key, "intercept_ca_dir");
}

static bool fail(const char *prof, const char *where, const char *what)
{
	cli_err("profile %s: %s: %s", prof, where, what);
	return false;
}

static bool check_rules(json_t *rules, const char *prof, const char *where)
{
	size_t i;
	json_t *r;
	if (!json_is_array(rules))
		return fail(prof, where, "expected an array of {\"method\": M, \"path\": \"/P\"}");
	json_array_foreach(rules, i, r) {
		const char *m = json_string_value(json_object_get(r, "method"));
		const char *p = json_string_value(json_object_get(r, "path"));
		if (!json_is_object(r) || json_object_size(r) != 2 || !m || !m[0] || !p || p[0] != '/')
			return fail(prof, where, "each rule is {\"method\": \"GET\" (or \"*\"), "
						 "\"path\": \"/PATTERN\"} and nothing else");
	}
	return true;
}

/* One route: the keys the CLI's route options can carry. Any other key (inject_header, env_var,
 * …) is an error naming it, never dropped: the route would inject somewhere else than the profile
 * says. */
static bool check_route(const char *name, json_t *r, const char *prof, const char *where)
{
	char w[256];
	if (!json_is_object(r))
		return fail(prof, where, "expected an object");
	const char *k;
	json_t *v;
	json_object_foreach(r, k, v) {
		snprintf(w, sizeof w, "%.100s.%.100s", where, k);
		if (!strcmp(k, "endpoint_rules")) {
			if (!check_rules(v, prof, w))
				return false;
		} else if (!strcmp(k, "upstream") || !strcmp(k, "credential_key") ||
			   !strcmp(k, "tls_ca")) {
			if (!json_is_string(v) || !json_string_length(v))
				return fail(prof, w, "expected a non-empty string");
		} else {
			cli_err("profile %s: %s: unknown field \"%s\" (a profile's route takes upstream, "
				"credential_key, tls_ca and endpoint_rules)", prof, where, k);
			return false;
		}
	}
	if (!json_object_get(r, "upstream"))
		return fail(prof, where, "needs \"upstream\"");
	if (!name[0] || strchr(name, '='))
		return fail(prof, where, "the route's name is its prefix: non-empty, without '='");
	return true;
}

bool profile_net_check(const char *key, json_t *v, const char *prof, const char *where)
{
	if (!strcmp(key, "intercept")) {
		if (!json_is_boolean(v))
			return fail(prof, where, "expected true or false");
		return true;
	}
	if (!strcmp(key, "intercept_ca_dir")) {
		if (!json_is_string(v) || json_string_value(v)[0] != '/')
			return fail(prof, where, "expected an absolute path");
		return true;
	}
	if (!json_is_object(v))
		return fail(prof, where, "expected an object of NAME: {\"upstream\": URL, …}");
	const char *name;
	json_t *r;
	json_object_foreach(v, name, r) {
		char w[256];
		snprintf(w, sizeof w, "%.100s.%.100s", where, name);
		if (!check_route(name, r, prof, w))
			return false;
	}
	return true;
}

int profile_net_merge(struct profile *p, json_t *net, const char *prof)
{
	json_t *ic = json_object_get(net, "intercept"), *dir = json_object_get(net, "intercept_ca_dir");
	if (ic && dir && json_is_false(ic)) {
		cli_err("profile %s: network.intercept false contradicts network.intercept_ca_dir", prof);
		return EXIT_USAGE;
	}
	if (ic || dir) { /* a later profile of the chain replaces the setting of an earlier one */
		p->intercept = dir || json_is_true(ic);
		p->intercept_ca_dir = json_string_value(dir);
		p->intercept_from = prof;
	}
	json_t *cc = json_object_get(net, "custom_credentials");
	if (!cc)
		return -1;
	if (!p->routes && !(p->routes = json_object()))
		return EXIT_INTERNAL;
	return json_object_update(p->routes, cc) < 0 ? EXIT_INTERNAL : -1;
}

/* Prefixes compare without their slashes, as the route options do ("openai" = "/openai/"). */
static bool same_prefix(const char *arg, const char *name)
{
	size_t an = strcspn(arg, "=");
	while (an && *arg == '/')
		arg++, an--;
	while (an && arg[an - 1] == '/')
		an--;
	while (*name == '/')
		name++;
	size_t nn = strlen(name);
	while (nn && name[nn - 1] == '/')
		nn--;
	return an == nn && !memcmp(arg, name, nn);
}

/* Does the command line give one of the route options (`v`: o->ro.routes, .creds, .cas or
 * .endpoints) for this prefix? */
static bool cli_names(const struct strvec *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (same_prefix(v->v[i], name))
			return true;
	return false;
}

/* "NAME=VALUE" kept in p->net_args (the route options borrow it); NULL when out of memory. */
static const char *arg(struct profile *p, const char *name, const char *a, const char *sep,
		       const char *b)
{
	char **nv = realloc(p->net_args, (p->nnet_args + 2) * sizeof *nv);
	if (!nv)
		return NULL;
	p->net_args = nv;
	char *s = NULL;
	if (asprintf(&s, "%s=%s%s%s", name, a, sep, b) < 0)
		return NULL;
	nv[p->nnet_args++] = s;
	nv[p->nnet_args] = NULL;
	return s;
}

/* The route options' own checks print "--credential …: why"; say which profile it was. Each
 * option the command line gives for this prefix replaces the profile's (review R2: the profile's
 * secret and CA replaced the command line's, and its endpoint rules widened the command line's). */
static int route_to_opts(struct run_opts *o, struct profile *p, const char *name, json_t *r)
{
	const char *v, *a;
	int rc = -1;
	bool cli_cred = cli_names(&o->ro.creds, name), cli_ca = cli_names(&o->ro.cas, name);
	bool cli_rules = cli_names(&o->ro.endpoints, name);
	if (!(a = arg(p, name, json_string_value(json_object_get(r, "upstream")), "", "")))
		return EXIT_INTERNAL;
	rc = route_opts_route(&o->ro, a);
	if (rc < 0 && !cli_cred && (v = json_string_value(json_object_get(r, "credential_key"))))
		rc = (a = arg(p, name, v, "", "")) ? route_opts_credential(&o->ro, a) : EXIT_INTERNAL;
	if (rc < 0 && !cli_ca && (v = json_string_value(json_object_get(r, "tls_ca"))))
		rc = (a = arg(p, name, v, "", "")) ? route_opts_ca(&o->ro, a) : EXIT_INTERNAL;
	size_t i;
	json_t *e;
	json_array_foreach(cli_rules ? NULL : json_object_get(r, "endpoint_rules"), i, e) {
		if (rc >= 0)
			break;
		a = arg(p, name, json_string_value(json_object_get(e, "method")), ":",
			json_string_value(json_object_get(e, "path")));
		rc = a ? route_opts_endpoint(&o->ro, a) : EXIT_INTERNAL;
	}
	if (rc == EXIT_USAGE)
		cli_err("(from profile %s: network.custom_credentials.%s)", p->name, name);
	return rc;
}

int profile_net_to_opts(struct run_opts *o, struct profile *p)
{
	if ((p->routes || p->intercept == 1) && p->net_block == 1) {
		cli_err("profile %s: network.block contradicts its credential routes and interception",
			p->name);
		return EXIT_USAGE;
	}
	if (o->net_block)
		return -1; /* the command line blocks the network: no route, as no domain */
	const char *name;
	json_t *r;
	json_object_foreach(p->routes, name, r) {
		if (cli_names(&o->ro.routes, name))
			continue; /* the command line's route of that prefix wins, with its options */
		int rc = route_to_opts(o, p, name, r);
		if (rc >= 0)
			return rc;
	}
	if (p->intercept == 1 && !o->icpt.on) { /* the command line's interception wins */
		o->icpt.on = true;
		o->icpt.dir = p->intercept_ca_dir;
	}
	return -1;
}

void profile_net_free(struct profile *p)
{
	json_decref(p->routes);
	p->routes = NULL;
	nono_strv_free(p->net_args);
	p->net_args = NULL;
	p->nnet_args = 0;
}
