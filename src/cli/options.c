/* options.c — parsing `nono run` / `nono why` options (see options.h). The option table here is
 * what tests/integration/test_cli.py checks --help, docs/cli.md and docs/nono.1 against. */
#include "help.h"
#include "options.h"
#include "profile_opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
	OPT_ALLOW_FILE = 256,
	OPT_READ_FILE,
	OPT_WRITE_FILE,
	OPT_NO_SYSTEM,
	OPT_NET_BLOCK,
	OPT_UNIX,
	OPT_BIND,
	OPT_DOMAIN,
	OPT_INTERNAL,
	OPT_PROXY_PORT,
	OPT_AUDIT,
	OPT_WORKDIR,
	OPT_TIMEOUT,
	OPT_INHERIT,
	OPT_BEST_EFFORT,
	OPT_DRY_RUN,
	OPT_JSON,
	OPT_PATH,
	OPT_WRITE_Q,
	OPT_RW_Q,
	OPT_NET_Q,
	OPT_ALLOW_USERNS,
	OPT_HOST_Q,
	OPT_CLEAR_ENV,
	OPT_KEEP_TMP,
	OPT_NO_TMP,
	OPT_PROXY_URL,
	OPT_PROFILE,
	OPT_DENY,
	OPT_ROUTE,
	OPT_CREDENTIAL,
	OPT_ROUTE_CA,
	OPT_ROUTE_ENDPOINT,
	OPT_EXTERNAL_PROXY,
	OPT_BYPASS,
	OPT_ROLLBACK,
	OPT_RB_EXCLUDE,
	OPT_RB_INCLUDE,
	OPT_RB_GITIGNORE,
	OPT_RB_NO_DEFAULTS,
	OPT_NO_LEDGER,
	OPT_INTERCEPT,
	OPT_INTERCEPT_CA_DIR,
};

static const struct option run_longopts[] = {
	{"allow", required_argument, NULL, 'a'},
	{"read", required_argument, NULL, 'r'},
	{"write", required_argument, NULL, 'w'},
	{"allow-file", required_argument, NULL, OPT_ALLOW_FILE},
	{"read-file", required_argument, NULL, OPT_READ_FILE},
	{"write-file", required_argument, NULL, OPT_WRITE_FILE},
	{"no-system-paths", no_argument, NULL, OPT_NO_SYSTEM},
	{"net-block", no_argument, NULL, OPT_NET_BLOCK},
	{"allow-unix-socket", required_argument, NULL, OPT_UNIX},
	{"allow-bind", required_argument, NULL, OPT_BIND},
	{"allow-domain", required_argument, NULL, OPT_DOMAIN},
	{"allow-internal", required_argument, NULL, OPT_INTERNAL},
	{"proxy-port", required_argument, NULL, OPT_PROXY_PORT},
	{"audit-log", required_argument, NULL, OPT_AUDIT},
	{"workdir", required_argument, NULL, OPT_WORKDIR},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"env", required_argument, NULL, 'e'},
	{"inherit-env", no_argument, NULL, OPT_INHERIT},
	{"best-effort", no_argument, NULL, OPT_BEST_EFFORT},
	{"allow-userns", no_argument, NULL, OPT_ALLOW_USERNS},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"json", no_argument, NULL, OPT_JSON},
	{"path", required_argument, NULL, OPT_PATH},
	{"write-access", no_argument, NULL, OPT_WRITE_Q},
	{"read-write", no_argument, NULL, OPT_RW_Q},
	{"net", no_argument, NULL, OPT_NET_Q},
	{"host", required_argument, NULL, OPT_HOST_Q},
	{"quiet", no_argument, NULL, 'q'},
	{"verbose", no_argument, NULL, 'v'},
	{"clear-env", no_argument, NULL, OPT_CLEAR_ENV},
	{"keep-tmp", no_argument, NULL, OPT_KEEP_TMP},
	{"no-tmp", no_argument, NULL, OPT_NO_TMP},
	{"proxy-url", required_argument, NULL, OPT_PROXY_URL},
	{"profile", required_argument, NULL, OPT_PROFILE},
	{"deny", required_argument, NULL, OPT_DENY},
	{"route", required_argument, NULL, OPT_ROUTE},
	{"credential", required_argument, NULL, OPT_CREDENTIAL},
	{"route-ca", required_argument, NULL, OPT_ROUTE_CA},
	{"route-endpoint", required_argument, NULL, OPT_ROUTE_ENDPOINT},
	{"external-proxy", required_argument, NULL, OPT_EXTERNAL_PROXY},
	{"bypass", required_argument, NULL, OPT_BYPASS},
	{"rollback", no_argument, NULL, OPT_ROLLBACK},
	{"rollback-exclude", required_argument, NULL, OPT_RB_EXCLUDE},
	{"rollback-include", required_argument, NULL, OPT_RB_INCLUDE},
	{"rollback-gitignore", no_argument, NULL, OPT_RB_GITIGNORE},
	{"rollback-no-defaults", no_argument, NULL, OPT_RB_NO_DEFAULTS},
	{"no-ledger", no_argument, NULL, OPT_NO_LEDGER},
	{"intercept", no_argument, NULL, OPT_INTERCEPT},
	{"intercept-ca-dir", required_argument, NULL, OPT_INTERCEPT_CA_DIR},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* The filesystem grant options: option letter/code, its name, access, file or directory. */
