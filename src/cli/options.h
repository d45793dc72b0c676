/* options.h — the options of `nono run` and `nono why` (they share the grant options), parsed by
 * options.c into a struct the other steps read: policy.c builds the capability set and the proxy
 * configuration from it, dryrun.c renders it, run.c and why.c act on it. */
#ifndef NONO_CLI_OPTIONS_H
#define NONO_CLI_OPTIONS_H

#include "nono.h"
#include "icpt.h"
#include "routes.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>

struct grant_arg {
	const char *opt; /* "--allow", ... (for messages) */
	const char *path;
	nono_access access;
	bool file;
};

enum run_mode { MODE_RUN, MODE_WHY };

struct run_opts {
	struct grant_arg *grants;
	size_t ngrants;
	bool no_system;
	bool net_block;
	struct strvec domains, internal, unix_socks, env; /* env: NAME=VALUE */
	struct strvec env_copy; /* --env NAME: copied from nono's environment */
	uint16_t *binds;
	size_t nbinds;
	bool proxy_port_set;
	uint16_t proxy_port;
	const char *audit_log, *workdir;
	const char *external_proxy; /* --external-proxy URL (extproxy.c) */
	struct strvec bypass;       /* --bypass HOST */
	double timeout;
	struct route_opts ro; /* --route, --credential, --route-ca, --route-endpoint (routes.c) */
	const nono_proxy_config *pcfg; /* the proxy's configuration once built (for --dry-run) */
	bool inherit_env, best_effort, dry_run, json;
	bool allow_userns;
	bool quiet, verbose; /* run: -q hides the denial summary, -v streams decisions */
	const char *why_host; /* why --host HOST[:PORT] */
	bool clear_env, keep_tmp, no_tmp;
	const char *proxy_url; /* --proxy-url: a running proxy's URL (token included) */
	/* --rollback: snapshot the writable directory grants before and after (rollback_run.c) */
	bool rollback, rb_gitignore, rb_no_defaults;
	struct strvec rb_exclude, rb_include;
	bool no_ledger; /* --no-ledger: no session ledger (audit_run.c) */
	/* why */
	const char *why_path;
	nono_access why_access;
	bool why_net;
	char **cmd;
	int ncmd;
	/* --profile NAME|FILE (profile_opts.c): loaded while parsing, owned */
	const char *profile;
	struct profile *prof;
	struct strvec denies; /* --deny PATH */
	struct icpt_opts icpt; /* --intercept, --intercept-ca-dir (icpt.c) */
};

/* Parse argv (starting at the subcommand's name) into *o (zeroed by the caller). Only the rules
 * that are the CLI's own are checked here (e.g. --allow-internal needs --allow-domain); which
 * grant combinations mean something is the library's call (its plan step refuses the others for
 * every front end). Returns -1 to go on, else the exit status (0 after --help). */
int run_opts_parse(int argc, char **argv, enum run_mode mode, struct run_opts *o);
void run_opts_free(struct run_opts *o);

#endif
