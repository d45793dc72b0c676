/* profile_cmd.c — `nono profile list`, `nono profile show NAME|FILE`, `nono profile groups`:
 * which profiles exist, and what one grants (built exactly as `nono run --profile` builds it, in
 * the current directory) with where each grant comes from. */
#include "commands.h"
#include "help.h"
#include "policy.h"
#include "profile_opts.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void list_user(const char *dir)
{
	DIR *d = dir[0] ? opendir(dir) : NULL;
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > 5 && !strcmp(e->d_name + n - 5, ".json") && e->d_name[0] != '.')
			printf("  %-14.*s user: %s/%s\n", (int)(n - 5), e->d_name, dir, e->d_name);
	}
	closedir(d);
}

static int cmd_list(void)
{
	json_t *all = json_loads(profile_builtin_json(), 0, NULL);
	const char *name;
	json_t *doc;
	printf("Built-in profiles:\n");
	json_object_foreach(all, name, doc) {
		const char *desc =
			json_string_value(json_object_get(json_object_get(doc, "meta"), "description"));
		printf("  %-14s %s\n", name, desc ? desc : "");
	}
	json_decref(all);
	char dir[2048];
	profile_user_dir(dir, sizeof dir);
	printf("User profiles (%s; a user profile wins over a built-in of the same name):\n",
	       dir[0] ? dir : "no HOME");
	list_user(dir);
	return 0;
}

static int cmd_groups(void)
{
	nono_error err = {0};
	nono_policy *pol = nono_policy_load_embedded(&err);
	if (!pol) {
		cli_err("embedded policy: %s", err.message);
		return EXIT_INTERNAL;
	}
	for (size_t i = 0; i < nono_policy_group_count(pol); i++) {
		const char *g = nono_policy_group_name(pol, i);
		const char *d = nono_policy_group_description(pol, g);
		printf("  %-24s %s%s\n", g, nono_policy_group_required(pol, g) ? "(required) " : "",
		       d ? d : "");
	}
	nono_policy_free(pol);
	return 0;
}

static void show_header(const struct profile *p)
{
	printf("profile: %s (%s)\n", p->name, p->origin ? p->origin : "?");
	if (p->description)
		printf("description: %s\n", p->description);
	printf("chain:");
	for (size_t i = 0; i < p->chain.n; i++)
		printf("%s %s", i ? " ->" : "", p->chain.v[i]);
	printf("\ngroups:");
	for (size_t i = 0; i < nono_policy_resolved_group_count(p->resolved); i++)
		printf("%s %s", i ? "," : "", nono_policy_resolved_group(p->resolved, i));
	putchar('\n');
}

static void show_grants(const struct profile *p, const nono_caps *caps)
{
	printf("grants:\n");
	for (size_t i = 0; i < nono_caps_grant_count(caps); i++) {
		nono_grant g;
		nono_caps_grant(caps, i, &g);
		const char *from = profile_origin_of(p, g.resolved);
		if (!from)
			from = policy_is_system_path(g.original) ? "system" : "command line";
		printf("  %-10s %-5s %-44s %s\n", nono_access_name(g.access), g.is_file ? "file" : "dir",
		       g.resolved, from);
	}
	printf("skipped (path does not exist):\n");
	for (size_t i = 0; i < p->norigins; i++)
		if (p->origins[i].skipped)
			printf("  %-10s %-50s %s\n", nono_access_name(p->origins[i].access),
			       p->origins[i].path, p->origins[i].from);
	printf("denied (inside a grant: covered in the command's own mount namespace):\n");
	for (size_t i = 0; i < p->norigins; i++)
		if (!p->origins[i].access)
			printf("  %-61s %s\n", p->origins[i].path, p->origins[i].from);
}

static void show_rest(const struct run_opts *o, const nono_caps *caps)
{
	uint16_t port = 0;
	nono_net_mode m = nono_caps_network(caps, &port);
	printf("network: %s", o->domains.n || o->ro.routes.n ? "proxy-only" : nono_net_mode_name(m));
	for (size_t i = 0; i < o->domains.n; i++)
		printf("%s %s", i ? "," : ":", o->domains.v[i]);
	/* network.custom_credentials and interception (profile_net.c): sources, never secrets */
	const struct strvec *rv[] = {&o->ro.routes, &o->ro.creds, &o->ro.cas, &o->ro.endpoints};
	static const char *const rn[] = {"route", "credential", "route CA", "route endpoint"};
	for (size_t k = 0; k < N_ELEMENTS(rv); k++)
		for (size_t i = 0; i < rv[k]->n; i++)
			printf("\n%s: %s", rn[k], rv[k]->v[i]);
	if (o->icpt.on)
		printf("\nTLS interception: CA in %s", icpt_shown(&o->icpt));
	printf("\nenvironment: %s", o->inherit_env ? "inherited (loader variables dropped)"
						   : "empty");
	for (size_t i = 0; i < o->env.n; i++)
		printf("%s %s", i ? "," : "; set:", o->env.v[i]);
	putchar('\n');
}

static int cmd_show(const char *name)
{
	struct run_opts o = {0};
	o.profile = name;
	nono_caps *caps = NULL;
	int status = profile_opts_merge(&o);
	if (status < 0)
		status = policy_build_caps(&o, 0, &caps);
	if (status < 0) {
		show_header(o.prof);
		show_grants(o.prof, caps);
		show_rest(&o, caps);
		status = 0;
	}
	nono_caps_free(caps);
	run_opts_free(&o);
	return status;
}

int cmd_profile(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		help_profile(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "list") && argc == 2)
		return cmd_list();
	if (!strcmp(argv[1], "groups") && argc == 2)
		return cmd_groups();
	if (!strcmp(argv[1], "show") && argc == 3)
		return cmd_show(argv[2]);
	return cli_usage_error("profile ", "expected: nono profile list | show NAME|FILE | groups");
}
