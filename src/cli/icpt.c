/* icpt.c — see icpt.h. */
#include "icpt.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int icpt_opt(struct icpt_opts *io, const char *dir, const char *sub)
{
	if (io->on && (!dir != !io->dir || (dir && strcmp(dir, io->dir) != 0)))
		return cli_usage_error(sub, "--intercept and --intercept-ca-dir (or two different "
					    "--intercept-ca-dir) conflict: give one");
	io->on = true;
	io->dir = dir;
	return -1;
}

int icpt_check(const struct icpt_opts *io, size_t nroutes, const char *sub)
{
	if (io->on && !nroutes)
		return cli_usage_error(sub, "--intercept/--intercept-ca-dir need a --route: only a "
					    "route's upstream is intercepted (every other host is tunnelled "
					    "untouched)");
	if (io->dir && io->dir[0] != '/')
		return cli_usage_error(sub, "--intercept-ca-dir %s: give an absolute path", io->dir);
	return -1;
}

static int check_dir(const char *dir, const nono_caps *caps, const char *what)
{
	nono_decision d;
	nono_error err = {0};
	if (!caps)
		return -1;
	if (nono_caps_query_path(caps, dir, NONO_ACCESS_WRITE, &d, &err) != 0) {
		cli_err("%s %s: cannot check the directory against the grants: %s", what, dir, err.message);
		return EXIT_USAGE;
	}
	if (d.allowed) {
		cli_err("%s %s: the command could write this directory (%s); the session CA's files "
			"must stay out of its reach: choose a directory outside every write grant",
			what, dir, d.reason);
		return EXIT_USAGE;
	}
	return -1;
}

int icpt_check_grants(const struct icpt_opts *io, const nono_caps *caps)
{
	return io->on && io->dir ? check_dir(io->dir, caps, "--intercept-ca-dir") : -1;
}

/* A private directory for this session's CA files: $XDG_RUNTIME_DIR (per user, 0700), else
 * $TMPDIR, else /tmp. */
static int make_tmp(char **tmp)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	if (!base || base[0] != '/' || access(base, W_OK | X_OK) != 0)
		base = getenv("TMPDIR");
	if (!base || base[0] != '/' || access(base, W_OK | X_OK) != 0)
		base = "/tmp";
	size_t n = strlen(base) + sizeof "/nono-ca-XXXXXX";
	if (!(*tmp = malloc(n))) {
		cli_err("out of memory");
		return EXIT_INTERNAL;
	}
	snprintf(*tmp, n, "%s/nono-ca-XXXXXX", base);
	if (!mkdtemp(*tmp)) { /* mode 0700 */
		cli_err("--intercept: cannot make a directory in %s: %s", base, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return EXIT_INTERNAL;
	}
	return -1;
}

int icpt_prepare(const struct icpt_opts *io, nono_proxy_config *cfg, nono_caps *caps, char **tmp)
{
	nono_error err = {0};
	int st;
	if (!io->on)
		return -1;
	if (!io->dir && (st = make_tmp(tmp)) >= 0)
		return st;
	const char *dir = io->dir ? io->dir : *tmp;
	const char *what = io->dir ? "--intercept-ca-dir" : "--intercept: the session's CA directory";
	if ((st = check_dir(dir, caps, what)) >= 0)
		return st;
	/* No grant on the directory here: only the bundle the proxy writes into it is granted, once
	 * it exists (icpt_grant_bundle). A grant on the directory let the command read whatever
	 * else lies in it (review of 2026-12-05 c, R1: a profile naming $HOME gave read access to
	 * all of it, a file:// secret beside the CA included). */
	if (nono_proxy_config_set_intercept_ca_dir(cfg, dir, &err) < 0) {
		cli_err("%s: %s", what, err.message);
		return EXIT_USAGE;
	}
	/* The CA key lives in this process: no process of the same user (the command included, when
	 * best effort left it without Landlock's ptrace scoping) may read our memory. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return -1;
}

int icpt_grant_bundle(const nono_proxy *p, nono_caps *caps)
{
	nono_error err = {0};
	const char *bundle = nono_proxy_ca_bundle(p);
	if (!bundle)
		return -1;
	if (nono_caps_allow_file(caps, bundle, NONO_ACCESS_READ, &err) < 0) {
		cli_err("--intercept: granting the CA bundle %s: %s", bundle, err.message);
		return EXIT_INTERNAL;
	}
	return -1;
}

void icpt_remove(char **tmp)
{
	if (*tmp && rmdir(*tmp) < 0 && errno != ENOENT)
		cli_err("--intercept: cannot remove %s: %s", *tmp, strerror(errno));
	free(*tmp);
	*tmp = NULL;
}

const char *icpt_shown(const struct icpt_opts *io)
{
	return io->dir ? io->dir : "a per-session directory (made at start, removed at exit)";
}

void icpt_print_env(const nono_proxy *p, FILE *f)
{
	static const char *const vars[] = {"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE",
					   "CURL_CA_BUNDLE"};
	const char *bundle = nono_proxy_ca_bundle(p);
	if (!bundle)
		return;
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		fprintf(f, "%s=%s\n", vars[i], bundle);
}
