/* policy_proxy.c — the proxy settings of a policy's groups (nono_policy_resolve_proxy): allowed
 * hosts, a connection limit, an upstream proxy and credential routes. Two groups that name
 * different values for a single setting are an error, never "last one wins". */
#include "policy_int.h"

#include <stdio.h>
#include <string.h>

void nono_policy_proxy_free(nono_policy_proxy *px)
{
	if (!px)
		return;
	nono_strv_free(px->hosts);
	free(px->upstream_proxy);
	for (size_t i = 0; i < px->nroutes; i++) {
		nono_policy_route *r = &px->routes[i];
		free(r->name);
		free(r->prefix);
		free(r->upstream);
		free(r->credential_key);
		free(r->inject_header);
		free(r->credential_format);
		free(r->env_var);
	}
	free(px->routes);
	free(px);
}

static int push_host(nono_policy_proxy *px, const char *h)
{
	for (size_t i = 0; i < px->nhosts; i++)
		if (!strcmp(px->hosts[i], h))
			return 0;
	char **nv = realloc(px->hosts, (px->nhosts + 2) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	px->hosts = nv;
	if (!(nv[px->nhosts] = strdup(h)))
		return -ENOMEM;
	nv[++px->nhosts] = NULL;
	return 0;
}

static char *opt_dup(json_t *obj, const char *key, bool *oom)
{
	const char *s = json_string_value(json_object_get(obj, key));
	char *d = s ? strdup(s) : NULL;
	*oom = *oom || (s && !d);
	return d;
}

static int add_route(nono_policy_proxy *px, const char *name, json_t *route, nono_error *err)
{
	for (size_t i = 0; i < px->nroutes; i++)
		if (!strcmp(px->routes[i].name, name))
			return nono_fail(err, -EINVAL, "credential route \"%.80s\" is defined twice",
					 name);
	nono_policy_route *nr = realloc(px->routes, (px->nroutes + 1) * sizeof *nr);
	if (!nr)
		return nono_fail(err, -ENOMEM, "out of memory");
	px->routes = nr;
	bool oom = false;
	nono_policy_route *r = &nr[px->nroutes++];
	*r = (nono_policy_route){0};
	r->name = strdup(name);
	oom = !r->name;
	r->prefix = opt_dup(route, "prefix", &oom);
	r->upstream = opt_dup(route, "upstream", &oom);
	r->credential_key = opt_dup(route, "credential_key", &oom);
	r->inject_header = opt_dup(route, "inject_header", &oom);
	r->credential_format = opt_dup(route, "credential_format", &oom);
	r->env_var = opt_dup(route, "env_var", &oom);
	return oom ? nono_fail(err, -ENOMEM, "out of memory") : 0;
}

/* One group's network section into *px. Returns 0 or -errno. */
static int take_network(nono_policy_proxy *px, json_t *net, nono_error *err)
{
	static const char *const host_keys[] = {"allow_domain", "allow_proxy"};
	for (size_t k = 0; k < N_ELEMENTS(host_keys); k++) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(net, host_keys[k]), i, e)
			if (push_host(px, json_string_value(e)))
				return nono_fail(err, -ENOMEM, "out of memory");
	}
	json_t *mc = json_object_get(net, "max_connections");
	if (mc) {
		unsigned v = (unsigned)json_integer_value(mc);
		if (px->max_connections && px->max_connections != v)
			return nono_fail(err, -EINVAL, "Conflicting max_connections values: %u and %u",
					 px->max_connections, v);
		px->max_connections = v;
	}
	const char *up = json_string_value(json_object_get(net, "external_proxy"));
	if (up && px->upstream_proxy && strcmp(up, px->upstream_proxy))
		return nono_fail(err, -EINVAL, "Conflicting upstream_proxy values: \"%.200s\" and "
				 "\"%.200s\"", px->upstream_proxy, up);
	if (up && !px->upstream_proxy && !(px->upstream_proxy = strdup(up)))
		return nono_fail(err, -ENOMEM, "out of memory");
	const char *name;
	json_t *route;
	json_object_foreach(json_object_get(net, "custom_credentials"), name, route) {
		int rc = add_route(px, name, route, err);
		if (rc)
			return rc;
	}
	return 0;
}

static bool has_proxy_settings(json_t *net)
{
	static const char *const keys[] = {"allow_domain", "allow_proxy", "max_connections",
					   "external_proxy", "custom_credentials"};
	for (size_t k = 0; k < N_ELEMENTS(keys); k++)
		if (json_object_get(net, keys[k]))
			return true;
	return false;
}

int nono_policy_resolve_proxy(const nono_policy *p, const char *const *names, size_t n,
			      nono_policy_proxy **out, nono_error *err)
{
	nono_error_clear(err);
	*out = NULL;
	if (!p || (n && !names))
		return nono_fail(err, -EINVAL, "policy: NULL argument");
	nono_policy_proxy *px = calloc(1, sizeof *px);
	if (!px)
		return nono_fail(err, -ENOMEM, "out of memory");
	bool any = false;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *g = names[i] ? nono_policy_group(p, names[i]) : NULL;
		if (!g) {
			rc = nono_fail(err, -EINVAL, "unknown policy group \"%.80s\"",
				       names[i] ? names[i] : "(null)");
			break;
		}
		json_t *net = json_object_get(g, "network");
		if (!nono_policy_group_on_linux(g) || !has_proxy_settings(net))
			continue;
		any = true;
		rc = take_network(px, net, err);
	}
	if (rc || !any) {
		nono_policy_proxy_free(px);
		return rc;
	}
	*out = px;
	return 0;
}
