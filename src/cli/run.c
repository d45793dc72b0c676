/* run.c — `nono run` (and `nono why`, which shares its policy options).
 *
 * Options become a capability set (the default system set first, then the user's grants), a network
 * mode, and exec options; --allow-domain starts the in-process filtering proxy and makes the network
 * proxy-only on its port. Exit status: the command's own, or one of nono's codes in cli.h. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
#define N_SYS_PATHS (sizeof sys_paths / sizeof sys_paths[0])

/* A placeholder proxy port for --dry-run when the real one is chosen at start (ephemeral). */
#define DRY_RUN_PORT_PLACEHOLDER 65535

struct grant_arg {
	const char *opt;
	const char *path;
	nono_access access;
	bool file;
};

enum mode { MODE_RUN, MODE_WHY };

struct run_opts {
	struct grant_arg *grants;
	size_t ngrants;
	bool no_system;
	bool net_block;
	struct strvec domains, internal, unix_socks, env;
	uint16_t *binds;
	size_t nbinds;
	bool proxy_port_set;
	uint16_t proxy_port;
	const char *audit_log, *workdir;
	double timeout;
	bool inherit_env, best_effort, dry_run, json;
	/* why */
	const char *why_path;
	nono_access why_access;
	bool why_net;
	char **cmd;
	int ncmd;
};

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
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"json", no_argument, NULL, OPT_JSON},
	{"path", required_argument, NULL, OPT_PATH},
	{"write-access", no_argument, NULL, OPT_WRITE_Q},
	{"read-write", no_argument, NULL, OPT_RW_Q},
	{"net", no_argument, NULL, OPT_NET_Q},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static void run_opts_free(struct run_opts *o)
{
	free(o->grants);
	free(o->binds);
	strvec_free(&o->domains);
	strvec_free(&o->internal);
	strvec_free(&o->unix_socks);
	strvec_free(&o->env);
}

static int add_grant_arg(struct run_opts *o, const char *opt, const char *path, nono_access a,
			 bool file)
{
	struct grant_arg *g = realloc(o->grants, (o->ngrants + 1) * sizeof *g);
	if (!g)
		return -1;
	o->grants = g;
	g[o->ngrants++] = (struct grant_arg){opt, path, a, file};
	return 0;
}

