/* routes.c — see routes.h. */
#include "routes.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int need_eq(const char *opt, const char *arg, const char *form)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1]) {
		cli_err("%s: expected %s", opt, form);
		return EXIT_USAGE;
	}
	return -1;
}

static int push(struct strvec *v, const char *arg)
{
	return strvec_push(v, arg) < 0 ? EXIT_INTERNAL : -1;
}

int route_opts_route(struct route_opts *ro, const char *arg)
{
	int rc = need_eq("--route", arg, "PREFIX=UPSTREAM (e.g. openai=https://api.openai.com)");
	return rc >= 0 ? rc : push(&ro->routes, arg);
}

int route_opts_credential(struct route_opts *ro, const char *arg)
{
	int rc = need_eq("--credential", arg, "PREFIX=env://VAR, PREFIX=file://PATH or PREFIX=keyring://NAME");
	if (rc >= 0)
		return rc;
	const char *src = strchr(arg, '=') + 1;
	/* A secret typed on the command line would sit in argv, readable in /proc by every process of
	 * the user: only sources are accepted here (the value itself is never echoed back). */
	if (strncmp(src, "env://", 6) != 0 && strncmp(src, "file://", 7) != 0 &&
	    strncmp(src, "keyring://", 10) != 0) {
		cli_err("--credential %.*s=…: give the secret's source (env://VAR, file://PATH or keyring://NAME), "
			"never the secret itself", (int)(strchr(arg, '=') - arg), arg);
		return EXIT_USAGE;
	}
	return push(&ro->creds, arg);
}

int route_opts_ca(struct route_opts *ro, const char *arg)
{
	int rc = need_eq("--route-ca", arg, "PREFIX=PEM-FILE");
	return rc >= 0 ? rc : push(&ro->cas, arg);
}

int route_opts_endpoint(struct route_opts *ro, const char *arg)
{
	int rc = need_eq("--route-endpoint", arg, "PREFIX=METHOD:/PATH (e.g. openai=POST:/v1/chat/completions)");
	if (rc >= 0)
		return rc;
	const char *colon = strchr(strchr(arg, '=') + 1, ':');
	if (!colon || colon[1] != '/') {
		cli_err("--route-endpoint %s: expected PREFIX=METHOD:/PATH", arg);
		return EXIT_USAGE;
	}
	return push(&ro->endpoints, arg);
}

void route_opts_free(struct route_opts *ro)
{
	strvec_free(&ro->routes);
	strvec_free(&ro->creds);
	strvec_free(&ro->cas);
	strvec_free(&ro->endpoints);
}

/* Prefixes compare without their slashes: "openai", "/openai" and "/openai/" are one route. */
static size_t key_len(const char *arg, const char **key)
{
	const char *eq = strchr(arg, '=');
	const char *k = arg;
	while (k < eq && *k == '/')
		k++;
	const char *e = eq;
	while (e > k && e[-1] == '/')
		e--;
	*key = k;
	return (size_t)(e - k);
}

static bool same_prefix(const char *a, const char *b)
{
	const char *ka, *kb;
	size_t la = key_len(a, &ka), lb = key_len(b, &kb);
	return la == lb && memcmp(ka, kb, la) == 0;
}

/* The value for route `r` from `v` (the last one given), or NULL. */
static const char *value_for(const struct strvec *v, const char *r)
{
	const char *found = NULL;
	for (size_t i = 0; i < v->n; i++)
		if (same_prefix(v->v[i], r))
			found = strchr(v->v[i], '=') + 1;
	return found;
}

static int orphan(const struct route_opts *ro, const struct strvec *v, const char *opt)
{
	for (size_t i = 0; i < v->n; i++) {
		bool ok = false;
		for (size_t k = 0; k < ro->routes.n && !ok; k++)
			ok = same_prefix(v->v[i], ro->routes.v[k]);
		if (!ok) {
			cli_err("%s %.*s=…: no --route with that prefix", opt, (int)(strchr(v->v[i], '=') - v->v[i]),
				v->v[i]);
			return EXIT_USAGE;
		}
	}
	return -1;
}

static int add_endpoints(const struct route_opts *ro, nono_proxy_config *cfg)
{
	nono_error err = {0};
	for (size_t i = 0; i < ro->endpoints.n; i++) {
		const char *a = ro->endpoints.v[i], *eq = strchr(a, '='), *colon = strchr(eq, ':');
		char prefix[128], method[32];
		snprintf(prefix, sizeof prefix, "%.*s", (int)(eq - a), a);
		snprintf(method, sizeof method, "%.*s", (int)(colon - eq - 1), eq + 1);
		if (nono_proxy_config_add_endpoint_rule(cfg, prefix, method, colon + 1, &err) < 0) {
			cli_err("--route-endpoint %s: %s", a, err.message);
			return EXIT_USAGE;
		}
	}
	return -1;
}