static const struct grant_opt {
	int code;
	const char *name;
	nono_access access;
	bool file;
} grant_opts[] = {
	{'a', "--allow", NONO_ACCESS_READ_WRITE, false},
	{'r', "--read", NONO_ACCESS_READ, false},
	{'w', "--write", NONO_ACCESS_WRITE, false},
	{OPT_ALLOW_FILE, "--allow-file", NONO_ACCESS_READ_WRITE, true},
	{OPT_READ_FILE, "--read-file", NONO_ACCESS_READ, true},
	{OPT_WRITE_FILE, "--write-file", NONO_ACCESS_WRITE, true},
};

void run_opts_free(struct run_opts *o)
{
	free(o->grants);
	free(o->binds);
	strvec_free(&o->domains);
	strvec_free(&o->internal);
	strvec_free(&o->unix_socks);
	strvec_free(&o->env);
	strvec_free(&o->env_copy);
	profile_opts_free(o);
	strvec_free(&o->denies);
	route_opts_free(&o->ro);
	strvec_free(&o->bypass);
	strvec_free(&o->rb_exclude);
	strvec_free(&o->rb_include);
}

/* A grant option (return 1 when `c` is one; -1 out of memory), else 0. */
static int add_grant(struct run_opts *o, int c, const char *path)
{
	for (size_t i = 0; i < N_ELEMENTS(grant_opts); i++) {
		const struct grant_opt *g = &grant_opts[i];
		if (g->code != c)
			continue;
		struct grant_arg *n = realloc(o->grants, (o->ngrants + 1) * sizeof *n);
		if (!n)
			return -1;
		o->grants = n;
		n[o->ngrants++] = (struct grant_arg){g->name, path, g->access, g->file};
		return 1;
	}
	return 0;
}

static int add_bind(struct run_opts *o, const char *arg)
{
	uint16_t p;
	if (cli_parse_port("--allow-bind", arg, &p, false) < 0)
		return EXIT_USAGE;
	uint16_t *nb = realloc(o->binds, (o->nbinds + 1) * sizeof *nb);
	if (!nb)
		return EXIT_INTERNAL;
	o->binds = nb;
	nb[o->nbinds++] = p;
	return -1;
}

/* --env NAME=VALUE sets a variable, --env NAME copies the caller's (nono_env_compose checks both
 * again, with the names nono sets itself). */
static int add_env(struct run_opts *o, const char *sub, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (eq == arg || !*arg)
		return cli_usage_error(sub, "--env '%s': expected NAME or NAME=VALUE", arg);
	char vname[256];
	snprintf(vname, sizeof vname, "%.*s", (int)(eq ? eq - arg : (long)strlen(arg)), arg);
	if (nono_env_name_is_loader(vname)) {
		cli_err("--env %s: loader-control variables are refused (they would choose code for "
			"the sandboxed program)", vname);
		return EXIT_USAGE;
	}
	return strvec_push(eq ? &o->env : &o->env_copy, arg) < 0 ? EXIT_INTERNAL : -1;
}