/* Returns -1 to continue, else an exit status. */
static int parse(int argc, char **argv, enum mode mode, struct run_opts *o)
{
	const char *sub = mode == MODE_RUN ? "run " : "why ";
	int c, li;
	opterr = 0;
	optind = 1;
	/* `nono why --write PATH` reads naturally, but --write is also the write grant: in why mode
	 * the query flag is spelled --write-access / --read-write. */
	while ((c = getopt_long(argc, argv, "+:a:r:w:e:h", run_longopts, &li)) != -1) {
		const char *name = c >= 256 ? run_longopts[li].name : NULL;
		int rc = 0;
		switch (c) {
		case 'a': rc = add_grant_arg(o, "--allow", optarg, NONO_ACCESS_READ_WRITE, false); break;
		case 'r': rc = add_grant_arg(o, "--read", optarg, NONO_ACCESS_READ, false); break;
		case 'w': rc = add_grant_arg(o, "--write", optarg, NONO_ACCESS_WRITE, false); break;
		case OPT_ALLOW_FILE:
			rc = add_grant_arg(o, "--allow-file", optarg, NONO_ACCESS_READ_WRITE, true);
			break;
		case OPT_READ_FILE:
			rc = add_grant_arg(o, "--read-file", optarg, NONO_ACCESS_READ, true);
			break;
		case OPT_WRITE_FILE:
			rc = add_grant_arg(o, "--write-file", optarg, NONO_ACCESS_WRITE, true);
			break;
		case OPT_NO_SYSTEM: o->no_system = true; break;
		case OPT_NET_BLOCK: o->net_block = true; break;
		case OPT_UNIX: rc = strvec_push(&o->unix_socks, optarg); break;
		case OPT_BIND: {
			uint16_t p;
			if (cli_parse_port("--allow-bind", optarg, &p, false) < 0)
				return EXIT_USAGE;
			uint16_t *nb = realloc(o->binds, (o->nbinds + 1) * sizeof *nb);
			if (!nb)
				return EXIT_INTERNAL;
			o->binds = nb;
			nb[o->nbinds++] = p;
			break;
		}
		case OPT_DOMAIN: rc = strvec_push(&o->domains, optarg); break;
		case OPT_INTERNAL: rc = strvec_push(&o->internal, optarg); break;
		case OPT_PROXY_PORT:
			if (cli_parse_port("--proxy-port", optarg, &o->proxy_port, false) < 0)
				return EXIT_USAGE;
			o->proxy_port_set = true;
			break;
		case OPT_AUDIT: o->audit_log = optarg; break;
		case OPT_WORKDIR: o->workdir = optarg; break;
		case OPT_TIMEOUT:
			if (cli_parse_seconds("--timeout", optarg, &o->timeout) < 0)
				return EXIT_USAGE;
			break;
		case 'e': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return cli_usage_error(sub, "--env '%s': expected NAME=VALUE", optarg);
			char vname[256];
			snprintf(vname, sizeof vname, "%.*s", (int)(eq - optarg), optarg);
			if (nono_env_name_is_loader(vname)) {
				cli_err("--env %s: loader-control variables are refused (they would choose "
					"code for the sandboxed program)", vname);
				return EXIT_USAGE;
			}
			rc = strvec_push(&o->env, optarg);
			break;
		}
		case OPT_INHERIT: o->inherit_env = true; break;
		case OPT_BEST_EFFORT: o->best_effort = true; break;
		case OPT_DRY_RUN: o->dry_run = true; break;
		case OPT_JSON: o->json = true; break;
		case OPT_PATH: o->why_path = optarg; break;
		case OPT_WRITE_Q: o->why_access = NONO_ACCESS_WRITE; break;
		case OPT_RW_Q: o->why_access = NONO_ACCESS_READ_WRITE; break;
		case OPT_NET_Q: o->why_net = true; break;
		case 'h':
			if (mode == MODE_RUN)
				help_run(stdout);
			else
				help_why(stdout);
			return 0;
		case ':':
			return cli_usage_error(sub, "option '%s' needs an argument", argv[optind - 1]);
		default:
			return cli_usage_error(sub, "unknown option '%s'", argv[optind - 1]);
		}
		if (rc < 0)
			return EXIT_INTERNAL;
		/* Options that belong to the other subcommand are errors, not silently ignored. */
		bool why_only = c == OPT_PATH || c == OPT_WRITE_Q || c == OPT_RW_Q || c == OPT_NET_Q;
		bool run_only = c == OPT_DRY_RUN || c == OPT_JSON || c == OPT_TIMEOUT ||
				c == OPT_WORKDIR || c == 'e' || c == OPT_INHERIT || c == OPT_AUDIT;
		if ((mode == MODE_RUN && why_only) || (mode == MODE_WHY && run_only))
			return cli_usage_error(sub, "option '--%s' does not apply to '%s'",
					       name ? name : "env", mode == MODE_RUN ? "run" : "why");
	}
	o->cmd = argv + optind;
	o->ncmd = argc - optind;

	/* Combinations. */
	bool proxy = o->domains.n > 0;
	if (o->net_block && (proxy || o->proxy_port_set))
		return cli_usage_error(sub, "--net-block conflicts with --allow-domain/--proxy-port");
	if (o->internal.n && !proxy)
		return cli_usage_error(sub, "--allow-internal needs --allow-domain (it configures the "
					    "proxy nono starts)");
	bool restricted = o->net_block || proxy || o->proxy_port_set;
	if ((o->unix_socks.n || o->nbinds) && !restricted)
		return cli_usage_error(sub, "--allow-unix-socket/--allow-bind only mean something when "
					    "the network is restricted (--net-block, --allow-domain, "
					    "--proxy-port): without that, nothing is denied");
	if (o->nbinds && o->net_block)
		return cli_usage_error(sub, "--allow-bind needs proxy-only (--allow-domain or "
					    "--proxy-port): --net-block allows no IP socket at all");
	if (o->audit_log && !restricted)
		return cli_usage_error(sub, "--audit-log needs --net-block, --allow-domain or "
					    "--proxy-port (with the network unrestricted there are no "
					    "decisions to log)");
	if (o->json && !o->dry_run)
		return cli_usage_error(sub, "--json applies to --dry-run");
	if (mode == MODE_RUN && o->ncmd == 0 && !o->dry_run)
		return cli_usage_error(sub, "no command given: nono run [OPTIONS] -- COMMAND [ARGS...]");
	if (mode == MODE_WHY) {
		if (o->ncmd)
			return cli_usage_error(sub, "unexpected argument '%s'", o->cmd[0]);
		if (!o->why_path == !o->why_net)
			return cli_usage_error(sub, "give exactly one of --path PATH or --net");
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

static const char *access_short(nono_access a)
{
	return a == NONO_ACCESS_READ ? "r" : a == NONO_ACCESS_WRITE ? "w" : "rw";
}

static const char *access_long(nono_access a)
{
	return a == NONO_ACCESS_READ ? "read" : a == NONO_ACCESS_WRITE ? "write" : "read-write";
}

static bool is_system_original(const char *orig)
{
	for (size_t i = 0; i < N_SYS_PATHS; i++)
		if (!strcmp(orig, sys_paths[i].path))
			return true;
	return false;
}

/* Capability set from the options; network set to `proxy_port` when proxy-only. */
static int build_caps(const struct run_opts *o, uint16_t proxy_port, nono_caps **out)
{
	nono_caps *caps = nono_caps_new();
	nono_error err = {0};
	if (!caps) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	if (!o->no_system) {
		for (size_t i = 0; i < N_SYS_PATHS; i++) {
			const struct sys_path *s = &sys_paths[i];
			struct stat st;
			if (stat(s->path, &st) < 0 && errno == ENOENT)
				continue; /* "when present" */
			int r = s->file ? nono_caps_allow_file(caps, s->path, s->access, &err)
					: nono_caps_allow_path(caps, s->path, s->access, &err);
			if (r < 0) {
				cli_err("system path %s: %s (use --no-system-paths and grant what you need)",
					s->path, err.message);
				nono_caps_free(caps);
				return EXIT_USAGE;
			}
		}
	}
	for (size_t i = 0; i < o->ngrants; i++) {
		const struct grant_arg *g = &o->grants[i];
		int r = g->file ? nono_caps_allow_file(caps, g->path, g->access, &err)
				: nono_caps_allow_path(caps, g->path, g->access, &err);
		if (r < 0) {
			cli_err("%s %s: %s", g->opt, g->path, err.message);
			nono_caps_free(caps);
			return EXIT_USAGE;
		}
	}
	nono_caps_deduplicate(caps);
	int r = 0;
	if (o->net_block)
		r = nono_caps_set_network(caps, NONO_NET_BLOCKED, 0, &err);
	else if (o->domains.n || o->proxy_port_set)
		r = nono_caps_set_network(caps, NONO_NET_PROXY_ONLY, proxy_port, &err);
	for (size_t i = 0; r == 0 && i < o->unix_socks.n; i++) {
		r = nono_caps_allow_unix_socket(caps, o->unix_socks.v[i], &err);
		if (r < 0)
			cli_err("--allow-unix-socket %s: %s", o->unix_socks.v[i], err.message);
	}
	for (size_t i = 0; r == 0 && i < o->nbinds; i++) {
		r = nono_caps_allow_bind(caps, o->binds[i], &err);
		if (r < 0)
			cli_err("--allow-bind %u: %s", (unsigned)o->binds[i], err.message);
	}
	if (r < 0) {
		if (!o->unix_socks.n && !o->nbinds)
			cli_err("network: %s", err.message);
		nono_caps_free(caps);
		return EXIT_USAGE;
	}
	*out = caps;
	return -1;
}

/* Proxy configuration from the options (not started). Exit status or -1. */
static int build_proxy_config(const struct run_opts *o, nono_proxy_config **out)
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
	if (o->audit_log && nono_proxy_config_set_audit_log(cfg, o->audit_log, &err) < 0) {
		cli_err("--audit-log %s: %s", o->audit_log, err.message);
		goto usage;
	}
	*out = cfg;
	return -1;
usage:
	nono_proxy_config_free(cfg);
	return EXIT_USAGE;
}

