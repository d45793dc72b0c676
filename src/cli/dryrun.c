/* dryrun.c — see dryrun.h. Everything printed comes from structured fields: the capability set
 * (nono_caps_*), the options, the plan's report (nono_report fields, nono_report_json, and its
 * `text` lines as they are) and the kernel support report. No port is printed that will not be
 * used: with --allow-domain and no --proxy-port the port is chosen when the proxy starts. */
#include "dryrun.h"
#include "jsonstr.h"
#include "extproxy.h"
#include "policy.h"
#include "runenv.h"
#include "sysetc.h"
#include "profile.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The short forms of the grant table. */
static const char *access_short(nono_access a)
{
	return a == NONO_ACCESS_READ ? "r" : a == NONO_ACCESS_WRITE ? "w" : "rw";
}

struct dry {
	const struct run_opts *o;
	const nono_caps *caps;
	nono_report rep;
	nono_error err;
	int rc; /* the plan's verdict */
	nono_support sup;
	nono_net_mode net;
	uint16_t port; /* proxy-only: 0 = chosen at start */
};

/* ---- JSON ---- */

/* A JSON value from library-made JSON text (null when it cannot be had). */
static json_t *json_from(char *text)
{
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return j ? j : json_null();
}

static json_t *grants_json(const nono_caps *caps)
{
	json_t *a = json_array();
	for (size_t i = 0; i < nono_caps_grant_count(caps); i++) {
		nono_grant g;
		nono_caps_grant(caps, i, &g);
		json_array_append_new(a, json_pack("{s:o, s:o, s:s, s:s, s:b}", "path",
						   cli_json_str(g.original), "resolved",
						   cli_json_str(g.resolved), "access",
						   nono_access_name(g.access), "kind",
						   g.is_file ? "file" : "dir", "system",
						   policy_is_system_path(g.original)));
	}
	return a;
}

static json_t *strings_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, cli_json_str(v[i]));
	return a;
}

/* --allow-internal grants, one entry per resolved address. */
static json_t *internal_json(const nono_caps *caps)
{
	json_t *a = json_array();
	for (size_t i = 0; i < nono_caps_internal_count(caps); i++) {
		nono_internal_dest x;
		if (nono_caps_internal(caps, i, &x) == 0)
			json_array_append_new(a, json_pack("{s:s, s:s, s:i}", "host", x.host, "addr",
							   x.addr, "port", (int)x.port));
	}
	return a;
}

static json_t *network_json(const struct dry *d)
{
	const struct run_opts *o = d->o;
	json_t *socks = json_array(), *binds = json_array();
	for (size_t i = 0; i < nono_caps_unix_socket_count(d->caps); i++)
		json_array_append_new(socks, cli_json_str(nono_caps_unix_socket(d->caps, i)));
	for (size_t i = 0; i < nono_caps_bind_port_count(d->caps); i++)
		json_array_append_new(binds, json_integer(nono_caps_bind_port(d->caps, i)));
	json_t *net = json_pack("{s:s, s:o, s:o, s:b}", "mode", nono_net_mode_name(d->net),
				"proxy_port", d->port ? json_integer(d->port) : json_null(),
				"allowed_domains", strings_json(o->domains.v, o->domains.n),
				"in_process_proxy", o->domains.n > 0 || o->ro.routes.n > 0);
	json_object_set_new(net, "internal", internal_json(d->caps));
	char *np = nono_caps_no_proxy(d->caps);
	json_object_set_new(net, "no_proxy",
			    (o->domains.n || o->ro.routes.n) && np ? json_string(np) : json_null());
	free(np);
	if (o->ro.routes.n) { /* only with routes: the key set of other dry runs stays as it was */
		json_t *routes = json_array();
		char line[1024];
		for (size_t i = 0; o->pcfg && nono_proxy_config_describe_route(o->pcfg, i, line, sizeof line) >= 0; i++)
			json_array_append_new(routes, json_string(line));
		json_object_set_new(net, "routes", routes);
	}
	if (o->icpt.on) /* only with interception: the key set of other dry runs stays as it was */
		json_object_set_new(net, "intercept_ca_dir",
				    o->icpt.dir ? json_string(o->icpt.dir) : json_string("per-session"));
	if (o->external_proxy) {
		char shown[512];
		json_object_set_new(net, "external_proxy",
				    json_string(cli_external_proxy_shown(o->external_proxy, shown, sizeof shown)));
		json_object_set_new(net, "bypass_hosts", strings_json(o->bypass.v, o->bypass.n));
	}
	return json_pack("{s:o, s:o, s:o}", "network", net, "unix_sockets", socks, "bind_ports",
			 binds);
}

/* The names the command's environment would hold (values are not shown: they may be secrets).
 * The private temp dir is named by a placeholder: it is created when the command starts. */
static char **env_preview(const struct run_opts *o, const nono_caps *caps)
{
	char **env = NULL;
	if (runenv_build(o, caps, o->no_tmp ? NULL : "(private temp dir)", true, &env) >= 0)
		return NULL;
	return env;
}

