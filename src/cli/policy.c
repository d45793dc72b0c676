/* policy.c — see policy.h. */
#include "policy.h"
#include "sysetc.h"
#include "profile.h"
#include "extproxy.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The default system set: enough for ordinary dynamically linked programs to start and for
 * shells to redirect to /dev/null. Read-only except the harmless character devices. Each entry is
 * added only when present. docs/cli.md "System paths" lists the same. */
static const struct sys_path {
	const char *path;
	nono_access access;
	bool file;
} sys_paths[] = {
	{"/usr", NONO_ACCESS_READ, false},	   {"/bin", NONO_ACCESS_READ, false},
	{"/sbin", NONO_ACCESS_READ, false},	   {"/lib", NONO_ACCESS_READ, false},
	{"/lib32", NONO_ACCESS_READ, false},	   {"/lib64", NONO_ACCESS_READ, false},
	{"/etc", NONO_ACCESS_READ, false},	   {"/dev/null", NONO_ACCESS_READ_WRITE, true},
	{"/dev/zero", NONO_ACCESS_READ_WRITE, true}, {"/dev/full", NONO_ACCESS_READ_WRITE, true},
	{"/dev/tty", NONO_ACCESS_READ_WRITE, true},  {"/dev/urandom", NONO_ACCESS_READ, true},
	{"/dev/random", NONO_ACCESS_READ, true},
};

bool policy_is_system_path(const char *original)
{
	for (size_t i = 0; i < N_ELEMENTS(sys_paths); i++)
		if (!strcmp(original, sys_paths[i].path))
			return true;
	return !strncmp(original, "/etc/", 5); /* sysetc.c: /etc entry by entry */
}

static int grant(nono_caps *caps, const char *path, nono_access a, bool file, nono_error *err)
{
	return file ? nono_caps_allow_file(caps, path, a, err)
		    : nono_caps_allow_path(caps, path, a, err);
}