int route_opts_apply(const struct route_opts *ro, nono_proxy_config *cfg)
{
	int rc;
	if ((rc = orphan(ro, &ro->creds, "--credential")) >= 0 || (rc = orphan(ro, &ro->cas, "--route-ca")) >= 0 ||
	    (rc = orphan(ro, &ro->endpoints, "--route-endpoint")) >= 0)
		return rc;
	for (size_t i = 0; i < ro->routes.n; i++) {
		const char *a = ro->routes.v[i], *eq = strchr(a, '=');
		char prefix[128];
		snprintf(prefix, sizeof prefix, "%.*s", (int)(eq - a), a);
		nono_route_spec s;
		nono_route_spec_init(&s);
		s.prefix = prefix;
		s.upstream = eq + 1;
		s.credential_key = value_for(&ro->creds, a);
		s.tls_ca = value_for(&ro->cas, a);
		nono_error err = {0};
		if (nono_proxy_config_add_route(cfg, &s, &err) < 0) {
			cli_err("--route %s: %s", a, err.message);
			return err.code == -ENOMEM ? EXIT_INTERNAL : EXIT_USAGE;
		}
	}
	return add_endpoints(ro, cfg);
}

void route_opts_print(const nono_proxy_config *cfg, FILE *f)
{
	char line[1024];
	for (size_t i = 0; nono_proxy_config_describe_route(cfg, i, line, sizeof line) >= 0; i++)
		fprintf(f, "route: %s\n", line);
}

int route_env_merge(const nono_proxy *p, const char *const *user, char ***out)
{
	char **cred = NULL;
	nono_error err = {0};
	if (nono_proxy_credential_env(p, &cred, &err) < 0) {
		cli_err("%s", err.message);
		return EXIT_INTERNAL;
	}
	size_t nu = 0, nc = 0;
	while (user && user[nu])
		nu++;
	while (cred[nc])
		nc++;
	char **v = calloc(nu + nc + 1, sizeof *v);
	size_t n = 0;
	bool ok = v != NULL;
	for (size_t i = 0; ok && i < nu; i++) {
		size_t len = strcspn(user[i], "=");
		bool shadowed = false;
		for (size_t k = 0; k < nc && !shadowed; k++)
			shadowed = strncmp(cred[k], user[i], len) == 0 && cred[k][len] == '=';
		if (!shadowed)
			ok = (v[n++] = strdup(user[i])) != NULL;
	}
	for (size_t k = 0; ok && k < nc; k++)
		ok = (v[n++] = strdup(cred[k])) != NULL;
	nono_strv_free(cred);
	if (!ok) {
		nono_strv_free(v);
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	*out = v;
	return -1;
}

int route_opts_check_files(const struct route_opts *ro, const nono_caps *caps)
{
	for (size_t i = 0; i < ro->creds.n; i++) {
		const char *src = strchr(ro->creds.v[i], '=') + 1;
		if (strncmp(src, "file://", 7) != 0)
			continue;
		nono_decision d;
		nono_error err = {0};
		/* A secret the command can read is no phantom (review of 2026-12-04). */
		int rc = nono_caps_query_path(caps, src + 7, NONO_ACCESS_READ, &d, &err);
		if (rc != 0) {
			cli_err("--credential %s: cannot check the file against the grants: %s",
				ro->creds.v[i], err.message);
			return EXIT_USAGE;
		}
		if (d.allowed) {
			cli_err("--credential %s: the command could read this file (%s); keep the secret "
				"outside every grant", ro->creds.v[i], d.reason);
			return EXIT_USAGE;
		}
		/* The grants are checked by name: a second name (hard link) inside a grant would
		 * read the same secret. Finding every name is impossible, so a linked file is
		 * refused. */
		struct stat st;
		if (stat(src + 7, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1) {
			cli_err("--credential %s: the file has %ju hard links, one of which could be inside "
				"a grant; keep the secret in a file with a single name",
				ro->creds.v[i], (uintmax_t)st.st_nlink);
			return EXIT_USAGE;
		}
	}
	return -1;
}

void route_scrub_env(const struct route_opts *ro)
{
	for (size_t i = 0; i < ro->creds.n; i++) {
		const char *src = strchr(ro->creds.v[i], '=') + 1;
		if (strncmp(src, "env://", 6) != 0)
			continue;
		char *v = getenv(src + 6);
		if (v)
			explicit_bzero(v, strlen(v)); /* the original block is what /proc/PID/environ shows */
		unsetenv(src + 6);
	}
}