/* The options other than grants. Returns -1 to go on, else an exit status. */
static int take_option(struct run_opts *o, int c, const char *sub, const char *arg)
{
	int rc = 0;
	switch (c) {
	case OPT_NO_SYSTEM: o->no_system = true; break;
	case OPT_NET_BLOCK: o->net_block = true; break;
	case OPT_UNIX: rc = strvec_push(&o->unix_socks, arg); break;
	case OPT_BIND: return add_bind(o, arg);
	case OPT_DOMAIN: rc = strvec_push(&o->domains, arg); break;
	case OPT_INTERNAL: rc = strvec_push(&o->internal, arg); break;
	case OPT_PROXY_PORT:
		if (cli_parse_port("--proxy-port", arg, &o->proxy_port, false) < 0)
			return EXIT_USAGE;
		o->proxy_port_set = true;
		break;
	case OPT_AUDIT: o->audit_log = arg; break;
	case OPT_WORKDIR: o->workdir = arg; break;
	case OPT_TIMEOUT:
		if (cli_parse_seconds("--timeout", arg, &o->timeout) < 0)
			return EXIT_USAGE;
		break;
	case 'e': return add_env(o, sub, arg);
	case OPT_INHERIT: o->inherit_env = true; break;
	case OPT_BEST_EFFORT: o->best_effort = true; break;
	case OPT_ALLOW_USERNS: o->allow_userns = true; break;
	case OPT_DRY_RUN: o->dry_run = true; break;
	case OPT_JSON: o->json = true; break;
	case OPT_PATH: o->why_path = arg; break;
	case OPT_WRITE_Q: o->why_access = NONO_ACCESS_WRITE; break;
	case OPT_RW_Q: o->why_access = NONO_ACCESS_READ_WRITE; break;
	case OPT_NET_Q: o->why_net = true; break;
	case OPT_HOST_Q: o->why_host = arg; break;
	case 'q': o->quiet = true; break;
	case 'v': o->verbose = true; break;
	case OPT_CLEAR_ENV: o->clear_env = true; break;
	case OPT_KEEP_TMP: o->keep_tmp = true; break;
	case OPT_NO_TMP: o->no_tmp = true; break;
	case OPT_PROXY_URL: o->proxy_url = arg; break;
	case OPT_DENY: rc = strvec_push(&o->denies, arg); break;
	case OPT_PROFILE:
		if (o->profile)
			return cli_usage_error(sub, "--profile given twice (use \"extends\" to combine)");
		o->profile = arg;
		break;
	case OPT_ROUTE: return route_opts_route(&o->ro, arg);
	case OPT_CREDENTIAL: return route_opts_credential(&o->ro, arg);
	case OPT_ROUTE_CA: return route_opts_ca(&o->ro, arg);
	case OPT_ROUTE_ENDPOINT: return route_opts_endpoint(&o->ro, arg);
	case OPT_EXTERNAL_PROXY: o->external_proxy = arg; break;
	case OPT_BYPASS: rc = strvec_push(&o->bypass, arg); break;
	case OPT_ROLLBACK: o->rollback = true; break;
	case OPT_RB_EXCLUDE: rc = strvec_push(&o->rb_exclude, arg); break;
	case OPT_RB_INCLUDE: rc = strvec_push(&o->rb_include, arg); break;
	case OPT_RB_GITIGNORE: o->rb_gitignore = true; break;
	case OPT_RB_NO_DEFAULTS: o->rb_no_defaults = true; break;
	case OPT_NO_LEDGER: o->no_ledger = true; break;
	case OPT_INTERCEPT: return icpt_opt(&o->icpt, NULL, sub);
	case OPT_INTERCEPT_CA_DIR: return icpt_opt(&o->icpt, arg, sub);
	}
	return rc < 0 ? EXIT_INTERNAL : -1;
}

/* Options that belong to the other subcommand are errors, not silently ignored. */
static bool wrong_subcommand(int c, enum run_mode mode)
{
	bool why_only = c == OPT_PATH || c == OPT_WRITE_Q || c == OPT_RW_Q || c == OPT_NET_Q ||
			c == OPT_HOST_Q;
	bool run_only = c == OPT_DRY_RUN || c == OPT_TIMEOUT || c == OPT_WORKDIR || c == 'e' ||
			c == OPT_INHERIT || c == OPT_AUDIT || c == 'q' || c == 'v' ||
			c == OPT_CLEAR_ENV || c == OPT_KEEP_TMP || c == OPT_NO_TMP || c == OPT_ROUTE ||
			c == OPT_CREDENTIAL || c == OPT_ROUTE_CA || c == OPT_ROUTE_ENDPOINT ||
			c == OPT_EXTERNAL_PROXY || c == OPT_BYPASS || c == OPT_ROLLBACK ||
			c == OPT_RB_EXCLUDE || c == OPT_RB_INCLUDE || c == OPT_RB_GITIGNORE ||
			c == OPT_RB_NO_DEFAULTS || c == OPT_NO_LEDGER || c == OPT_INTERCEPT ||
			c == OPT_INTERCEPT_CA_DIR;
	return (mode == MODE_RUN && why_only) || (mode == MODE_WHY && run_only);
}

/* The environment, temp dir and shared-proxy options that exclude each other. */
static int check_env_tmp_rules(const struct run_opts *o, const char *sub)
{
	if (o->clear_env && o->inherit_env)
		return cli_usage_error(sub, "--clear-env conflicts with --inherit-env");
	if (o->keep_tmp && o->no_tmp)
		return cli_usage_error(sub, "--keep-tmp conflicts with --no-tmp");
	/* Routes too: they run in nono's own proxy, and --proxy-url was then ignored in silence
	 * (review R4). Domains and routes may come from a profile. */
	if (o->proxy_url && (o->domains.n || o->ro.routes.n || o->proxy_port_set))
		return cli_usage_error(sub, "--proxy-url names a proxy already running; it conflicts "
					    "with --allow-domain and --route, from the command line or a "
					    "profile (nono starts its own proxy for them), and --proxy-port "
					    "(the URL has the port)");
	return -1;
}