static const char *net_mode_name(nono_net_mode m)
{
	return m == NONO_NET_BLOCKED ? "blocked" : m == NONO_NET_PROXY_ONLY ? "proxy-only" : "allowed";
}

/* Replace the dry-run placeholder port in the report text. */
static void unplaceholder(char *text, size_t cap)
{
	char ph[16];
	snprintf(ph, sizeof ph, "%u", DRY_RUN_PORT_PLACEHOLDER);
	const char *rep = "<ephemeral>";
	char *p;
	while ((p = strstr(text, ph))) {
		size_t tail = strlen(p + strlen(ph));
		if ((size_t)(p - text) + strlen(rep) + tail + 1 > cap)
			break;
		memmove(p + strlen(rep), p + strlen(ph), tail + 1);
		memcpy(p, rep, strlen(rep));
	}
}

static json_t *report_json(const nono_report *r)
{
	json_t *lines = json_array();
	char buf[sizeof r->text];
	snprintf(buf, sizeof buf, "%s", r->text);
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		json_array_append_new(lines, json_string(l));
	return json_pack("{s:i, s:I, s:I, s:b, s:b, s:b, s:b, s:b, s:s, s:s, s:b, s:o}",
			 "landlock_abi", r->landlock_abi, "fs_handled", (json_int_t)r->fs_handled,
			 "fs_unenforced", (json_int_t)r->fs_unenforced, "landlock_tcp", r->landlock_tcp,
			 "landlock_scopes", r->landlock_scopes, "seccomp", r->seccomp, "supervisor",
			 r->supervisor, "no_new_privs", r->no_new_privs, "net_requested",
			 net_mode_name(r->net_requested), "net_enforced", net_mode_name(r->net_enforced),
			 "downgraded", r->downgraded, "text", lines);
}