static const char *env_base_name(const struct run_opts *o)
{
	return o->clear_env ? "clear" : o->inherit_env ? "inherit" : "basic";
}

static json_t *env_json(const struct run_opts *o, const nono_caps *caps)
{
	json_t *names = json_array(), *set = json_array();
	char **env = env_preview(o, caps);
	for (char **p = env; p && *p; p++)
		json_array_append_new(names, json_stringn(*p, strcspn(*p, "=")));
	nono_strv_free(env);
	for (size_t i = 0; i < o->env.n; i++) {
		const char *eq = strchr(o->env.v[i], '=');
		json_array_append_new(set, json_stringn(o->env.v[i], (size_t)(eq - o->env.v[i])));
	}
	return json_pack("{s:s, s:b, s:o, s:o, s:o, s:b}", "base", env_base_name(o), "inherit",
			 o->inherit_env, "set", set, "copied",
			 strings_json(o->env_copy.v, o->env_copy.n), "names", names, "private_tmp",
			 !o->no_tmp);
}

static void withheld_json_cb(const char *path, void *ctx)
{
	json_array_append_new(ctx, cli_json_str(path));
}

static void withheld_text_cb(const char *path, void *ctx)
{
	(void)ctx;
	printf(" %s", path);
}

/* The secrets the system set leaves out (sysetc.c), walked again on a scratch set. */
static void system_withheld(sysetc_cb cb, void *ctx)
{
	nono_caps *scratch = nono_caps_new();
	if (scratch)
		sysetc_grant(scratch, cb, ctx);
	nono_caps_free(scratch);
}

static json_t *enforcement_json(const struct dry *d)
{
	json_t *enf = json_from(nono_report_json(&d->rep));
	if (!json_is_object(enf))
		return enf;
	json_object_set_new(enf, "ok", json_boolean(d->rc == 0));
	json_object_set_new(enf, "error", d->rc == 0 ? json_null() : json_string(d->err.message));
	return enf;
}

static int print_json(const struct dry *d)
{
	const struct run_opts *o = d->o;
	json_t *root = json_object(), *net = network_json(d);
	json_object_set_new(root, "command",
			    strings_json((const char *const *)o->cmd, (size_t)o->ncmd));
	json_object_set_new(root, "grants", grants_json(d->caps));
	json_object_set_new(root, "system_paths", json_boolean(!o->no_system));
	json_object_update(root, net); /* network, unix_sockets, bind_ports */
	json_decref(net);
	json_object_set_new(root, "env", env_json(o, d->caps));
	json_t *withheld = json_array();
	if (!o->no_system)
		system_withheld(withheld_json_cb, withheld);
	json_object_set_new(root, "system_withheld", withheld);
	json_object_set_new(root, "workdir", o->workdir ? cli_json_str(o->workdir) : json_null());
	json_object_set_new(root, "timeout", o->timeout > 0 ? json_real(o->timeout) : json_null());
	json_object_set_new(root, "best_effort", json_boolean(o->best_effort));
	json_object_set_new(root, "enforcement", enforcement_json(d));
	json_object_set_new(root, "support", json_from(nono_support_json(&d->sup)));
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	puts(s);
	free(s);
	return 0;
}

/* ---- text ---- */

static void print_grants(const nono_caps *caps, const struct profile *prof)
{
	size_t ng = nono_caps_grant_count(caps);
	printf("filesystem grants (%zu):\n", ng);
	for (size_t i = 0; i < ng; i++) {
		nono_grant g;
		nono_caps_grant(caps, i, &g);
		printf("  %-2s  %-4s  %s", access_short(g.access), g.is_file ? "file" : "dir",
		       g.resolved);
		if (strcmp(g.original, g.resolved))
			printf("  (from %s)", g.original);
		const char *from = profile_origin_of(prof, g.resolved);
		if (from)
			printf("  [%s]", from);
		else if (policy_is_system_path(g.original))
			printf("  [system]");
		putchar('\n');
	}
	if (!ng)
		printf("  (none: no filesystem access at all)\n");
}