/* The CLI's own rules about its options (the grant combinations are the library's). */
static int check_cli_rules(struct run_opts *o, enum run_mode mode, const char *sub)
{
	bool proxy = o->domains.n > 0 || o->ro.routes.n > 0;
	if (o->net_block && (proxy || o->proxy_port_set || o->proxy_url))
		return cli_usage_error(sub, "--net-block conflicts with --allow-domain/--route/"
					    "--proxy-port/--proxy-url");
	int rc = check_env_tmp_rules(o, sub);
	if (rc >= 0)
		return rc;
	if (o->internal.n && !proxy)
		return cli_usage_error(sub, "--allow-internal needs --allow-domain (it configures the "
					    "proxy nono starts)");
	/* --audit-log: every mode has supervisor decisions to log now (metadata writes and watches,
	 * issue 11), network allowed included. */
	if ((o->external_proxy || o->bypass.n) && !proxy)
		return cli_usage_error(sub, "--external-proxy/--bypass need --allow-domain (they configure "
					    "the proxy nono starts)");
	if ((rc = icpt_check(&o->icpt, o->ro.routes.n, sub)) >= 0)
		return rc;
	if (!o->rollback && (o->rb_exclude.n || o->rb_include.n || o->rb_gitignore || o->rb_no_defaults))
		return cli_usage_error(sub, "--rollback-exclude/-include/-gitignore/-no-defaults go with "
					    "--rollback");
	if (o->json && !o->dry_run && !o->why_host)
		return cli_usage_error(sub, mode == MODE_RUN ? "--json applies to --dry-run"
							     : "--json applies to --host");
	if (o->quiet && o->verbose)
		return cli_usage_error(sub, "-q and -v contradict each other");
	if (mode == MODE_RUN && o->ncmd == 0 && !o->dry_run)
		return cli_usage_error(sub, "no command given: nono run [OPTIONS] -- COMMAND [ARGS...]");
	if (mode == MODE_WHY) {
		if (o->ncmd)
			return cli_usage_error(sub, "unexpected argument '%s'", o->cmd[0]);
		if ((o->why_path != NULL) + o->why_net + (o->why_host != NULL) != 1)
			return cli_usage_error(sub, "give exactly one of --path PATH, --net or "
						    "--host HOST[:PORT]");
		if (o->why_access && !o->why_path)
			return cli_usage_error(sub, "--write-access/--read-write go with --path");
		if (!o->why_access)
			o->why_access = NONO_ACCESS_READ;
	}
	if (o->workdir) {
		struct stat st;
		if (stat(o->workdir, &st) < 0)
			return cli_usage_error(sub, "--workdir %s: %s", o->workdir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return cli_usage_error(sub, "--workdir %s: not a directory", o->workdir);
	}
	return -1;
}

int run_opts_parse(int argc, char **argv, enum run_mode mode, struct run_opts *o)
{
	const char *sub = mode == MODE_RUN ? "run " : "why ";
	int c, li;
	opterr = 0;
	optind = 1;
	/* `nono why --write PATH` reads naturally, but --write is also the write grant: in why mode
	 * the query flag is spelled --write-access / --read-write. */
	while ((c = getopt_long(argc, argv, "+:a:r:w:e:hqv", run_longopts, &li)) != -1) {
		if (c == 'h') {
			(mode == MODE_RUN ? help_run : help_why)(stdout);
			return 0;
		}
		if (c == ':')
			return cli_usage_error(sub, "option '%s' needs an argument", argv[optind - 1]);
		if (c == '?')
			return cli_usage_error(sub, "unknown option '%s'", argv[optind - 1]);
		if (wrong_subcommand(c, mode))
			return cli_usage_error(sub, "option '--%s' does not apply to '%s'",
					       c >= 256 ? run_longopts[li].name
							: c == 'q' ? "quiet" : c == 'v' ? "verbose" : "env",
					       mode == MODE_RUN ? "run" : "why");
		int g = add_grant(o, c, optarg);
		if (g < 0)
			return EXIT_INTERNAL;
		int rc = g ? -1 : take_option(o, c, sub, optarg);
		if (rc >= 0)
			return rc;
	}
	o->cmd = argv + optind;
	o->ncmd = argc - optind;
	int status = profile_opts_merge(o);
	return status >= 0 ? status : check_cli_rules(o, mode, sub);
}