static int dry_run(const struct run_opts *o, const nono_caps *caps, bool placeholder)
{
	unsigned flags = o->best_effort ? NONO_FLAG_BEST_EFFORT : 0;
	nono_report rep;
	memset(&rep, 0, sizeof rep);
	nono_error err = {0};
	int rc = nono_plan_report(caps, flags, &rep, &err);
	if (placeholder)
		unplaceholder(rep.text, sizeof rep.text);
	nono_support sup;
	nono_support_query(&sup);
	uint16_t port = 0;
	nono_net_mode net = nono_caps_network(caps, &port);
	size_t ng = nono_caps_grant_count(caps);

	if (o->json) {
		json_t *root = json_object(), *grants = json_array(), *cmd = json_array();
		for (int i = 0; i < o->ncmd; i++)
			json_array_append_new(cmd, json_string(o->cmd[i]));
		for (size_t i = 0; i < ng; i++) {
			nono_grant g;
			nono_caps_grant(caps, i, &g);
			json_array_append_new(grants,
				json_pack("{s:s, s:s, s:s, s:s, s:b}", "path", g.original, "resolved",
					  g.resolved, "access", access_long(g.access), "kind",
					  g.is_file ? "file" : "dir", "system",
					  is_system_original(g.original)));
		}
		json_t *doms = json_array(), *socks = json_array(), *binds = json_array(),
		       *envn = json_array();
		for (size_t i = 0; i < o->domains.n; i++)
			json_array_append_new(doms, json_string(o->domains.v[i]));
		for (size_t i = 0; i < nono_caps_unix_socket_count(caps); i++)
			json_array_append_new(socks, json_string(nono_caps_unix_socket(caps, i)));
		for (size_t i = 0; i < nono_caps_bind_port_count(caps); i++)
			json_array_append_new(binds, json_integer(nono_caps_bind_port(caps, i)));
		for (size_t i = 0; i < o->env.n; i++) {
			const char *eq = strchr(o->env.v[i], '=');
			json_array_append_new(envn, json_stringn(o->env.v[i], (size_t)(eq - o->env.v[i])));
		}
		json_t *netj = json_pack("{s:s, s:o, s:o, s:b}", "mode", net_mode_name(net),
					 "proxy_port", net == NONO_NET_PROXY_ONLY && !placeholder
							       ? json_integer(port) : json_null(),
					 "allowed_domains", doms, "in_process_proxy", o->domains.n > 0);
		json_object_set_new(root, "command", cmd);
		json_object_set_new(root, "grants", grants);
		json_object_set_new(root, "system_paths", json_boolean(!o->no_system));
		json_object_set_new(root, "network", netj);
		json_object_set_new(root, "unix_sockets", socks);
		json_object_set_new(root, "bind_ports", binds);
		json_object_set_new(root, "env", json_pack("{s:b, s:o}", "inherit", o->inherit_env,
							   "set", envn));
		json_object_set_new(root, "workdir", o->workdir ? json_string(o->workdir) : json_null());
		json_object_set_new(root, "timeout", o->timeout > 0 ? json_real(o->timeout) : json_null());
		json_object_set_new(root, "best_effort", json_boolean(o->best_effort));
		json_t *enf = report_json(&rep);
		json_object_set_new(enf, "ok", json_boolean(rc == 0));
		json_object_set_new(enf, "error", rc == 0 ? json_null() : json_string(err.message));
		json_object_set_new(root, "enforcement", enf);
		char *st = nono_support_json(&sup);
		json_t *supj = st ? json_loads(st, 0, NULL) : NULL;
		free(st);
		json_object_set_new(root, "support", supj ? supj : json_null());
		char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(root);
		if (!s) {
			cli_err("out of memory");
			return EXIT_INTERNAL;
		}
		puts(s);
		free(s);
	} else {
		printf("command: ");
		if (!o->ncmd)
			printf("(none)");
		for (int i = 0; i < o->ncmd; i++)
			printf("%s%s", i ? " " : "", o->cmd[i]);
		printf("   [dry run: nothing is executed]\n");
		printf("filesystem grants (%zu):\n", ng);
		for (size_t i = 0; i < ng; i++) {
			nono_grant g;
			nono_caps_grant(caps, i, &g);
			printf("  %-2s  %-4s  %s", access_short(g.access), g.is_file ? "file" : "dir",
			       g.resolved);
			if (strcmp(g.original, g.resolved))
				printf("  (from %s)", g.original);
			if (is_system_original(g.original))
				printf("  [system]");
			putchar('\n');
		}
		if (!ng)
			printf("  (none: no filesystem access at all)\n");
		printf("network: %s", net_mode_name(net));
		if (net == NONO_NET_PROXY_ONLY) {
			if (placeholder)
				printf(" (nono's proxy on 127.0.0.1, port chosen at start)");
			else
				printf(" (%s 127.0.0.1:%u)", o->domains.n ? "nono's proxy on" : "proxy at",
				       (unsigned)port);
		}
		putchar('\n');
		if (o->domains.n) {
			printf("allowed domains:");
			for (size_t i = 0; i < o->domains.n; i++)
				printf(" %s", o->domains.v[i]);
			putchar('\n');
		}
		printf("unix sockets:");
		if (!nono_caps_unix_socket_count(caps))
			printf(" none%s", net == NONO_NET_ALLOWED ? " restricted" : " allowed");
		for (size_t i = 0; i < nono_caps_unix_socket_count(caps); i++)
			printf(" %s", nono_caps_unix_socket(caps, i));
		printf("\nbind ports:");
		if (!nono_caps_bind_port_count(caps))
			printf(" %s", net == NONO_NET_ALLOWED ? "not restricted" : "none");
		for (size_t i = 0; i < nono_caps_bind_port_count(caps); i++)
			printf(" %u", (unsigned)nono_caps_bind_port(caps, i));
		printf("\nenvironment: %s", o->inherit_env ? "inherited (loader variables dropped)"
							  : "empty");
		for (size_t i = 0; i < o->env.n; i++) {
			const char *eq = strchr(o->env.v[i], '=');
			printf("%s%.*s", i ? ", " : "; set: ", (int)(eq - o->env.v[i]), o->env.v[i]);
		}
		putchar('\n');
		if (o->workdir)
			printf("workdir: %s\n", o->workdir);
		if (o->timeout > 0)
			printf("timeout: %gs\n", o->timeout);
		printf("enforcement on this kernel (%s, Landlock ABI %d)%s:\n", sup.kernel_release,
		       sup.landlock_abi, o->best_effort ? " [best effort]" : "");
		char buf[sizeof rep.text];
		snprintf(buf, sizeof buf, "%s", rep.text);
		for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save))
			printf("  %s\n", l);
		if (rc < 0)
			printf("REFUSED: %s\n", err.message);
	}
	fflush(stdout);
	if (rc < 0) {
		cli_err("this kernel cannot enforce the policy: %s", err.message);
		return rc == -EOPNOTSUPP ? EXIT_UNENFORCEABLE : EXIT_USAGE;
	}
	return 0;
}

