/* profile_opts.c — `--profile` among the run/why options: the profile is loaded when the options
 * are parsed, and its network and environment join the options (the command line wins: its
 * --net-block keeps the profile's domains out, its --env replaces the profile's variable of the
 * same name). Its grants are added when the capability set is built (policy.c, profile_apply). */
#include "profile_opts.h"
#include "profile_net.h"

#include <stdlib.h>
#include <string.h>

void profile_opts_free(struct run_opts *o)
{
	if (o->prof) {
		profile_free(o->prof);
		free(o->prof);
		o->prof = NULL;
	}
}

static bool env_set_by_cli(const struct run_opts *o, const char *entry)
{
	size_t n = strcspn(entry, "=");
	for (size_t i = 0; i < o->env.n; i++)
		if (!strncmp(o->env.v[i], entry, n) && o->env.v[i][n] == '=')
			return true;
	return false;
}

static int merge_env(struct run_opts *o, const struct profile *p)
{
	struct strvec merged = {0};
	for (size_t i = 0; i < p->nenv; i++)
		if (!env_set_by_cli(o, p->env[i]) && strvec_push(&merged, p->env[i]) < 0)
			return EXIT_INTERNAL;
	for (size_t i = 0; i < o->env.n; i++)
		if (strvec_push(&merged, o->env.v[i]) < 0)
			return EXIT_INTERNAL;
	strvec_free(&o->env);
	o->env = merged;
	if (p->inherit_env == 1)
		o->inherit_env = true;
	return -1;
}

/* The profile's domains and its groups' domains, unless the command line blocks the network. */
static int merge_network(struct run_opts *o, struct profile *p)
{
	nono_policy_proxy *px = NULL;
	nono_error err = {0};
	if (nono_policy_resolve_proxy(p->policy, p->groups.v, p->groups.n, &px, &err) < 0) {
		cli_err("profile %s: %s", p->name, err.message);
		return EXIT_USAGE;
	}
	int status = -1;
	if (px && px->upstream_proxy) {
		cli_err("profile %s: external_proxy %s: nono's proxy does not chain to an upstream "
			"proxy", p->name, px->upstream_proxy);
		status = EXIT_USAGE;
	}
	if (status < 0 && px && px->nroutes) { /* never dropped in silence */
		cli_err("profile %s: route \"%s\" of its groups' custom_credentials is not applied by "
			"the CLI; put the route in the profile's network.custom_credentials", p->name,
			px->routes[0].name);
		status = EXIT_USAGE;
	}
	bool cli_net = o->net_block || o->domains.n || o->proxy_port_set;
	if (status < 0 && !cli_net && p->net_block == 1 && (p->domains.n || (px && px->nhosts))) {
		cli_err("profile %s: network.block contradicts the domains it allows", p->name);
		status = EXIT_USAGE;
	}
	if (status < 0 && !cli_net && p->net_block == 1)
		o->net_block = true;
	for (size_t i = 0; status < 0 && !o->net_block && i < p->domains.n; i++)
		if (strvec_push(&o->domains, p->domains.v[i]) < 0)
			status = EXIT_INTERNAL;
	for (size_t i = 0; status < 0 && !o->net_block && px && i < px->nhosts; i++)
		if (strvec_push(&o->domains, px->hosts[i]) < 0)
			status = EXIT_INTERNAL;
	p->proxy = px; /* o->domains borrows its host names */
	return status < 0 ? profile_net_to_opts(o, p) : status;
}

int profile_opts_merge(struct run_opts *o)
{
	if (!o->profile)
		return -1;
	o->prof = calloc(1, sizeof *o->prof);
	if (!o->prof)
		return EXIT_INTERNAL;
	int status = profile_load(o->profile, o->prof);
	if (status < 0)
		status = merge_network(o, o->prof);
	if (status < 0)
		status = merge_env(o, o->prof);
	return status;
}