static int add_paths(nono_caps *caps, const struct run_opts *o)
{
	nono_error err = {0};
	for (size_t i = 0; !o->no_system && i < N_ELEMENTS(sys_paths); i++) {
		const struct sys_path *s = &sys_paths[i];
		if (!strcmp(s->path, "/etc")) { /* without its secrets: sysetc.c */
			if (sysetc_grant(caps, NULL, NULL) < 0)
				return EXIT_USAGE;
			continue;
		}
		int r = grant(caps, s->path, s->access, s->file, &err);
		if (r == -ENOENT)
			continue; /* "when present" */
		if (r < 0) {
			cli_err("system path %s: %s (use --no-system-paths and grant what you need)",
				s->path, err.message);
			return EXIT_USAGE;
		}
		/* provenance for front ends (nono_grant.source); cannot fail for the last grant */
		(void)nono_caps_set_grant_source(caps, nono_caps_grant_count(caps) - 1,
						 NONO_SOURCE_SYSTEM, NULL, NULL);
	}
	for (size_t i = 0; i < o->ngrants; i++) {
		const struct grant_arg *g = &o->grants[i];
		if (grant(caps, g->path, g->access, g->file, &err) < 0) {
			cli_err("%s %s: %s", g->opt, g->path, err.message);
			return EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < o->denies.n; i++) {
		char abs[4096];
		const char *d = o->denies.v[i];
		if (d[0] != '/' && getcwd(abs, sizeof abs - strlen(d) - 2)) {
			strcat(strcat(abs, "/"), d); /* relative: from the current directory */
			d = abs;
		}
		if (nono_caps_deny_path(caps, d, &err) < 0) {
			cli_err("--deny %s: %s", o->denies.v[i], err.message);
			return EXIT_USAGE;
		}
	}
	nono_caps_deduplicate(caps);
	return -1;
}

/* --proxy-url: proxy-only to the URL's own loopback address and port. */
static int policy_proxy_url_network(nono_caps *caps, const char *url, nono_error *err)
{
	const char *addr;
	uint16_t port;
	int r = nono_proxy_url_parse(url, &addr, &port, err);
	if (!r)
		r = nono_caps_set_network(caps, NONO_NET_PROXY_ONLY, port, err);
	if (!r)
		r = nono_caps_set_proxy_address(caps, addr, err);
	return r;
}

static int add_network(nono_caps *caps, const struct run_opts *o, uint16_t proxy_port)
{
	nono_error err = {0};
	int r = 0;
	if (o->net_block)
		r = nono_caps_set_network(caps, NONO_NET_BLOCKED, 0, &err);
	else if (o->domains.n || o->ro.routes.n || o->proxy_port_set)
		r = nono_caps_set_network(caps, NONO_NET_PROXY_ONLY, proxy_port, &err);
	else if (o->proxy_url)
		r = policy_proxy_url_network(caps, o->proxy_url, &err);
	if (r < 0) {
		cli_err("network: %s", err.message);
		return EXIT_USAGE;
	}
	nono_caps_set_user_namespaces(caps, o->allow_userns);
	for (size_t i = 0; i < o->unix_socks.n; i++)
		if (nono_caps_allow_unix_socket(caps, o->unix_socks.v[i], &err) < 0) {
			cli_err("--allow-unix-socket %s: %s", o->unix_socks.v[i], err.message);
			return EXIT_USAGE;
		}
	for (size_t i = 0; i < o->nbinds; i++)
		if (nono_caps_allow_bind(caps, o->binds[i], &err) < 0) {
			cli_err("--allow-bind %u: %s", (unsigned)o->binds[i], err.message);
			return EXIT_USAGE;
		}
	/* --allow-internal: the proxy may dial it (policy_build_proxy_config) and the command may
	 * connect to it directly (the supervisor approves exactly these addresses and port). */
	for (size_t i = 0; i < o->internal.n; i++)
		if (nono_caps_allow_internal(caps, o->internal.v[i], &err) < 0) {
			cli_err("--allow-internal %s: %s", o->internal.v[i], err.message);
			return EXIT_USAGE;
		}
	return -1;
}

int policy_build_caps(const struct run_opts *o, uint16_t proxy_port, nono_caps **out)
{
	nono_caps *caps = nono_caps_new();
	if (!caps) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	int status = add_paths(caps, o);
	if (status < 0 && o->prof) /* after the command line's grants: it checks deny paths */
		status = profile_apply(o->prof, caps, o->workdir);
	if (status < 0)
		status = add_network(caps, o, proxy_port);
	if (status >= 0) {
		nono_caps_free(caps);
		return status;
	}
	*out = caps;
	return -1;
}

int policy_build_proxy_config(const struct run_opts *o, nono_proxy_config **out)
{
	nono_error err = {0};
	nono_proxy_config *cfg = nono_proxy_config_new();
	if (!cfg) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	for (size_t i = 0; i < o->domains.n; i++)
		if (nono_proxy_config_allow_host(cfg, o->domains.v[i], &err) < 0) {
			cli_err("--allow-domain %s: %s", o->domains.v[i], err.message);
			goto usage;
		}
	for (size_t i = 0; i < o->internal.n; i++)
		if (nono_proxy_config_allow_internal(cfg, o->internal.v[i], &err) < 0) {
			cli_err("--allow-internal %s: %s", o->internal.v[i], err.message);
			goto usage;
		}
	if (o->proxy_port_set &&
	    nono_proxy_config_set_listen(cfg, "127.0.0.1", o->proxy_port, &err) < 0) {
		cli_err("--proxy-port %u: %s", (unsigned)o->proxy_port, err.message);
		goto usage;
	}
	int rc = route_opts_apply(&o->ro, cfg);
	if (rc >= 0) {
		nono_proxy_config_free(cfg);
		return rc;
	}
	if (o->audit_log && nono_proxy_config_set_audit_log(cfg, o->audit_log, &err) < 0) {
		cli_err("--audit-log %s: %s", o->audit_log, err.message);
		goto usage;
	}
	if (cli_external_proxy(cfg, o->external_proxy, &o->bypass) >= 0)
		goto usage;
	*out = cfg;
	return -1;
usage:
	nono_proxy_config_free(cfg);
	return EXIT_USAGE;
}

int policy_plan(const nono_caps *caps, const struct run_opts *o, nono_report *rep, nono_error *err)
{
	memset(rep, 0, sizeof *rep);
	return nono_plan_report(caps, o->best_effort ? NONO_FLAG_BEST_EFFORT : 0, rep, err);
}