/* ---- audit log: supervisor events drained from the exec's ring while the command runs ---- */

struct audit_writer {
	nono_audit *ring;
	int fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, started;
	uint64_t lost; /* events that could not be written */
};

/* A JSON string from a fixed-size event field: bounded by the field, and never dropped for bad
 * UTF-8 (a unix socket path may hold any bytes): such bytes become '?'. */
static json_t *jfield(const char *buf, size_t cap)
{
	size_t len = strnlen(buf, cap);
	json_t *j = json_stringn(buf, len);
	if (j)
		return j;
	char tmp[NONO_PATH_MAX];
	if (len >= sizeof tmp)
		len = sizeof tmp - 1;
	for (size_t i = 0; i < len; i++)
		tmp[i] = (unsigned char)buf[i] < 0x80 && buf[i] ? buf[i] : '?';
	return json_stringn(tmp, len);
}
#define JF(field) jfield(e->field, sizeof e->field)

static void audit_write_events(struct audit_writer *w)
{
	nono_audit_event ev[64];
	size_t n;
	while ((n = nono_audit_drain(w->ring, ev, 64)) > 0) {
		for (size_t i = 0; i < n; i++) {
			const nono_audit_event *e = &ev[i];
			json_t *o = json_pack(
				"{s:I, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:i, s:o, s:I, s:I}",
				"ts_ms", (json_int_t)e->timestamp_unix_ms, "source", JF(source), "mode",
				JF(mode), "decision", JF(decision), "family", JF(family), "target",
				JF(target), "port", (int)e->port, "method", JF(method), "path", JF(path),
				"status", e->status, "reason", JF(reason), "bytes_up",
				(json_int_t)e->bytes_up, "bytes_down", (json_int_t)e->bytes_down);
			char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
			json_decref(o);
			if (!s) {
				w->lost++;
				continue;
			}
			size_t len = strlen(s);
			s[len] = '\n'; /* json_dumps' NUL becomes the newline; write len+1 bytes */
			if (write(w->fd, s, len + 1) != (ssize_t)(len + 1))
				w->lost++;
			free(s);
		}
	}
}