static void print_network(const struct dry *d)
{
	const struct run_opts *o = d->o;
	printf("network: %s", nono_net_mode_name(d->net));
	if (d->net == NONO_NET_PROXY_ONLY) {
		if (!d->port)
			printf(" (nono's proxy on 127.0.0.1, port chosen at start)");
		else
			printf(" (%s %s%s%s:%u)", o->domains.n || o->ro.routes.n ? "nono's proxy on" : "proxy at",
			       strchr(nono_caps_proxy_address(d->caps), ':') ? "[" : "",
			       nono_caps_proxy_address(d->caps),
			       strchr(nono_caps_proxy_address(d->caps), ':') ? "]" : "",
			       (unsigned)d->port);
	}
	putchar('\n');
	if (o->domains.n) {
		printf("allowed domains:");
		for (size_t i = 0; i < o->domains.n; i++)
			printf(" %s", o->domains.v[i]);
		putchar('\n');
	}
	size_t ni = nono_caps_internal_count(d->caps);
	if (ni) {
		printf("internal (directly and through the proxy):");
		for (size_t i = 0; i < ni; i++) {
			nono_internal_dest x;
			if (nono_caps_internal(d->caps, i, &x) == 0)
				printf(" %s%s%s:%u%s%s%s", strchr(x.addr, ':') ? "[" : "", x.addr,
				       strchr(x.addr, ':') ? "]" : "", (unsigned)x.port,
				       strcmp(x.host, x.addr) ? " (" : "", strcmp(x.host, x.addr) ? x.host : "",
				       strcmp(x.host, x.addr) ? ")" : "");
		}
		putchar('\n');
	}
	if (o->domains.n || o->ro.routes.n) {
		char *np = nono_caps_no_proxy(d->caps);
		printf("NO_PROXY: %s\n", np && *np ? np : "(empty: everything goes through the proxy)");
		free(np);
	}
	if (o->pcfg)
		route_opts_print(o->pcfg, stdout); /* the secret's source, never its value */
	if (o->icpt.on)
		printf("TLS interception: CONNECTs to the routes' upstreams get the routes; session CA in %s "
		       "(its bundle nono-ca-bundle.pem read-only for the command; the key never leaves nono)\n", icpt_shown(&o->icpt));
	if (o->external_proxy) {
		char shown[512];
		printf("external proxy: %s", cli_external_proxy_shown(o->external_proxy, shown, sizeof shown));
		for (size_t i = 0; i < o->bypass.n; i++)
			printf("%s%s", i ? " " : "; bypass: ", o->bypass.v[i]);
		putchar('\n');
	}
	size_t ns = nono_caps_unix_socket_count(d->caps), nb = nono_caps_bind_port_count(d->caps);
	printf("unix sockets:");
	if (!ns)
		printf(" none%s", d->net == NONO_NET_ALLOWED ? " restricted" : " allowed");
	for (size_t i = 0; i < ns; i++)
		printf(" %s", nono_caps_unix_socket(d->caps, i));
	printf("\nbind ports:");
	if (!nb)
		printf(" %s", d->net == NONO_NET_ALLOWED ? "not restricted" : "none");
	for (size_t i = 0; i < nb; i++)
		printf(" %u", (unsigned)nono_caps_bind_port(d->caps, i));
	putchar('\n');
}

static void print_process(const struct run_opts *o, const nono_caps *caps)
{
	printf("environment (%s%s):", env_base_name(o),
	       o->inherit_env ? ", loader variables dropped" : "");
	char **env = env_preview(o, caps);
	for (char **p = env; p && *p; p++)
		printf(" %.*s", (int)strcspn(*p, "="), *p);
	if (!env || !env[0])
		printf(" (empty)");
	nono_strv_free(env);
	putchar('\n');
	if (o->no_tmp)
		printf("private temp dir: none (--no-tmp)\n");
	else
		printf("private temp dir: a fresh directory under %s, read-write, in TMPDIR/TMP/TEMP; "
		       "%s\n", "$TMPDIR or /tmp",
		       o->keep_tmp ? "kept afterwards (--keep-tmp)"
				   : "removed when the command and all it started have exited");
	if (o->workdir)
		printf("workdir: %s\n", o->workdir);
	if (o->timeout > 0)
		printf("timeout: %gs\n", o->timeout);
}

/* The report's lines as the library rendered them, indented. */
static void print_enforcement(const struct dry *d)
{
	printf("enforcement on this kernel (%s, Landlock ABI %d)%s:\n", d->sup.kernel_release,
	       d->sup.landlock_abi, d->o->best_effort ? " [best effort]" : "");
	const char *t = d->rep.text;
	while (*t) {
		size_t n = strcspn(t, "\n");
		printf("  %.*s\n", (int)n, t);
		t += n + (t[n] == '\n');
	}
	if (d->rc < 0)
		printf("REFUSED: %s\n", d->err.message);
}

static void print_text(const struct dry *d)
{
	const struct run_opts *o = d->o;
	printf("command: ");
	if (!o->ncmd)
		printf("(none)");
	for (int i = 0; i < o->ncmd; i++)
		printf("%s%s", i ? " " : "", o->cmd[i]);
	printf("   [dry run: nothing is executed]\n");
	print_grants(d->caps, d->o->prof);
	if (!o->no_system) {
		printf("withheld from the system set (secrets):");
		system_withheld(withheld_text_cb, NULL);
		putchar('\n');
	}
	print_network(d);
	print_process(o, d->caps);
	print_enforcement(d);
}

int dry_run(const struct run_opts *o, const nono_caps *caps)
{
	struct dry d = {.o = o, .caps = caps};
	d.rc = policy_plan(caps, o, &d.rep, &d.err);
	nono_support_query(&d.sup);
	d.net = nono_caps_network(caps, &d.port);
	int status = 0;
	if (o->json)
		status = print_json(&d);
	else
		print_text(&d);
	fflush(stdout);
	if (status)
		return status;
	if (d.rc == -EOPNOTSUPP) {
		cli_err("this kernel cannot enforce the policy: %s", d.err.message);
		return EXIT_UNENFORCEABLE;
	}
	if (d.rc < 0) {
		cli_err("%s", d.err.message);
		return EXIT_USAGE;
	}
	return 0;
}