static void *audit_thread(void *arg)
{
	struct audit_writer *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		pthread_mutex_unlock(&w->lock);
		audit_write_events(w);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int audit_start(struct audit_writer *w, const char *path)
{
	w->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		cli_err("--audit-log %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	w->ring = nono_audit_new(4096);
	if (!w->ring) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (pthread_create(&w->thread, NULL, audit_thread, w) != 0) {
		cli_err("cannot start the audit writer thread");
		return EXIT_INTERNAL;
	}
	w->started = true;
	return -1;
}

static void audit_finish(struct audit_writer *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		audit_write_events(w);
		uint64_t d = nono_audit_dropped(w->ring);
		if (d)
			cli_err("audit: %llu supervisor event(s) dropped (ring full)", (unsigned long long)d);
		if (w->lost)
			cli_err("audit: %llu supervisor event(s) could not be written to the log",
				(unsigned long long)w->lost);
	}
	if (w->ring)
		nono_audit_free(w->ring);
	if (w->fd > 0)
		close(w->fd);
}

static int exec_status(int rc, const nono_error *err)
{
	const char *msg = err->message[0] ? err->message : strerror(-rc);
	switch (rc) {
	case -ENOENT:
		cli_err("%s", msg);
		return EXIT_NOTFOUND;
	case -EACCES:
		cli_err("%s", msg);
		return EXIT_NOEXEC;
	case -EOPNOTSUPP:
		cli_err("this kernel cannot enforce the policy: %s (see 'nono setup --check'; "
			"--best-effort downgrades)", msg);
		return EXIT_UNENFORCEABLE;
	case -EINVAL:
		cli_err("%s", msg);
		return EXIT_USAGE;
	default:
		cli_err("%s", msg);
		return EXIT_INTERNAL;
	}
}

/* ---- signal forwarding: SIGTERM/SIGHUP/SIGINT/SIGQUIT sent to nono go to the command ----
 *
 * The stop signals are blocked in every thread (before any is created) and taken here with
 * sigwait. nono_exec's only child is its reaper (exec.c), alone in its own process group; it
 * passes these four signals on to the command's process group, so the whole group gets the
 * signal and can clean up; nono then exits with the command's status (e.g. 143). With no command
 * running (before fork, after exit) nono dies of the signal itself. Terminal ^C in foreground
 * mode reaches the command's group directly, never nono. */

struct forwarder {
	pthread_t thread;
	sigset_t set;
	bool started;
	volatile sig_atomic_t stop;
};

static int forward_to_children(int sig)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	int count = 0;
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		pid_t pid = (pid_t)atoi(t);
		if (pid <= 0)
			continue;
		if (kill(-pid, sig) == 0 || kill(pid, sig) == 0)
			count++;
	}
	return count;
}

static void *forward_thread(void *arg)
{
	struct forwarder *f = arg;
	for (;;) {
		int sig;
		if (sigwait(&f->set, &sig) != 0)
			continue;
		if (f->stop)
			break;
		if (forward_to_children(sig) == 0) {
			signal(sig, SIG_DFL);
			sigset_t one;
			sigemptyset(&one);
			sigaddset(&one, sig);
			pthread_sigmask(SIG_UNBLOCK, &one, NULL);
			raise(sig);
		}
	}
	return NULL;
}

static void forwarder_start(struct forwarder *f)
{
	sigemptyset(&f->set);
	int sigs[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&f->set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &f->set, NULL);
	f->started = pthread_create(&f->thread, NULL, forward_thread, f) == 0;
}

static void forwarder_stop(struct forwarder *f)
{
	if (!f->started)
		return;
	f->stop = 1;
	pthread_kill(f->thread, SIGTERM);
	pthread_join(f->thread, NULL);
	f->started = false;
}

/* ---- nono run ---- */

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	nono_caps *caps = NULL;
	nono_proxy_config *pcfg = NULL;
	nono_proxy *proxy = NULL;
	char **penv = NULL;
	struct audit_writer aw = {.fd = -1};
	struct forwarder fwd = {.started = false};
	int status = parse(argc, argv, MODE_RUN, &o);
	if (status >= 0)
		goto out;
	bool placeholder = o.domains.n && !o.proxy_port_set;
	uint16_t port = o.proxy_port_set ? o.proxy_port : DRY_RUN_PORT_PLACEHOLDER;
	if ((status = build_caps(&o, port, &caps)) >= 0)
		goto out;
	if (o.domains.n && (status = build_proxy_config(&o, &pcfg)) >= 0)
		goto out;
	if (o.dry_run) {
		status = dry_run(&o, caps, placeholder);
		goto out;
	}

	nono_error err = {0};
	const char *const *env = o.env.v;
	forwarder_start(&fwd); /* before any thread exists: they inherit the blocked set */
	if (pcfg) {
		if (nono_proxy_start(pcfg, &proxy, &err) < 0) {
			cli_err("starting the proxy: %s", err.message);
			status = EXIT_INTERNAL;
			goto out;
		}
		if (nono_caps_set_network(caps, NONO_NET_PROXY_ONLY, nono_proxy_port(proxy), &err) < 0 ||
		    nono_proxy_env(proxy, o.env.v, &penv, &err) < 0) {
			cli_err("%s", err.message);
			status = err.code == -EINVAL ? EXIT_USAGE : EXIT_INTERNAL;
			goto out;
		}
		env = (const char *const *)penv;
	}
	if (o.audit_log && (status = audit_start(&aw, o.audit_log)) >= 0)
		goto out;

	nono_exec_opts eo;
	nono_exec_opts_init(&eo);
	eo.cwd = o.workdir;
	eo.env = env;
	eo.inherit_env = o.inherit_env;
	eo.timeout_secs = o.timeout;
	eo.capture = false;
	eo.pass_stdin = true;
	eo.foreground = true;
	eo.flags = o.best_effort ? NONO_FLAG_BEST_EFFORT : 0;
	eo.audit = aw.ring;
	nono_exec_result res;
	int rc = nono_exec(caps, (const char *const *)o.cmd, &eo, &res, &err);
	if (rc < 0) {
		status = exec_status(rc, &err);
	} else {
		if (res.timed_out) {
			cli_err("timeout: %s killed after %gs", o.cmd[0], o.timeout);
			status = EXIT_TIMEOUT;
		} else if (res.term_signal) {
			status = 128 + res.term_signal;
		} else {
			status = res.exit_code;
		}
		if (res.report.downgraded)
			cli_err("best effort: not everything was enforced:\n%s", res.report.text);
		nono_exec_result_free(&res);
	}
out:
	forwarder_stop(&fwd);
	audit_finish(&aw);
	if (proxy)
		nono_proxy_stop(proxy); /* flushes the proxy's audit log */
	nono_proxy_config_free(pcfg);
	nono_strv_free(penv);
	nono_caps_free(caps);
	run_opts_free(&o);
	return status;
}

/* ---- nono why ---- */

int cmd_why(int argc, char **argv)
{
	struct run_opts o = {0};
	nono_caps *caps = NULL;
	int status = parse(argc, argv, MODE_WHY, &o);
	if (status >= 0)
		goto out;
	if ((status = build_caps(&o, o.proxy_port_set ? o.proxy_port : DRY_RUN_PORT_PLACEHOLDER,
				 &caps)) >= 0)
		goto out;
	nono_decision d;
	memset(&d, 0, sizeof d);
	if (o.why_net) {
		nono_caps_query_network(caps, &d);
		printf("network: %s: %s\n", d.allowed ? "allowed" : "denied", d.reason);
	} else {
		nono_error err = {0};
		if (nono_caps_query_path(caps, o.why_path, o.why_access, &d, &err) < 0) {
			cli_err("--path %s: %s", o.why_path, err.message);
			status = EXIT_USAGE;
			goto out;
		}
		printf("%s %s: %s: %s", access_long(o.why_access), o.why_path,
		       d.allowed ? "allowed" : "denied", d.reason);
		if (d.grant[0])
			printf(" (grant: %s)", d.grant);
		putchar('\n');
	}
	status = d.allowed ? 0 : 1;
out:
	nono_caps_free(caps);
	run_opts_free(&o);
	return status;
}
